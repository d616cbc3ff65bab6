/**
 * The CryptoProvider for browsers and service workers. WebCrypto has neither MD5 nor AES-CFB and
 * is asynchronous, so this uses the core's own synchronous primitives: MD5, PBKDF2-HMAC-SHA1 and an
 * AES-128 block function under the streaming {@link cfbStream}. They are small (a few KB minified,
 * which matters for the service-worker bundle's budget); only randomness comes from
 * `crypto.getRandomValues`.
 */
import {
  aes128Encrypter,
  assertAes128KeyIv,
  cfbStream,
  md5,
  pbkdf2Sha1,
  toHex,
  type CipherMode,
  type CryptoProvider,
  type StreamCipher,
} from '@wsfrp/core'

const encoder = new TextEncoder()

/** `crypto.getRandomValues` fills at most 65,536 bytes per call (WebCrypto spec). */
const RANDOM_CHUNK = 65_536

/** `n` random bytes from `crypto.getRandomValues`. */
function webRandomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let off = 0; off < n; off += RANDOM_CHUNK) {
    crypto.getRandomValues(out.subarray(off, Math.min(n, off + RANDOM_CHUNK)))
  }
  return out
}

export const webCrypto: CryptoProvider = {
  md5Hex(s: string): string {
    return toHex(md5(encoder.encode(s)))
  },

  pbkdf2Sha1,

  createAes128Cfb(key: Uint8Array, iv: Uint8Array, mode: CipherMode): StreamCipher {
    assertAes128KeyIv(key, iv)
    return cfbStream(aes128Encrypter(key), iv, mode)
  },

  randomBytes: webRandomBytes,
}
