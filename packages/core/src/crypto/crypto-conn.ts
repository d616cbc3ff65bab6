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
  return new CryptoConn(inner, key.slice(), provider)
}

class CryptoConn implements Conn, ConnSink {
  private sink: ConnSink | undefined
  private encrypter: StreamCipher | undefined
  private decrypter: StreamCipher | undefined
  /** The peer's IV while it is still arriving. */
  private readonly peerIv = new Uint8Array(AES_BLOCK_SIZE)
  private peerIvFill = 0
  /** What the last inner write() returned, for empty writes that send nothing. */
  private writable = true

  constructor(
    private readonly inner: Conn,
    private readonly key: Uint8Array,
    private readonly provider: CryptoProvider,
  ) {}

  get canPause(): boolean {
    return this.inner.canPause
  }

  start(sink: ConnSink): void {
    if (this.sink !== undefined) throw new WsfrpError('ERR_CONN_CLOSED', 'Conn.start() called twice')
    this.sink = sink
    this.inner.start(this)
  }

  write(chunk: Uint8Array): boolean {
    if (chunk.length === 0) return this.writable
    let out: Uint8Array
    if (this.encrypter === undefined) {
      const iv = this.provider.randomBytes(AES_BLOCK_SIZE)
      if (iv.length !== AES_BLOCK_SIZE) throw new WsfrpError('ERR_CRYPTO', 'randomBytes returned the wrong length')
      this.encrypter = this.provider.createAes128Cfb(this.key, iv, 'encrypt')
      const ct = this.encrypter.update(chunk)
      out = new Uint8Array(AES_BLOCK_SIZE + ct.length)
      out.set(iv)
      out.set(ct, AES_BLOCK_SIZE)
    } else {
      out = this.encrypter.update(chunk)
    }
    this.writable = this.inner.write(out)
    return this.writable
  }

  end(): void {
    this.inner.end()
  }

  destroy(err?: Error): void {
    this.inner.destroy(err)
  }

  pause(): void {
    this.inner.pause()
  }

  resume(): void {
    this.inner.resume()
  }

  // --- ConnSink: events from the inner Conn ---

  onData(chunk: Uint8Array): void {
    let data = chunk
    if (this.decrypter === undefined) {
      const n = Math.min(AES_BLOCK_SIZE - this.peerIvFill, data.length)
      this.peerIv.set(data.subarray(0, n), this.peerIvFill)
      this.peerIvFill += n
      if (this.peerIvFill < AES_BLOCK_SIZE) return
      this.decrypter = this.provider.createAes128Cfb(this.key, this.peerIv, 'decrypt')
      data = data.subarray(n)
      if (data.length === 0) return
    }
    this.sink!.onData(this.decrypter.update(data))
  }

  onDrain(): void {
    this.writable = true
    this.sink!.onDrain()
  }

  onEnd(): void {
    if (this.decrypter === undefined && this.peerIvFill > 0) {
      // golib reads the IV with io.ReadFull: an EOF inside it is an error, not a clean end.
      this.inner.destroy(
        new WsfrpError('ERR_CRYPTO', `peer ended the encrypted stream inside its IV (${this.peerIvFill} of 16 bytes)`),
      )
      return
    }
    this.sink!.onEnd()
  }

  onClose(err?: Error): void {
    this.sink!.onClose(err)
  }
}
