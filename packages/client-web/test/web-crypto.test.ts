import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createCipheriv, createDecipheriv, createHash, pbkdf2Sync } from 'node:crypto'
import fc from 'fast-check'
import { authKey, concatBytes, cryptoConn, deriveKey, fromHex, isWsfrpError, toHex } from '@wsfrp/core'
import { memoryPair } from '@wsfrp/core/testing'
import { webCrypto } from '@wsfrp/client-web'

// Wire doc §14.
const KEY_123456 = '22252313c889b06c07fc70a2389eea9a'
const IV_14 = '000102030405060708090a0b0c0d0e0f'
const PLAIN_14 = 'hello frp control channel: 0123456789abcdef'
const CIPHER_14 = '6e3308fb4be83e27cc7f1732b8cc81942d1b7c97bd6dc33c57b3a410ec0c29d8028426354d058e666699c5'

const VECTORS =
  process.env.WSFRP_VECTORS_DIR ?? fileURLToPath(new URL('../../../../shared/vectors/frp-0.44/', import.meta.url))

function chunks(b: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = []
  let off = 0
  for (const n of sizes) {
    out.push(b.subarray(off, Math.min(b.length, off + n)))
    off = Math.min(b.length, off + n)
  }
  out.push(b.subarray(off))
  return out
}

const native = (key: Uint8Array, iv: Uint8Array, mode: 'encrypt' | 'decrypt', data: Uint8Array): Uint8Array =>
  new Uint8Array((mode === 'encrypt' ? createCipheriv : createDecipheriv)('aes-128-cfb', key, iv).update(data))

test('webCrypto: §14 PBKDF2, MD5 and CFB vectors (CFB written as chunks 5, 20, rest)', { timeout: 5_000 }, () => {
  assert.equal(toHex(deriveKey(webCrypto, '123456')), KEY_123456)
  assert.equal(toHex(deriveKey(webCrypto, '')), 'cdc9dc4c472c37331281df4c232a8407')
  assert.equal(authKey(webCrypto, '123456', 1700000000), '0537ef113282c8d47f39f43f72db6e77')
  assert.equal(authKey(webCrypto, 'vector-token', 1795567290), '5be8914e28e14693cb670b58d73f4e1a')
  assert.equal(webCrypto.md5Hex('é'), '66ddcd97cfdeabb2f6fb8a999b4bc76f')
  assert.equal(authKey(webCrypto, 'tök€n😀', 1700000000), 'b38678247ea6b611f579ecb57cae1aad')
  const e = webCrypto.createAes128Cfb(fromHex(KEY_123456), fromHex(IV_14), 'encrypt')
  const outs = chunks(new TextEncoder().encode(PLAIN_14), [5, 20]).map((c) => e.update(c))
  assert.deepEqual(outs.map((o) => o.length), [5, 20, PLAIN_14.length - 25])
  assert.equal(toHex(concatBytes(outs)), CIPHER_14)
  const d = webCrypto.createAes128Cfb(fromHex(KEY_123456), fromHex(IV_14), 'decrypt')
  const pt = concatBytes(chunks(fromHex(CIPHER_14), [5, 20]).map((c) => d.update(c)))
  assert.equal(new TextDecoder().decode(pt), PLAIN_14)
})

test('webCrypto equals node:crypto: CFB with random data and random chunking (fast-check)', { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 10 }),
      fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 10 }),
      (key, iv, plain, encSizes, decSizes) => {
        const e = webCrypto.createAes128Cfb(key, iv, 'encrypt')
        const ct = concatBytes(chunks(plain, encSizes).map((c) => e.update(c)))
        assert.deepEqual(ct, native(key, iv, 'encrypt', plain))
        const d = webCrypto.createAes128Cfb(key, iv, 'decrypt')
        assert.deepEqual(concatBytes(chunks(ct, decSizes).map((c) => d.update(c))), plain)
      },
    ),
    { numRuns: 400 },
  )
})

test('webCrypto equals node:crypto: MD5 and PBKDF2-SHA1 on random input (fast-check)', { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.uint8Array({ maxLength: 40 }),
      fc.uint8Array({ maxLength: 20 }),
      fc.integer({ min: 1, max: 100 }),
      fc.integer({ min: 1, max: 48 }),
      (s, pw, salt, iter, len) => {
        assert.equal(webCrypto.md5Hex(s), createHash('md5').update(s, 'utf8').digest('hex'))
        assert.deepEqual(webCrypto.pbkdf2Sha1(pw, salt, iter, len), new Uint8Array(pbkdf2Sync(pw, salt, iter, len, 'sha1')))
      },
    ),
    { numRuns: 200 },
  )
})

test('webCrypto.pbkdf2Sha1 rejects iteration counts and lengths below 1 (ERR_CRYPTO)', { timeout: 5_000 }, () => {
  // What frp never sends must still fail loudly rather than derive a degenerate key.
  for (const [iter, len] of [
    [0, 16],
    [64, 0],
    [1.5, 16],
  ] as const) {
    assert.throws(() => webCrypto.pbkdf2Sha1(new Uint8Array(3), new Uint8Array(3), iter, len), (e) => isWsfrpError(e, 'ERR_CRYPTO'))
  }
})

test('webCrypto: bad key or IV length is ERR_CRYPTO; randomBytes beyond 64 KiB', { timeout: 5_000 }, () => {
  for (const [k, iv] of [
    [15, 16],
    [32, 16],
    [16, 15],
    [16, 0],
  ] as const) {
    assert.throws(() => webCrypto.createAes128Cfb(new Uint8Array(k), new Uint8Array(iv), 'encrypt'), (e) =>
      isWsfrpError(e, 'ERR_CRYPTO'),
    )
  }
  const big = webCrypto.randomBytes(200_000)
  assert.equal(big.length, 200_000)
  // The last 64 KiB piece is filled too (all zeros has probability 2^-(8*65536)).
  assert.ok(big.subarray(150_000).some((x) => x !== 0))
  assert.equal(webCrypto.randomBytes(0).length, 0)
  assert.notDeepEqual(webCrypto.randomBytes(16), webCrypto.randomBytes(16))
})

interface Enc {
  iv_hex: string
  ciphertext_hex: string
  decrypted_hex: string
}
interface Cap {
  control_key: { token: string; key_hex: string }
  connections: { streams: { c2s: { encrypted?: Enc }; s2c: { encrypted?: Enc } }[] }[]
}

test('webCrypto decrypts the control streams of the frp 0.44 captures', { timeout: 10_000 }, () => {
  let n = 0
  for (const f of ['login-tcp-ping.json', 'http-vhost-get.json']) {
    const cap = JSON.parse(readFileSync(VECTORS + f, 'utf8')) as Cap
    const key = deriveKey(webCrypto, cap.control_key.token)
    assert.equal(toHex(key), cap.control_key.key_hex)
    for (const s of cap.connections[0]!.streams) {
      for (const e of [s.c2s.encrypted, s.s2c.encrypted]) {
        if (!e) continue
        const d = webCrypto.createAes128Cfb(key, fromHex(e.iv_hex), 'decrypt')
        const pt = concatBytes(chunks(fromHex(e.ciphertext_hex), [1, 10, 16, 3]).map((c) => d.update(c)))
        assert.equal(toHex(pt), e.decrypted_hex)
        n++
      }
    }
  }
  assert.equal(n, 4)
})

test('cryptoConn with webCrypto on one side and node:crypto CFB on the other', { timeout: 10_000 }, async () => {
  const key = deriveKey(webCrypto, 'vector-token')
  const nodeSide = {
    ...webCrypto,
    createAes128Cfb: (k: Uint8Array, iv: Uint8Array, mode: 'encrypt' | 'decrypt') => {
      const c = (mode === 'encrypt' ? createCipheriv : createDecipheriv)('aes-128-cfb', k, iv)
      return { update: (chunk: Uint8Array) => new Uint8Array(c.update(chunk)) }
    },
  }
  const { a, b } = memoryPair({ split: 11 })
  const ca = cryptoConn(a, key, webCrypto)
  const cb = cryptoConn(b, key, nodeSide)
  const gotB: Uint8Array[] = []
  const gotA: Uint8Array[] = []
  const endB = new Promise<void>((resolve) => {
    cb.start({ onData: (c) => gotB.push(c), onDrain() {}, onEnd: () => resolve(), onClose() {} })
  })
  const endA = new Promise<void>((resolve) => {
    ca.start({ onData: (c) => gotA.push(c), onDrain() {}, onEnd: () => resolve(), onClose() {} })
  })
  const up = webCrypto.randomBytes(5000)
  const down = webCrypto.randomBytes(3000)
  for (let off = 0; off < up.length; off += 333) ca.write(up.subarray(off, off + 333))
  for (let off = 0; off < down.length; off += 77) cb.write(down.subarray(off, off + 77))
  ca.end()
  cb.end()
  await Promise.all([endA, endB])
  assert.deepEqual(concatBytes(gotB), up)
  assert.deepEqual(concatBytes(gotA), down)
  a.destroy()
})
