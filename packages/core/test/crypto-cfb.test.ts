import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createCipheriv, createDecipheriv, createHash, pbkdf2Sync, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import {
  authKey,
  cfbStream,
  concatBytes,
  deriveKey,
  fromHex,
  isWsfrpError,
  toHex,
  type BlockEncrypt,
  type CryptoProvider,
} from '@wsfrp/core'

const u8 = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)

/** AES-128 single-block encryption from node:crypto (ECB of one block), returning a new array. */
function nodeBlock(key: Uint8Array): BlockEncrypt {
  return (block) => {
    const c = createCipheriv('aes-128-ecb', key, null).setAutoPadding(false)
    return u8(Buffer.concat([c.update(block), c.final()]))
  }
}

/** The same, but encrypting in place and returning its argument (as noble's raw block function does). */
function nodeBlockInPlace(key: Uint8Array): BlockEncrypt {
  const f = nodeBlock(key)
  return (block) => {
    block.set(f(block))
    return block
  }
}

/** Oracle: OpenSSL's own streaming AES-128-CFB. */
function nativeCfb(key: Uint8Array, iv: Uint8Array, mode: 'encrypt' | 'decrypt', chunks: Uint8Array[]): Uint8Array {
  const c = mode === 'encrypt' ? createCipheriv('aes-128-cfb', key, iv) : createDecipheriv('aes-128-cfb', key, iv)
  return concatBytes(chunks.map((ch) => u8(c.update(ch))))
}

function splitAt(bytes: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = []
  let off = 0
  for (const n of sizes) {
    if (off >= bytes.length) break
    out.push(bytes.subarray(off, off + n))
    off += n
  }
  if (off < bytes.length) out.push(bytes.subarray(off))
  return out
}

// Wire doc §14.
const KEY_123456 = '22252313c889b06c07fc70a2389eea9a'
const IV_14 = '000102030405060708090a0b0c0d0e0f'
const PLAIN_14 = 'hello frp control channel: 0123456789abcdef'
const CIPHER_14 = '6e3308fb4be83e27cc7f1732b8cc81942d1b7c97bd6dc33c57b3a410ec0c29d8028426354d058e666699c5'

test('§14 CFB vector through cfbStream, written as chunks of 5, 20, rest, both block styles', { timeout: 5_000 }, () => {
  const key = fromHex(KEY_123456)
  const plain = new TextEncoder().encode(PLAIN_14)
  for (const block of [nodeBlock(key), nodeBlockInPlace(key)]) {
    const e = cfbStream(block, fromHex(IV_14), 'encrypt')
    const ct = concatBytes(splitAt(plain, [5, 20]).map((c) => e.update(c)))
    assert.equal(toHex(ct), CIPHER_14)
    const d = cfbStream(block, fromHex(IV_14), 'decrypt')
    const pt = concatBytes(splitAt(fromHex(CIPHER_14), [5, 20]).map((c) => d.update(c)))
    assert.equal(new TextDecoder().decode(pt), PLAIN_14)
  }
})

test('cfbStream equals OpenSSL CFB-128 under random chunking, both directions (fast-check)', { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.uint8Array({ maxLength: 200 }),
      fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 12 }),
      fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 12 }),
      fc.boolean(),
      (key, iv, plain, cutsA, cutsB, inPlace) => {
        const block = inPlace ? nodeBlockInPlace(key) : nodeBlock(key)
        const expected = nativeCfb(key, iv, 'encrypt', [plain])
        const e = cfbStream(block, iv, 'encrypt')
        const ct = concatBytes(splitAt(plain, cutsA).map((c) => e.update(c)))
        assert.deepEqual(ct, expected)
        const d = cfbStream(block, iv, 'decrypt')
        assert.deepEqual(concatBytes(splitAt(ct, cutsB).map((c) => d.update(c))), plain)
        assert.deepEqual(nativeCfb(key, iv, 'decrypt', splitAt(ct, cutsB)), plain)
      },
    ),
    { numRuns: 500 },
  )
})

test('cfbStream: empty updates, input untouched, output length = input length', { timeout: 5_000 }, () => {
  const key = randomBytes(16)
  const iv = randomBytes(16)
  const plain = randomBytes(100)
  const copy = Uint8Array.from(plain)
  const e = cfbStream(nodeBlockInPlace(key), iv, 'encrypt')
  const parts = [e.update(new Uint8Array(0)), e.update(plain.subarray(0, 33)), e.update(new Uint8Array(0)), e.update(plain.subarray(33))]
  assert.deepEqual(parts.map((p) => p.length), [0, 33, 0, 67])
  assert.deepEqual(concatBytes(parts), nativeCfb(key, iv, 'encrypt', [plain]))
  assert.deepEqual(u8(plain), copy)
})

test('cfbStream: bad IV, bad mode, a block function returning garbage are ERR_CRYPTO', { timeout: 5_000 }, () => {
  const block = nodeBlock(randomBytes(16))
  for (const iv of [new Uint8Array(15), new Uint8Array(17), new Uint8Array(0)]) {
    assert.throws(() => cfbStream(block, iv, 'encrypt'), (e) => isWsfrpError(e, 'ERR_CRYPTO'))
  }
  assert.throws(() => cfbStream(block, new Uint8Array(16), 'sideways' as 'encrypt'), (e) => isWsfrpError(e, 'ERR_CRYPTO'))
  const bad = cfbStream(() => new Uint8Array(8), new Uint8Array(16), 'encrypt')
  assert.throws(() => bad.update(new Uint8Array(1)), (e) => isWsfrpError(e, 'ERR_CRYPTO'))
})

/** A provider over node:crypto whose CFB is the core's cfbStream, so these tests exercise the core. */
const testProvider: CryptoProvider = {
  md5Hex: (s) => createHash('md5').update(s, 'utf8').digest('hex'),
  pbkdf2Sha1: (p, s, i, l) => u8(pbkdf2Sync(p, s, i, l, 'sha1')),
  createAes128Cfb: (key, iv, mode) => cfbStream(nodeBlock(key), iv, mode),
  randomBytes: (n) => u8(randomBytes(n)),
}

test('§14 key vectors: deriveKey (PBKDF2-HMAC-SHA1, salt "frp", 64 rounds, 16 bytes) and authKey', { timeout: 5_000 }, () => {
  assert.equal(toHex(deriveKey(testProvider, '123456')), KEY_123456)
  assert.equal(toHex(deriveKey(testProvider, '')), 'cdc9dc4c472c37331281df4c232a8407')
  // The captures' control key (vectors README).
  assert.equal(toHex(deriveKey(testProvider, 'vector-token')), 'd2d18ca34f0c016e3a414681288b0650')
  assert.throws(() => deriveKey(testProvider, undefined as unknown as string), (e) => isWsfrpError(e, 'ERR_CONFIG'))
  assert.equal(authKey(testProvider, '123456', 1700000000), '0537ef113282c8d47f39f43f72db6e77')
  assert.equal(authKey(testProvider, 'vector-token', 1795567290), '5be8914e28e14693cb670b58d73f4e1a')
  for (const ts of [1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) {
    assert.throws(() => authKey(testProvider, 't', ts), (e) => isWsfrpError(e, 'ERR_AUTH'))
  }
})
