/**
 * frp's v1 stream encryption as a Conn wrapper (golib `crypto/encode.go`, `decode.go`; wire doc §6):
 * AES-128-CFB, each direction with its own random IV that the writer sends in clear as the first 16
 * bytes before its first ciphertext. Used on the control stream after Login/LoginResp and, with
 * `use_encryption`, on work connections after StartWorkConn. Nothing is authenticated.
 */
import type { Conn, ConnSink } from '../conn.js'
import { WsfrpError } from '../errors.js'
import { AES128_KEY_LENGTH, AES_BLOCK_SIZE, type CryptoProvider, type StreamCipher } from './ports.js'

/**
 * Wraps `inner` so that writes are encrypted and reads decrypted with `key` (16 bytes, usually
 * `deriveKey(provider, token)`; anything else throws `ERR_CRYPTO`).
 *
 * - Writing: the first non-empty `write()` draws a random 16-byte IV and sends IV ‖ ciphertext as
 *   one chunk. Nothing is sent before it, as in frp (an `end()` with nothing written sends no IV).
 * - Reading: the first 16 bytes from the peer (however split) are its IV; everything after is
 *   decrypted and delivered. A peer that ends inside its IV fails the Conn with `ERR_CRYPTO`.
 * - `end`, `destroy`, `pause`, `resume`, `canPause` and the write backpressure pass through.
 */
export function cryptoConn(inner: Conn, key: Uint8Array, provider: CryptoProvider): Conn {
  if (!(key instanceof Uint8Array) || key.length !== AES128_KEY_LENGTH) {
    throw new WsfrpError('ERR_CRYPTO', `frp stream key must be ${AES128_KEY_LENGTH} bytes`)
  }
  key = key.slice()
  // Closures, not a class: this ships in the service-worker bundle, whose size is budgeted.
  let sink: ConnSink | undefined
  let encrypter: StreamCipher | undefined
  let decrypter: StreamCipher | undefined
  /** The peer's IV while it is still arriving. */
  const peerIv = new Uint8Array(AES_BLOCK_SIZE)
  let peerIvFill = 0
  /** What the last inner write() returned, for empty writes that send nothing. */
  let writable = true
  return {
    get canPause() {
      return inner.canPause
    },
    start(s) {
      if (sink !== undefined) throw new WsfrpError('ERR_CONN_CLOSED', 'Conn.start() called twice')
      sink = s
      inner.start({
        onData(chunk) {
          let data = chunk
          if (decrypter === undefined) {
            const n = Math.min(AES_BLOCK_SIZE - peerIvFill, data.length)
            peerIv.set(data.subarray(0, n), peerIvFill)
            peerIvFill += n
            if (peerIvFill < AES_BLOCK_SIZE) return
            decrypter = provider.createAes128Cfb(key, peerIv, 'decrypt')
            data = data.subarray(n)
            if (data.length === 0) return
          }
          s.onData(decrypter.update(data))
        },
        onDrain() {
          writable = true
          s.onDrain()
        },
        onEnd() {
          // golib reads the IV with io.ReadFull: an EOF inside it is an error, not a clean end.
          if (decrypter === undefined && peerIvFill > 0) {
            inner.destroy(new WsfrpError('ERR_CRYPTO', `peer ended inside its IV (${peerIvFill} of 16 bytes)`))
          } else s.onEnd()
        },
        onClose: (err) => s.onClose(err),
      })
    },
    write(chunk) {
      if (chunk.length === 0) return writable
      let out: Uint8Array
      if (encrypter === undefined) {
        const iv = provider.randomBytes(AES_BLOCK_SIZE)
        if (iv.length !== AES_BLOCK_SIZE) throw new WsfrpError('ERR_CRYPTO', 'randomBytes: wrong length')
        encrypter = provider.createAes128Cfb(key, iv, 'encrypt')
        const ct = encrypter.update(chunk)
        out = new Uint8Array(AES_BLOCK_SIZE + ct.length)
        out.set(iv)
        out.set(ct, AES_BLOCK_SIZE)
      } else {
        out = encrypter.update(chunk)
      }
      return (writable = inner.write(out))
    },
    end: () => inner.end(),
    destroy: (err) => inner.destroy(err),
    pause: () => inner.pause(),
    resume: () => inner.resume(),
  }
}
