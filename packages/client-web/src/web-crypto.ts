/**
 * The CryptoProvider for browsers and service workers. WebCrypto has neither MD5 nor AES-CFB and
 * is asynchronous, so this uses @noble/hashes (MD5, SHA-1, PBKDF2) and @noble/ciphers' AES as a
 * single-block primitive under the core's streaming {@link cfbStream}; only randomness comes from
 * `crypto.getRandomValues`.
 */
import { unsafe, ecb } from '@noble/ciphers/aes.js'
import { md5, sha1 } from '@noble/hashes/legacy.js'
import { pbkdf2 } from '@noble/hashes/pbkdf2.js'
import {
  AES_BLOCK_SIZE,
  assertAes128KeyIv,
  cfbStream,
  toHex,
  type BlockEncrypt,
  type CipherMode,
  type CryptoProvider,
  type StreamCipher,
} from '@wsfrp/core'

const encoder = new TextEncoder()

/** `crypto.getRandomValues` fills at most 65,536 bytes per call (WebCrypto spec). */
const RANDOM_CHUNK = 65_536

/**
 * An AES-128 single-block encrypter for `key`.
 *
 * `'raw'` (default) expands the key once and encrypts in place with noble's exported block function
 * (`unsafe.encryptBlock`). noble marks that surface as changeable, which is acceptable because the
 * dependency is pinned exactly (2.4.0) and the tests compare the result with node:crypto.
 * `'ecb'` uses the public `ecb()` API instead: an ecb instance encrypts only once and expands the
 * key on every call, so it needs a new instance per block and is several times slower. It is the
 * fallback when the raw functions are missing.
 */
export function nobleBlockEncrypt(key: Uint8Array, impl: 'raw' | 'ecb' = 'raw'): BlockEncrypt {
  if (impl === 'raw' && typeof unsafe?.expandKeyLE === 'function' && typeof unsafe?.encryptBlock === 'function') {
    const xk = unsafe.expandKeyLE(key)
    // encryptBlock needs a 4-byte-aligned block; cfbStream passes its own fresh 16-byte buffer,
    // but copy into an aligned scratch buffer anyway rather than rely on that.
    const scratch = new Uint8Array(AES_BLOCK_SIZE)
    return (block) => {
      scratch.set(block)
      return unsafe.encryptBlock(xk, scratch)
    }
  }
  return (block) => ecb(key, { disablePadding: true }).encrypt(block)
}

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

  pbkdf2Sha1(password: Uint8Array, salt: Uint8Array, iterations: number, length: number): Uint8Array {
    return pbkdf2(sha1, password, salt, { c: iterations, dkLen: length })
  },

  createAes128Cfb(key: Uint8Array, iv: Uint8Array, mode: CipherMode): StreamCipher {
    assertAes128KeyIv(key, iv)
    return cfbStream(nobleBlockEncrypt(key), iv, mode)
  },

  randomBytes: webRandomBytes,
}
