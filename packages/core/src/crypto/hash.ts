/**
 * The hashes frp's v1 protocol needs, for runtimes whose own crypto lacks them or is asynchronous
 * (WebCrypto has no MD5 and no synchronous digest): MD5 for `privilege_key` (RFC 1321), SHA-1 for
 * the AES key's PBKDF2-HMAC-SHA1 (FIPS 180-4, RFC 2104, RFC 8018). Neither hash is used for
 * anything that needs collision resistance here; frp fixed these choices.
 *
 * Inputs are small (a token, a salt, 20-byte HMAC chains), so each function hashes a whole
 * message at once rather than offering a streaming interface.
 */
import { WsfrpError } from '../errors.js'

/**
 * The padded message (RFC 1321 §3.1-3.2, FIPS 180-4 §5.1.1, the same scheme): the bytes of
 * `parts` in order, 0x80, zeros up to 56 mod 64, then the message length in bits as 64 bits,
 * little-endian for MD5 and big-endian for SHA-1.
 */
function padded(parts: readonly Uint8Array[], littleEndian: boolean): DataView {
  let n = 0
  for (const p of parts) n += p.length
  const buf = new Uint8Array(Math.ceil((n + 9) / 64) * 64)
  let off = 0
  for (const p of parts) {
    buf.set(p, off)
    off += p.length
  }
  buf[n] = 0x80
  const view = new DataView(buf.buffer)
  // Bits = 8n, split into 32-bit halves without overflowing: low = (8n) mod 2^32, high = n / 2^29.
  const lo = (n << 3) >>> 0
  const hi = Math.floor(n / 0x20000000)
  const end = buf.length
  view.setUint32(end - 8, littleEndian ? lo : hi, littleEndian)
  view.setUint32(end - 4, littleEndian ? hi : lo, littleEndian)
  return view
}

const rotl = (x: number, n: number): number => (x << n) | (x >>> (32 - n))

/** The state words as a digest, in the hash's byte order. */
function digest(state: Uint32Array, littleEndian: boolean): Uint8Array {
  const out = new Uint8Array(state.length * 4)
  const view = new DataView(out.buffer)
  for (let i = 0; i < state.length; i++) view.setUint32(4 * i, state[i]!, littleEndian)
  return out
}

/** MD5's per-step rotations (RFC 1321 §3.4), four per round. */
const MD5_SHIFTS = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21]
/** MD5's T[i] = floor(2^32 * |sin(i)|), i = 1..64 (RFC 1321 §3.4); filled on first use. */
const MD5_T = new Uint32Array(64)

/** MD5 of the bytes of `parts`, concatenated (RFC 1321). */
export function md5(...parts: Uint8Array[]): Uint8Array {
  if (MD5_T[0] === 0) {
    // Computed rather than stored: 64 literals would cost ~700 bytes of bundle. Every product is
    // at least 0.01 from an integer (a test checks this), so a sin() that errs by less than 2e-12,
    // thousands of ulps, floors to the RFC's constants; every JavaScript engine is far closer.
    for (let i = 0; i < 64; i++) MD5_T[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 0x100000000)
  }
  const m = padded(parts, true)
  const h = Uint32Array.of(0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476)
  for (let blk = 0; blk < m.byteLength; blk += 64) {
    let a = h[0]!
    let b = h[1]!
    let c = h[2]!
    let d = h[3]!
    for (let i = 0; i < 64; i++) {
      const round = i >> 4
      // The round's auxiliary function F, G, H or I, and which message word X[k] this step reads.
      let f: number
      let k: number
      if (round === 0) {
        f = (b & c) | (~b & d)
        k = i
      } else if (round === 1) {
        f = (b & d) | (c & ~d)
        k = 5 * i + 1
      } else if (round === 2) {
        f = b ^ c ^ d
        k = 3 * i + 5
      } else {
        f = c ^ (b | ~d)
        k = 7 * i
      }
      const t = a + f + MD5_T[i]! + m.getUint32(blk + 4 * (k & 15), true)
      a = d
      d = c
      c = b
      b = (b + rotl(t, MD5_SHIFTS[4 * round + (i & 3)]!)) | 0
    }
    h[0] += a
    h[1] += b
    h[2] += c
    h[3] += d
  }
  return digest(h, true)
}

/** SHA-1 of the bytes of `parts`, concatenated (FIPS 180-4 §6.1). */
export function sha1(...parts: Uint8Array[]): Uint8Array {
  const m = padded(parts, false)
  const h = Uint32Array.of(0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0)
  const w = new Uint32Array(80)
  for (let blk = 0; blk < m.byteLength; blk += 64) {
    // The message schedule (§6.1.2 step 1).
    for (let t = 0; t < 80; t++) {
      w[t] = t < 16 ? m.getUint32(blk + 4 * t) : rotl(w[t - 3]! ^ w[t - 8]! ^ w[t - 14]! ^ w[t - 16]!, 1)
    }
    let a = h[0]!
    let b = h[1]!
    let c = h[2]!
    let d = h[3]!
    let e = h[4]!
    for (let t = 0; t < 80; t++) {
      // f_t and K_t (§4.1.1, §4.2.1): Ch, Parity, Maj, Parity in blocks of 20 steps.
      const f =
        t < 20
          ? ((b & c) | (~b & d)) + 0x5a827999
          : t < 40
            ? (b ^ c ^ d) + 0x6ed9eba1
            : t < 60
              ? ((b & c) | (b & d) | (c & d)) + 0x8f1bbcdc
              : (b ^ c ^ d) + 0xca62c1d6
      const temp = (rotl(a, 5) + f + e + w[t]!) | 0
      e = d
      d = c
      c = rotl(b, 30)
      b = a
      a = temp
    }
    h[0] += a
    h[1] += b
    h[2] += c
    h[3] += d
    h[4] += e
  }
  return digest(h, false)
}

/** SHA-1's input block size in bytes, which is HMAC's `B` (RFC 2104 §2). */
const SHA1_BLOCK = 64

/** HMAC-SHA1 with `key` (RFC 2104): returns a function MACing the concatenation of its arguments. */
function hmacSha1Keyed(key: Uint8Array): (...parts: Uint8Array[]) => Uint8Array {
  // Keys longer than B are hashed first; shorter ones are zero-padded to B.
  const k = key.length > SHA1_BLOCK ? sha1(key) : key
  const ipad = new Uint8Array(SHA1_BLOCK).fill(0x36)
  const opad = new Uint8Array(SHA1_BLOCK).fill(0x5c)
  for (let i = 0; i < k.length; i++) {
    ipad[i] ^= k[i]!
    opad[i] ^= k[i]!
  }
  return (...parts) => sha1(opad, sha1(ipad, ...parts))
}

/** HMAC-SHA1 of `data` with `key` (RFC 2104). */
export function hmacSha1(key: Uint8Array, data: Uint8Array): Uint8Array {
  return hmacSha1Keyed(key)(data)
}

/**
 * PBKDF2 with HMAC-SHA1 as its PRF (RFC 8018 §5.2): `length` bytes derived from `password` and
 * `salt` with `iterations` rounds. Both counts must be positive integers (`ERR_CRYPTO`).
 */
export function pbkdf2Sha1(password: Uint8Array, salt: Uint8Array, iterations: number, length: number): Uint8Array {
  // RFC 8018's upper bound on length, (2^32 - 1) * 20 bytes, is far beyond any array we could allocate.
  if (!(Number.isSafeInteger(iterations) && iterations >= 1 && Number.isSafeInteger(length) && length >= 1)) {
    throw new WsfrpError('ERR_CRYPTO', `PBKDF2 iterations and length must be positive integers, got ${iterations}, ${length}`)
  }
  const prf = hmacSha1Keyed(password)
  const out = new Uint8Array(length)
  const index = new Uint8Array(4)
  // Block i of the output is T_i = U_1 ^ ... ^ U_c, U_1 = PRF(salt || INT(i)), U_j = PRF(U_{j-1}).
  for (let i = 1, off = 0; off < length; i++, off += 20) {
    new DataView(index.buffer).setUint32(0, i)
    let u = prf(salt, index)
    const t = u.slice()
    for (let j = 1; j < iterations; j++) {
      u = prf(u)
      for (let x = 0; x < 20; x++) t[x] ^= u[x]!
    }
    out.set(t.subarray(0, Math.min(20, length - off)), off)
  }
  return out
}
