/**
 * The crypto port: the few primitives frp's v1 protocol needs, implemented per runtime
 * (`@wsfrp/node`: node:crypto; `@wsfrp/client-web`: the core's own `md5`, `pbkdf2Sha1` and
 * `aes128Encrypter` under {@link cfbStream}).
 * Everything is synchronous so the byte path never waits on a promise.
 */
import { WsfrpError } from '../errors.js'

/** `'encrypt'` or `'decrypt'`. */
export type CipherMode = 'encrypt' | 'decrypt'

/** A streaming cipher: state carries across `update` calls, any chunk size (partial blocks too). */
export interface StreamCipher {
  /** Returns exactly `chunk.length` output bytes in a new array; `chunk` is not modified. */
  update(chunk: Uint8Array): Uint8Array
}

export interface CryptoProvider {
  /** Lowercase hex MD5 of the UTF-8 bytes of `s` (frp `util.GetAuthKey`). */
  md5Hex(s: string): string
  /** PBKDF2 with HMAC-SHA1; `length` in bytes. */
  pbkdf2Sha1(password: Uint8Array, salt: Uint8Array, iterations: number, length: number): Uint8Array
  /**
   * AES-128 in CFB mode with 128-bit segments (Go `cipher.NewCFBEncrypter`), streaming.
   * `key` and `iv` are 16 bytes each; anything else throws `ERR_CRYPTO`.
   */
  createAes128Cfb(key: Uint8Array, iv: Uint8Array, mode: CipherMode): StreamCipher
  /** `n` cryptographically random bytes. */
  randomBytes(n: number): Uint8Array
}

/** AES-128 key length in bytes. */
export const AES128_KEY_LENGTH = 16
/** AES block and CFB IV length in bytes. */
export const AES_BLOCK_SIZE = 16

/** Throws `ERR_CRYPTO` unless `key` and `iv` are both 16-byte Uint8Arrays. For providers. */
export function assertAes128KeyIv(key: Uint8Array, iv: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== AES128_KEY_LENGTH) {
    throw new WsfrpError('ERR_CRYPTO', `AES-128 key must be ${AES128_KEY_LENGTH} bytes`)
  }
  if (!(iv instanceof Uint8Array) || iv.length !== AES_BLOCK_SIZE) {
    throw new WsfrpError('ERR_CRYPTO', `AES-CFB IV must be ${AES_BLOCK_SIZE} bytes`)
  }
}
