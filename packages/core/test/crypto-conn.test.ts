import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createCipheriv, createDecipheriv, createHash, pbkdf2Sync, randomBytes } from 'node:crypto'
import {
  MessageReader,
  cfbStream,
  concatBytes,
  cryptoConn,
  deriveKey,
  encodeMessage,
  isWsfrpError,
  type ConnSink,
  type CryptoProvider,
  type Message,
} from '@wsfrp/core'
import { memoryPair } from '@wsfrp/core/testing'
import { connSuite } from './support/conn-suite.js'

const u8 = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)

/** node:crypto provider whose CFB is the core's cfbStream over a one-block ECB. */
function makeProvider(ivs?: Uint8Array[]): CryptoProvider & { ivsDrawn: Uint8Array[] } {
  const ivsDrawn: Uint8Array[] = []
  return {
    ivsDrawn,
    md5Hex: (s) => createHash('md5').update(s, 'utf8').digest('hex'),
    pbkdf2Sha1: (p, s, i, l) => u8(pbkdf2Sync(p, s, i, l, 'sha1')),
    createAes128Cfb: (key, iv, mode) =>
      cfbStream(
        (block) => {
          const c = createCipheriv('aes-128-ecb', key, null).setAutoPadding(false)
          return u8(c.update(block))
        },
        iv,
        mode,
      ),
    randomBytes: (n) => {
      const iv = ivs?.shift() ?? u8(randomBytes(n))
      ivsDrawn.push(iv)
      return iv
    },
  }
}

const provider = makeProvider()
const KEY = deriveKey(provider, 'vector-token')
/** OpenSSL's CFB, for the 1 MiB conformance runs (cfbStream itself is checked above and in crypto-cfb). */
const nativeProvider: CryptoProvider = {
  ...provider,
  createAes128Cfb: (key, iv, mode) => {
    const c = mode === 'encrypt' ? createCipheriv('aes-128-cfb', key, iv) : createDecipheriv('aes-128-cfb', key, iv)
    return { update: (chunk) => u8(c.update(chunk)) }
  },
}

class Sink implements ConnSink {
  chunks: Uint8Array[] = []
  ended = false
  closeErr: Error | undefined
  closed = false
  drains = 0
  get data(): Uint8Array {
    return concatBytes(this.chunks)
  }
  onData(c: Uint8Array): void {
    this.chunks.push(c)
  }
  onDrain(): void {
    this.drains++
  }
  onEnd(): void {
    this.ended = true
  }
  onClose(err?: Error): void {
    this.closed = true
    this.closeErr = err
  }
}

function waitUntil(pred: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const poll = (): void => (pred() ? resolve() : void setImmediate(poll))
    poll()
  })
}

test('the writer sends its IV first, then CFB ciphertext equal to OpenSSL’s', { timeout: 5_000 }, async () => {
  const iv = u8(randomBytes(16))
  const p = makeProvider([iv])
  const { a, b } = memoryPair()
  const wire = new Sink()
  b.start(wire)
  const c = cryptoConn(a, KEY, p)
  c.start(new Sink())
  const m1 = encodeMessage({ type: 'NewProxy', proxy_name: 'vector-tcp', proxy_type: 'tcp', remote_port: 16000 })
  const m2 = encodeMessage({ type: 'Ping' })
  c.write(m1)
  c.write(m2)
  c.end()
  await waitUntil(() => wire.ended)
  const expected = u8(createCipheriv('aes-128-cfb', KEY, iv).update(concatBytes([m1, m2])))
  assert.deepEqual(wire.data, concatBytes([iv, expected]))
  assert.equal(p.ivsDrawn.length, 1, 'one IV per direction, drawn once')
  // The IV travels with the first ciphertext as one chunk.
  assert.equal(wire.chunks[0]!.length, 16 + m1.length)
})

test('the reader takes the peer IV across any split, then decrypts', { timeout: 20_000 }, async () => {
  const iv = u8(randomBytes(16))
  const plain = concatBytes([
    encodeMessage({ type: 'ReqWorkConn' }),
    encodeMessage({ type: 'NewProxyResp', proxy_name: 'vector-tcp', remote_addr: ':16000' }),
    encodeMessage({ type: 'ReqWorkConn' }),
  ])
  const wireBytes = concatBytes([iv, u8(createCipheriv('aes-128-cfb', KEY, iv).update(plain))])
  for (let cut = 0; cut <= wireBytes.length; cut++) {
    const { a, b } = memoryPair({ split: (ch) => [cut, 1, 3, ch.length] })
    b.start(new Sink())
    const s = new Sink()
    cryptoConn(a, KEY, provider).start(s)
    b.write(wireBytes)
    b.end()
    await waitUntil(() => s.ended)
    assert.deepEqual(s.data, plain, `cut at ${cut}`)
    a.destroy()
  }
})

test('messages survive a round trip through two cryptoConns over a 1-byte-split pair', { timeout: 10_000 }, async () => {
  const { a, b } = memoryPair({ split: 1 })
  const ca = cryptoConn(a, KEY, provider)
  const cb = cryptoConn(b, KEY, provider)
  const sa = new Sink()
  const sb = new Sink()
  ca.start(sa)
  cb.start(sb)
  const toB: Message[] = [{ type: 'Login', version: '0.44.0', pool_count: 1 }, { type: 'Ping' }, { type: 'CloseProxy', proxy_name: 'p' }]
  const toA: Message[] = [{ type: 'ReqWorkConn' }, { type: 'Pong' }]
  for (const m of toB) ca.write(encodeMessage(m))
  for (const m of toA) cb.write(encodeMessage(m))
  ca.end()
  cb.end()
  await waitUntil(() => sa.closed && sb.closed)
  assert.deepEqual(new MessageReader().push(sb.data), toB)
  assert.deepEqual(new MessageReader().push(sa.data), toA)
  assert.equal(sa.closeErr, undefined)
  assert.equal(sb.closeErr, undefined)
})

test('nothing written: no IV is sent, end() passes through', { timeout: 5_000 }, async () => {
  const p = makeProvider()
  const { a, b } = memoryPair()
  const wire = new Sink()
  b.start(wire)
  const c = cryptoConn(a, KEY, p)
  c.start(new Sink())
  assert.equal(c.write(new Uint8Array(0)), true)
  c.end()
  await waitUntil(() => wire.ended)
  assert.equal(wire.data.length, 0)
  assert.equal(p.ivsDrawn.length, 0)
})

test('a peer that ends inside its IV fails the conn with ERR_CRYPTO; a clean empty end is fine', { timeout: 5_000 }, async () => {
  {
    const { a, b } = memoryPair()
    b.start(new Sink())
    const s = new Sink()
    cryptoConn(a, KEY, provider).start(s)
    b.write(new Uint8Array(7))
    b.end()
    await waitUntil(() => s.closed)
    assert.ok(isWsfrpError(s.closeErr, 'ERR_CRYPTO'), String(s.closeErr))
    assert.equal(s.data.length, 0)
  }
  {
    const { a, b } = memoryPair()
    b.start(new Sink())
    const s = new Sink()
    cryptoConn(a, KEY, provider).start(s)
    b.end()
    await waitUntil(() => s.ended)
    assert.equal(s.closed, false)
    a.destroy()
  }
})

test('a key that is not 16 bytes is ERR_CRYPTO', { timeout: 5_000 }, () => {
  const { a } = memoryPair()
  for (const k of [new Uint8Array(0), new Uint8Array(15), new Uint8Array(32)]) {
    assert.throws(() => cryptoConn(a, k, provider), (e) => isWsfrpError(e, 'ERR_CRYPTO'))
  }
})

test('pause, resume, canPause and backpressure pass through', { timeout: 5_000 }, async () => {
  const { a, b } = memoryPair({ highWaterMark: 32 })
  const sb = new Sink()
  b.start(sb)
  const c = cryptoConn(a, KEY, provider)
  const s = new Sink()
  c.start(s)
  assert.equal(c.canPause, true)
  assert.equal(c.write(new Uint8Array(10)), true)
  assert.equal(c.write(new Uint8Array(10)), false) // 16 IV + 20 bytes > 32
  assert.equal(c.write(new Uint8Array(0)), false) // an empty write repeats the last answer
  await waitUntil(() => s.drains > 0)
  assert.equal(c.write(new Uint8Array(0)), true)
  // pause: bytes from the peer wait.
  c.pause()
  b.write(concatBytes([new Uint8Array(16), new Uint8Array(4)]))
  await new Promise((r) => setImmediate(r))
  assert.equal(s.chunks.length, 0)
  c.resume()
  await waitUntil(() => s.data.length === 4)
  assert.equal(cryptoConn(memoryPair({ canPause: false }).a, KEY, provider).canPause, false)
  c.destroy()
  await waitUntil(() => s.closed)
})

connSuite('cryptoConn over memoryPair', async () => {
  const { a, b } = memoryPair()
  return { a: cryptoConn(a, KEY, nativeProvider), b: cryptoConn(b, KEY, nativeProvider) }
})

connSuite('cryptoConn over memoryPair split into 7-byte pieces', async () => {
  const { a, b } = memoryPair({ split: 7 })
  return { a: cryptoConn(a, KEY, nativeProvider), b: cryptoConn(b, KEY, nativeProvider) }
})

test('decrypting with OpenSSL what cryptoConn sent (native CFB interop)', { timeout: 5_000 }, async () => {
  const { a, b } = memoryPair()
  const wire = new Sink()
  b.start(wire)
  const c = cryptoConn(a, KEY, provider)
  c.start(new Sink())
  const data = u8(randomBytes(1000))
  for (let off = 0; off < data.length; off += 37) c.write(data.subarray(off, off + 37))
  c.end()
  await waitUntil(() => wire.ended)
  const w = wire.data
  const d = createDecipheriv('aes-128-cfb', KEY, w.subarray(0, 16))
  assert.deepEqual(u8(d.update(w.subarray(16))), data)
})
