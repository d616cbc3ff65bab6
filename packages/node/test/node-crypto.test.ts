import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createCipheriv } from 'node:crypto'
import fc from 'fast-check'
import { authKey, concatBytes, cryptoConn, deriveKey, fromHex, isWsfrpError, toHex } from '@wsfrp/core'
import { memoryPair } from '@wsfrp/core/testing'
import { nodeCrypto } from '@wsfrp/node'

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

test('nodeCrypto: §14 PBKDF2, MD5 and CFB vectors (CFB written as chunks 5, 20, rest)', { timeout: 5_000 }, () => {
  assert.equal(toHex(deriveKey(nodeCrypto, '123456')), KEY_123456)
  assert.equal(toHex(deriveKey(nodeCrypto, '')), 'cdc9dc4c472c37331281df4c232a8407')
  assert.equal(authKey(nodeCrypto, '123456', 1700000000), '0537ef113282c8d47f39f43f72db6e77')
  assert.equal(authKey(nodeCrypto, 'vector-token', 1795567290), '5be8914e28e14693cb670b58d73f4e1a')
  const e = nodeCrypto.createAes128Cfb(fromHex(KEY_123456), fromHex(IV_14), 'encrypt')
  const outs = chunks(new TextEncoder().encode(PLAIN_14), [5, 20]).map((c) => e.update(c))
  assert.deepEqual(outs.map((o) => o.length), [5, 20, PLAIN_14.length - 25])
  assert.equal(toHex(concatBytes(outs)), CIPHER_14)
  const d = nodeCrypto.createAes128Cfb(fromHex(KEY_123456), fromHex(IV_14), 'decrypt')
  const pt = concatBytes(chunks(fromHex(CIPHER_14), [5, 20]).map((c) => d.update(c)))
  assert.equal(new TextDecoder().decode(pt), PLAIN_14)
})

test('nodeCrypto returns plain Uint8Arrays, not Buffers', { timeout: 5_000 }, () => {
  const outs = [
    nodeCrypto.randomBytes(16),
    nodeCrypto.pbkdf2Sha1(new Uint8Array(1), new Uint8Array(1), 1, 16),
    nodeCrypto.createAes128Cfb(new Uint8Array(16), new Uint8Array(16), 'encrypt').update(new Uint8Array(3)),
  ]
  for (const o of outs) assert.equal(Object.getPrototypeOf(o), Uint8Array.prototype)
  assert.equal(nodeCrypto.randomBytes(100_000).length, 100_000)
  assert.notDeepEqual(nodeCrypto.randomBytes(16), nodeCrypto.randomBytes(16))
  // MD5 of the UTF-8 bytes.
  assert.equal(nodeCrypto.md5Hex('é'), '66ddcd97cfdeabb2f6fb8a999b4bc76f')
  assert.equal(authKey(nodeCrypto, 'tök€n😀', 1700000000), 'b38678247ea6b611f579ecb57cae1aad')
  assert.equal(nodeCrypto.md5Hex(''), 'd41d8cd98f00b204e9800998ecf8427e')
})

test('nodeCrypto: bad key or IV length is ERR_CRYPTO', { timeout: 5_000 }, () => {
  for (const [k, iv] of [
    [15, 16],
    [32, 16],
    [16, 15],
    [16, 0],
  ] as const) {
    assert.throws(
      () => nodeCrypto.createAes128Cfb(new Uint8Array(k), new Uint8Array(iv), 'encrypt'),
      (e) => isWsfrpError(e, 'ERR_CRYPTO'),
    )
  }
})

test('nodeCrypto CFB under random chunking equals one-shot encryption (fast-check)', { timeout: 30_000 }, () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 10 }),
      (key, iv, plain, sizes) => {
        const oneShot = createCipheriv('aes-128-cfb', key, iv).update(plain)
        const e = nodeCrypto.createAes128Cfb(key, iv, 'encrypt')
        const ct = concatBytes(chunks(plain, sizes).map((c) => e.update(c)))
        assert.deepEqual(ct, new Uint8Array(oneShot))
        const d = nodeCrypto.createAes128Cfb(key, iv, 'decrypt')
        assert.deepEqual(concatBytes(chunks(ct, sizes.reverse()).map((c) => d.update(c))), plain)
      },
    ),
    { numRuns: 300 },
  )
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

test('nodeCrypto decrypts the control streams of the frp 0.44 captures', { timeout: 10_000 }, () => {
  let n = 0
  for (const f of ['login-tcp-ping.json', 'http-vhost-get.json']) {
    const cap = JSON.parse(readFileSync(VECTORS + f, 'utf8')) as Cap
    const key = deriveKey(nodeCrypto, cap.control_key.token)
    assert.equal(toHex(key), cap.control_key.key_hex)
    for (const s of cap.connections[0]!.streams) {
      for (const e of [s.c2s.encrypted, s.s2c.encrypted]) {
        if (!e) continue
        const d = nodeCrypto.createAes128Cfb(key, fromHex(e.iv_hex), 'decrypt')
        const ct = fromHex(e.ciphertext_hex)
        const pt = concatBytes(chunks(ct, [1, 10, 16, 3]).map((c) => d.update(c)))
        assert.equal(toHex(pt), e.decrypted_hex)
        n++
      }
    }
  }
  assert.equal(n, 4)
})

test('cryptoConn with nodeCrypto: a round trip over a memory pair', { timeout: 10_000 }, async () => {
  const key = deriveKey(nodeCrypto, 'vector-token')
  const { a, b } = memoryPair({ split: 5 })
  const ca = cryptoConn(a, key, nodeCrypto)
  const cb = cryptoConn(b, key, nodeCrypto)
  const got: Uint8Array[] = []
  const done = new Promise<void>((resolve) => {
    cb.start({ onData: (c) => got.push(c), onDrain() {}, onEnd: () => resolve(), onClose() {} })
  })
  ca.start({ onData() {}, onDrain() {}, onEnd() {}, onClose() {} })
  const data = nodeCrypto.randomBytes(10_000)
  for (let off = 0; off < data.length; off += 999) ca.write(data.subarray(off, off + 999))
  ca.end()
  await done
  assert.deepEqual(concatBytes(got), data)
  a.destroy()
})
