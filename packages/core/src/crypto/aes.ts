/**
 * AES-128 block encryption (FIPS-197), the one block operation frp's CFB streams need: CFB uses
 * the cipher's forward direction for both encryption and decryption, so there is no inverse
 * cipher here. Written for runtimes without AES-CFB (WebCrypto has no CFB and is asynchronous).
 *
 * The round function uses the usual 32-bit table form of SubBytes + ShiftRows + MixColumns
 * (FIPS-197 §5.1, combined per column). The S-box and the four tables (4 KiB) are derived from
 * their definitions on first use instead of being stored as literals: that keeps the browser
 * bundle small and costs well under a millisecond once.
 */
import { WsfrpError } from '../errors.js'
import type { BlockEncrypt } from './cfb-stream.js'
import { AES128_KEY_LENGTH } from './ports.js'

/** SBOX and the round tables T0..T3; filled by {@link initTables}. */
const SBOX = new Uint8Array(256)
const T0 = new Uint32Array(256)
const T1 = new Uint32Array(256)
const T2 = new Uint32Array(256)
const T3 = new Uint32Array(256)

/** Multiplication by x (that is, by 2) in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (FIPS-197 §4.2.1). */
const xtime = (b: number): number => ((b << 1) ^ (b & 0x80 ? 0x11b : 0)) & 0xff

function initTables(): void {
  // exp[i] = 3^i and log[3^i] = i: 3 generates the multiplicative group of GF(2^8), so the
  // inverse of a (a != 0) is exp[(255 - log[a]) % 255].
  const exp = new Uint8Array(256)
  const log = new Uint8Array(256)
  for (let i = 0, a = 1; i < 255; i++) {
    exp[i] = a
    log[a] = i
    a ^= xtime(a) // a * 3 = a * 2 + a
  }
  for (let x = 0; x < 256; x++) {
    // S-box (FIPS-197 §5.1.1): the inverse in GF(2^8) (0 maps to 0), then the affine transform
    // b ^ rotl(b,1) ^ rotl(b,2) ^ rotl(b,3) ^ rotl(b,4) ^ 0x63, written as the doubled byte shifted.
    const inv = x === 0 ? 0 : exp[(255 - log[x]!) % 255]!
    const r = inv * 0x101 // inv in both bytes: (r >> (8 - n)) & 0xff is rotl(inv, n)
    const s = (inv ^ (r >> 7) ^ (r >> 6) ^ (r >> 5) ^ (r >> 4) ^ 0x63) & 0xff
    SBOX[x] = s
    // One column of MixColumns applied to (s, 0, 0, 0) is (2s, s, s, 3s); a state word holds a
    // column with its row-0 byte in the top byte. T1..T3 are T0 rotated for rows 1..3.
    const s2 = xtime(s)
    const t = ((s2 << 24) | (s << 16) | (s << 8) | (s2 ^ s)) >>> 0
    T0[x] = t
    T1[x] = (t >>> 8) | (t << 24)
    T2[x] = (t >>> 16) | (t << 16)
    T3[x] = (t >>> 24) | (t << 8)
  }
}

/** Big-endian 32-bit word of `b` at `i`. */
const word = (b: Uint8Array, i: number): number => (b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!

const putWord = (b: Uint8Array, i: number, v: number): void => {
  b[i] = v >>> 24
  b[i + 1] = v >>> 16
  b[i + 2] = v >>> 8
  b[i + 3] = v
}

/** SubWord (FIPS-197 §5.2) / the last round's SubBytes on one already shifted column. */
const subWord = (a: number, b: number, c: number, d: number): number =>
  (SBOX[a >>> 24]! << 24) | (SBOX[(b >>> 16) & 0xff]! << 16) | (SBOX[(c >>> 8) & 0xff]! << 8) | SBOX[d & 0xff]!

/**
 * An AES-128 encrypter for `key` (16 bytes, else `ERR_CRYPTO`): the key schedule is expanded once,
 * and each call encrypts its 16-byte argument in place and returns it (a {@link BlockEncrypt}).
 */
export function aes128Encrypter(key: Uint8Array): BlockEncrypt {
  if (!(key instanceof Uint8Array) || key.length !== AES128_KEY_LENGTH) {
    throw new WsfrpError('ERR_CRYPTO', `AES-128 key must be ${AES128_KEY_LENGTH} bytes`)
  }
  if (SBOX[0] === 0) initTables() // S(0) is 0x63, so 0 means "not built yet"

  // KeyExpansion (FIPS-197 §5.2) for Nk = 4, Nr = 10: 44 words, 4 per round key.
  const w = new Uint32Array(44)
  for (let i = 0; i < 4; i++) w[i] = word(key, 4 * i)
  for (let i = 4, rcon = 1; i < 44; i++) {
    let t = w[i - 1]!
    if (i % 4 === 0) {
      // RotWord, SubWord, then Rcon in the top byte; Rcon doubles each time.
      const r = (t << 8) | (t >>> 24)
      t = subWord(r, r, r, r) ^ (rcon << 24)
      rcon = xtime(rcon)
    }
    w[i] = w[i - 4]! ^ t
  }

  return (block) => {
    // The tables as locals: read once per block instead of 144 times from the module scope.
    const t0 = T0
    const t1 = T1
    const t2 = T2
    const t3 = T3
    let s0 = word(block, 0) ^ w[0]!
    let s1 = word(block, 4) ^ w[1]!
    let s2 = word(block, 8) ^ w[2]!
    let s3 = word(block, 12) ^ w[3]!
    // Rounds 1..9: SubBytes + ShiftRows + MixColumns through the tables (row r of output column c
    // comes from input column c + r), then AddRoundKey.
    for (let k = 4; k < 40; k += 4) {
      const n0 = t0[s0 >>> 24]! ^ t1[(s1 >>> 16) & 0xff]! ^ t2[(s2 >>> 8) & 0xff]! ^ t3[s3 & 0xff]! ^ w[k]!
      const n1 = t0[s1 >>> 24]! ^ t1[(s2 >>> 16) & 0xff]! ^ t2[(s3 >>> 8) & 0xff]! ^ t3[s0 & 0xff]! ^ w[k + 1]!
      const n2 = t0[s2 >>> 24]! ^ t1[(s3 >>> 16) & 0xff]! ^ t2[(s0 >>> 8) & 0xff]! ^ t3[s1 & 0xff]! ^ w[k + 2]!
      s3 = t0[s3 >>> 24]! ^ t1[(s0 >>> 16) & 0xff]! ^ t2[(s1 >>> 8) & 0xff]! ^ t3[s2 & 0xff]! ^ w[k + 3]!
      s0 = n0
      s1 = n1
      s2 = n2
    }
    // Round 10 has no MixColumns.
    putWord(block, 0, subWord(s0, s1, s2, s3) ^ w[40]!)
    putWord(block, 4, subWord(s1, s2, s3, s0) ^ w[41]!)
    putWord(block, 8, subWord(s2, s3, s0, s1) ^ w[42]!)
    putWord(block, 12, subWord(s3, s0, s1, s2) ^ w[43]!)
    return block
  }
}
