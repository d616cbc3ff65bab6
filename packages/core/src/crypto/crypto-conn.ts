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
  private _sink: ConnSink | undefined
  private _encrypter: StreamCipher | undefined
  private _decrypter: StreamCipher | undefined
  /** The peer's IV while it is still arriving. */
  private readonly _peerIv = new Uint8Array(AES_BLOCK_SIZE)
  private _peerIvFill = 0
  /** What the last inner write() returned, for empty writes that send nothing. */
  private _writable = true

  private readonly _inner: Conn
  private readonly _key: Uint8Array
  private readonly _provider: CryptoProvider

  constructor(inner: Conn, key: Uint8Array, provider: CryptoProvider) {
    this._inner = inner
    this._key = key
    this._provider = provider
  }

  get canPause(): boolean {
    return this._inner.canPause
  }

  start(sink: ConnSink): void {
    if (this._sink !== undefined) throw new WsfrpError('ERR_CONN_CLOSED', 'Conn.start() called twice')
    this._sink = sink
    this._inner.start(this)
  }

  write(chunk: Uint8Array): boolean {
    if (chunk.length === 0) return this._writable
    let out: Uint8Array
    if (this._encrypter === undefined) {
      const iv = this._provider.randomBytes(AES_BLOCK_SIZE)
      if (iv.length !== AES_BLOCK_SIZE) throw new WsfrpError('ERR_CRYPTO', 'randomBytes returned the wrong length')
      this._encrypter = this._provider.createAes128Cfb(this._key, iv, 'encrypt')
      const ct = this._encrypter.update(chunk)
      out = new Uint8Array(AES_BLOCK_SIZE + ct.length)
      out.set(iv)
      out.set(ct, AES_BLOCK_SIZE)
    } else {
      out = this._encrypter.update(chunk)
    }
    this._writable = this._inner.write(out)
    return this._writable
  }

  end(): void {
    this._inner.end()
  }

  destroy(err?: Error): void {
    this._inner.destroy(err)
  }

  pause(): void {
    this._inner.pause()
  }

  resume(): void {
    this._inner.resume()
  }

  // --- ConnSink: events from the inner Conn ---

  onData(chunk: Uint8Array): void {
    let data = chunk
    if (this._decrypter === undefined) {
      const n = Math.min(AES_BLOCK_SIZE - this._peerIvFill, data.length)
      this._peerIv.set(data.subarray(0, n), this._peerIvFill)
      this._peerIvFill += n
      if (this._peerIvFill < AES_BLOCK_SIZE) return
      this._decrypter = this._provider.createAes128Cfb(this._key, this._peerIv, 'decrypt')
      data = data.subarray(n)
      if (data.length === 0) return
    }
    this._sink!.onData(this._decrypter.update(data))
  }

  onDrain(): void {
    this._writable = true
    this._sink!.onDrain()
  }

  onEnd(): void {
    if (this._decrypter === undefined && this._peerIvFill > 0) {
      // golib reads the IV with io.ReadFull: an EOF inside it is an error, not a clean end.
      this._inner.destroy(
        new WsfrpError('ERR_CRYPTO', `peer ended the encrypted stream inside its IV (${this._peerIvFill} of 16 bytes)`),
      )
      return
    }
    this._sink!.onEnd()
  }

  onClose(err?: Error): void {
    this._sink!.onClose(err)
  }
}
