import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createCipheriv, createHash, createHmac, pbkdf2Sync } from 'node:crypto'
import fc from 'fast-check'
import {
  aes128Encrypter,
  cfbStream,
  concatBytes,
  fromHex,
  hmacSha1,
  isWsfrpError,
  md5,
  pbkdf2Sha1,
  sha1,
  toHex,
} from '@wsfrp/core'

// The core's own AES-128, MD5, SHA-1, HMAC-SHA1 and PBKDF2 (what the browser provider uses),
// checked against node:crypto (OpenSSL) and the published vectors.

const u8 = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

/** One block of AES-128 from OpenSSL. */
function opensslBlock(key: Uint8Array, block: Uint8Array): Uint8Array {
  return u8(createCipheriv('aes-128-ecb', key, null).setAutoPadding(false).update(block))
}

/** `n` bytes that differ between lengths and positions (so a dropped or moved byte shows). */
const pattern = (n: number, seed = 0): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7 + 1) & 0xff)

test('AES-128: FIPS-197 appendix vectors, in place, and §14 CFB through cfbStream', { timeout: 5_000 }, () => {
  // FIPS-197 Appendix B (the worked example) and Appendix C.1 (AES-128).
  const b = fromHex('3243f6a8885a308d313198a2e0370734')
  const out = aes128Encrypter(fromHex('2b7e151628aed2a6abf7158809cf4f3c'))(b)
  assert.equal(toHex(out), '3925841d02dc09fbdc118597196a0b32')
  // cfbStream accepts either style; this one encrypts in place and returns its argument.
  assert.equal(out, b)
  const c1 = aes128Encrypter(fromHex('000102030405060708090a0b0c0d0e0f'))(fromHex('00112233445566778899aabbccddeeff'))
  assert.equal(toHex(c1), '69c4e0d86a7b0430d8cdb78070b4c55a')

  // Wire doc §14: key = PBKDF2("123456"), IV 00..0f, plaintext written as chunks of 5, 20, rest.
  const key = fromHex('22252313c889b06c07fc70a2389eea9a')
  const plain = utf8('hello frp control channel: 0123456789abcdef')
  const e = cfbStream(aes128Encrypter(key), fromHex('000102030405060708090a0b0c0d0e0f'), 'encrypt')
  const ct = concatBytes([plain.subarray(0, 5), plain.subarray(5, 25), plain.subarray(25)].map((c) => e.update(c)))
  assert.equal(toHex(ct), '6e3308fb4be83e27cc7f1732b8cc81942d1b7c97bd6dc33c57b3a410ec0c29d8028426354d058e666699c5')
})

test('AES-128 equals OpenSSL on random keys and blocks, and one key schedule serves many blocks (fast-check)', { timeout: 30_000 }, () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.array(fc.uint8Array({ minLength: 16, maxLength: 16 }), { minLength: 1, maxLength: 8 }),
      (key, blocks) => {
        const enc = aes128Encrypter(key)
        for (const block of blocks) {
          const want = opensslBlock(key, block)
          assert.deepEqual(enc(Uint8Array.from(block)), want)
        }
      },
    ),
    { numRuns: 500 },
  )
  // Edge keys and blocks (all zero, all ones) that random draws rarely produce.
  for (const k of [new Uint8Array(16), new Uint8Array(16).fill(0xff)]) {
    for (const b of [new Uint8Array(16), new Uint8Array(16).fill(0xff)]) {
      assert.deepEqual(aes128Encrypter(k)(Uint8Array.from(b)), opensslBlock(k, b))
    }
  }
})

test('AES-128: a key that is not 16 bytes is ERR_CRYPTO', { timeout: 5_000 }, () => {
  for (const n of [0, 15, 17, 24, 32]) {
    assert.throws(() => aes128Encrypter(new Uint8Array(n)), (e) => isWsfrpError(e, 'ERR_CRYPTO'), `key of ${n} bytes`)
  }
  assert.throws(() => aes128Encrypter([1, 2, 3] as unknown as Uint8Array), (e) => isWsfrpError(e, 'ERR_CRYPTO'))
})

test('MD5 and SHA-1: RFC 1321 / FIPS 180 vectors, every length 0..200 and random input against OpenSSL (fast-check)', { timeout: 10_000 }, () => {
  // RFC 1321 appendix A.5.
  assert.equal(toHex(md5(utf8(''))), 'd41d8cd98f00b204e9800998ecf8427e')
  assert.equal(toHex(md5(utf8('abc'))), '900150983cd24fb0d6963f7d28e17f72')
  assert.equal(
    toHex(md5(utf8('12345678901234567890123456789012345678901234567890123456789012345678901234567890'))),
    '57edf4a22be3c955ac49da2e2107b67a',
  )
  // Wire doc §14: GetAuthKey("123456", 1700000000).
  assert.equal(toHex(md5(utf8('1234561700000000'))), '0537ef113282c8d47f39f43f72db6e77')
  // FIPS 180 examples: "abc" and the two-block message.
  assert.equal(toHex(sha1(utf8('abc'))), 'a9993e364706816aba3e25717850c26c9cd0d89d')
  assert.equal(toHex(sha1(utf8('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))), '84983e441c3bd26ebaae4aa1f95129e5e54670f1')
  // Every length up to 200 crosses the padding boundaries (55/56 and 119/120 bytes) and 1-3 blocks.
  for (let n = 0; n <= 200; n++) {
    const data = pattern(n, n)
    assert.equal(toHex(md5(data)), createHash('md5').update(data).digest('hex'), `md5 of ${n} bytes`)
    assert.equal(toHex(sha1(data)), createHash('sha1').update(data).digest('hex'), `sha1 of ${n} bytes`)
    // Parts are hashed as their concatenation, wherever the cut is.
    const cut = (n * 7) % (n + 1)
    assert.deepEqual(sha1(data.subarray(0, cut), data.subarray(cut)), sha1(data))
    assert.deepEqual(md5(data.subarray(0, cut), data.subarray(cut)), md5(data))
  }
  // Random content, lengths and cut points.
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), (data, c) => {
      const cut = c % (data.length + 1)
      assert.equal(toHex(md5(data.subarray(0, cut), data.subarray(cut))), createHash('md5').update(data).digest('hex'))
      assert.equal(toHex(sha1(data.subarray(0, cut), data.subarray(cut))), createHash('sha1').update(data).digest('hex'))
    }),
    { numRuns: 300 },
  )
  // A large input: the bit length no longer fits in 16 bits.
  const big = pattern(100_003)
  assert.equal(toHex(md5(big)), createHash('md5').update(big).digest('hex'))
  assert.equal(toHex(sha1(big)), createHash('sha1').update(big).digest('hex'))
})

test('MD5: every 2^32·|sin(i)| is far from an integer, so any accurate sin() gives the RFC constants', { timeout: 5_000 }, () => {
  // md5() computes its 64 constants with Math.sin instead of storing them. The floor of a product
  // changes only if sin() errs by more than (distance to the nearest integer) / 2^32. Every product
  // is at least 0.01 from an integer (0.0154 at i = 31), so sin() would have to be off by > 2e-12,
  // thousands of ulps, where engines are within one or two.
  let closest = 1
  for (let i = 1; i <= 64; i++) {
    const v = Math.abs(Math.sin(i)) * 0x100000000
    const frac = v - Math.floor(v)
    closest = Math.min(closest, frac, 1 - frac)
  }
  assert.ok(closest > 0.01, `closest distance to an integer: ${closest}`)
  // T[1] and T[64] of RFC 1321 §3.4, the first and last constants.
  assert.equal(Math.floor(Math.abs(Math.sin(1)) * 0x100000000), 0xd76aa478)
  assert.equal(Math.floor(Math.abs(Math.sin(64)) * 0x100000000), 0xeb86d391)
})

test('HMAC-SHA1: RFC 2202 vectors, keys of every length 0..200 and random input against OpenSSL (fast-check)', { timeout: 10_000 }, () => {
  // RFC 2202 §3 test cases 1, 2 and 6 (a key longer than the 64-byte block is hashed first).
  assert.equal(toHex(hmacSha1(new Uint8Array(20).fill(0x0b), utf8('Hi There'))), 'b617318655057264e28bc0b6fb378c8ef146be00')
  assert.equal(toHex(hmacSha1(utf8('Jefe'), utf8('what do ya want for nothing?'))), 'effcdf6ae5eb2fa2d27416d5f184df9c259a7c79')
  assert.equal(
    toHex(hmacSha1(new Uint8Array(80).fill(0xaa), utf8('Test Using Larger Than Block-Size Key - Hash Key First'))),
    'aa4ae5e15272d00e95705637ce8a3b55ed402112',
  )
  for (let n = 0; n <= 200; n++) {
    const key = pattern(n, 3)
    const data = pattern(200 - n, 5)
    assert.equal(toHex(hmacSha1(key, data)), createHmac('sha1', key).update(data).digest('hex'), `key of ${n} bytes`)
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), (key, data) => {
      assert.equal(toHex(hmacSha1(key, data)), createHmac('sha1', key).update(data).digest('hex'))
    }),
    { numRuns: 300 },
  )
})

test('PBKDF2-HMAC-SHA1: §14 vectors, RFC 6070 and random input against OpenSSL (fast-check)', { timeout: 60_000 }, () => {
  // Wire doc §14: frp's key derivation (salt "frp", 64 iterations, 16 bytes).
  assert.equal(toHex(pbkdf2Sha1(utf8('123456'), utf8('frp'), 64, 16)), '22252313c889b06c07fc70a2389eea9a')
  assert.equal(toHex(pbkdf2Sha1(utf8(''), utf8('frp'), 64, 16)), 'cdc9dc4c472c37331281df4c232a8407')
  // RFC 6070 §2: 1 and 4096 iterations, and a 25-byte key that spans two HMAC blocks.
  assert.equal(toHex(pbkdf2Sha1(utf8('password'), utf8('salt'), 1, 20)), '0c60c80f961f0e71f3a9b524af6012062fe037a6')
  assert.equal(toHex(pbkdf2Sha1(utf8('password'), utf8('salt'), 4096, 20)), '4b007901b765489abead49d926f721d065a429c1')
  assert.equal(
    toHex(pbkdf2Sha1(utf8('passwordPASSWORDpassword'), utf8('saltSALTsaltSALTsaltSALTsaltSALTsalt'), 4096, 25)),
    '3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038',
  )
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 200 }),
      fc.uint8Array({ maxLength: 200 }),
      fc.integer({ min: 1, max: 300 }),
      fc.integer({ min: 1, max: 100 }),
      (password, salt, iterations, length) => {
        const want = u8(pbkdf2Sync(password, salt, iterations, length, 'sha1'))
        assert.deepEqual(pbkdf2Sha1(password, salt, iterations, length), want)
      },
    ),
    { numRuns: 200 },
  )
})

test('PBKDF2: iterations and length must be positive integers (ERR_CRYPTO)', { timeout: 5_000 }, () => {
  const pw = utf8('pw')
  const salt = utf8('frp')
  for (const [iterations, length] of [
    [0, 16],
    [-1, 16],
    [1.5, 16],
    [Number.NaN, 16],
    [64, 0],
    [64, -16],
    [64, 2.5],
  ]) {
    assert.throws(() => pbkdf2Sha1(pw, salt, iterations!, length!), (e) => isWsfrpError(e, 'ERR_CRYPTO'), `${iterations}, ${length}`)
  }
})
