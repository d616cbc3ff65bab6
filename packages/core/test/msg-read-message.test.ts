import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  concatBytes,
  encodeMessage,
  fromHex,
  isWsfrpError,
  readMessage,
  type Conn,
  type ConnSink,
  type Message,
} from '@wsfrp/core'
import { memoryPair } from '@wsfrp/core/testing'
import { connSuite, turns } from './support/conn-suite.js'

const enc = new TextEncoder()
const START: Message = {
  type: 'StartWorkConn',
  proxy_name: 'vector-tcp',
  src_addr: '127.0.0.1',
  dst_addr: '127.0.0.1',
  src_port: 35508,
  dst_port: 16000,
}

/** Records events; `done` resolves on onClose. */
class Sink implements ConnSink {
  chunks: Uint8Array[] = []
  events: string[] = []
  closeErr: Error | undefined
  private closed!: () => void
  readonly done = new Promise<void>((resolve) => (this.closed = resolve))
  onChunk: ((c: Uint8Array) => void) | undefined
  get data(): Uint8Array {
    return concatBytes(this.chunks)
  }
  onData(c: Uint8Array): void {
    this.chunks.push(c)
    this.events.push('data')
    this.onChunk?.(c)
  }
  onDrain(): void {
    this.events.push('drain')
  }
  onEnd(): void {
    this.events.push('end')
  }
  onClose(err?: Error): void {
    this.events.push('close')
    this.closeErr = err
    this.closed()
  }
}

function waitUntil(pred: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const poll = (): void => (pred() ? resolve() : void setImmediate(poll))
    poll()
  })
}

test('StartWorkConn and the user bytes in one chunk: msg, then the bytes through the continuation', { timeout: 5_000 }, async () => {
  const { a, b } = memoryPair()
  const peer = new Sink()
  b.start(peer)
  b.write(concatBytes([encodeMessage(START), enc.encode('ping\n')]))
  const r = await readMessage(a)
  assert.deepEqual(r.msg, START)
  assert.deepEqual(r.rest, enc.encode('ping\n'))
  // Bytes written after the message but before the continuation starts are not lost either.
  b.write(enc.encode('more'))
  b.end()
  await turns(5)
  const s = new Sink()
  r.conn.start(s)
  await waitUntil(() => s.events.includes('end'))
  assert.equal(new TextDecoder().decode(s.data), 'ping\nmore')
  // Writes go to the original conn.
  r.conn.write(enc.encode('pong'))
  r.conn.end()
  await Promise.all([s.done, peer.done])
  assert.equal(new TextDecoder().decode(peer.data), 'pong')
  assert.equal(s.closeErr, undefined)
  assert.deepEqual(s.events.slice(-2), ['end', 'close'])
})

test('split at every byte: the message is assembled and the rest is exact', { timeout: 20_000 }, async () => {
  const raw = enc.encode('GET / HTTP/1.1\r\n\r\n')
  const stream = concatBytes([encodeMessage(START), raw])
  for (let cut = 0; cut <= stream.length; cut++) {
    const { a, b } = memoryPair({ split: (c) => [cut, c.length] })
    b.start(new Sink())
    b.write(stream)
    b.end()
    const r = await readMessage(a)
    assert.deepEqual(r.msg, START)
    const s = new Sink()
    r.conn.start(s)
    await waitUntil(() => s.events.includes('end'))
    assert.deepEqual(s.data, raw, `cut at ${cut}`)
    a.destroy()
  }
  // One byte per chunk.
  const { a, b } = memoryPair({ split: 1 })
  b.start(new Sink())
  b.write(stream)
  b.end()
  const r = await readMessage(a)
  assert.deepEqual(r.msg, START)
  assert.equal(r.rest.length, 0)
  const s = new Sink()
  r.conn.start(s)
  await waitUntil(() => s.events.includes('end'))
  assert.deepEqual(s.data, raw)
})

test('two messages in one chunk: readMessage on the continuation reads the second', { timeout: 5_000 }, async () => {
  const { a, b } = memoryPair()
  b.start(new Sink())
  b.write(concatBytes([encodeMessage({ type: 'LoginResp', run_id: 'x' }), encodeMessage({ type: 'ReqWorkConn' }), fromHex('aa')]))
  const r1 = await readMessage(a)
  assert.deepEqual(r1.msg, { type: 'LoginResp', run_id: 'x' })
  const r2 = await readMessage(r1.conn)
  assert.deepEqual(r2.msg, { type: 'ReqWorkConn' })
  assert.deepEqual(r2.rest, fromHex('aa'))
  a.destroy()
})

test('failures are typed and destroy the conn', { timeout: 5_000 }, async () => {
  const cases: [Uint8Array, string][] = [
    [new Uint8Array(0), 'ERR_CONN_CLOSED'], // clean end before any byte
    [encodeMessage(START).subarray(0, 12), 'ERR_MSG_PROTOCOL'], // end inside the message
    [fromHex('78'), 'ERR_MSG_PROTOCOL'], // unknown type byte
    [fromHex('7300000000000fffff'), 'ERR_MSG_TOO_LARGE'],
  ]
  for (const [bytes, code] of cases) {
    const { a, b } = memoryPair()
    const peer = new Sink()
    b.start(peer)
    if (bytes.length > 0) b.write(bytes)
    b.end()
    await assert.rejects(readMessage(a), (e) => isWsfrpError(e, code as 'ERR_CONN_CLOSED'))
    await peer.done // the peer sees the conn go away
  }
  // The peer destroys the conn: ERR_CONN_CLOSED.
  const { a, b } = memoryPair()
  b.start(new Sink())
  b.write(fromHex('73'))
  setImmediate(() => b.destroy(new Error('gone')))
  await assert.rejects(readMessage(a), (e) => isWsfrpError(e, 'ERR_CONN_CLOSED'))
})

test('abort: a pending read rejects with the reason and destroys the conn; a pre-aborted one too', { timeout: 5_000 }, async () => {
  const { a, b } = memoryPair()
  const peer = new Sink()
  b.start(peer)
  const ac = new AbortController()
  const p = readMessage(a, { signal: ac.signal })
  const reason = new Error('deadline')
  ac.abort(reason)
  await assert.rejects(p, (e) => e === reason)
  await peer.done
  const pair2 = memoryPair()
  await assert.rejects(readMessage(pair2.a, { signal: AbortSignal.abort() }), (e) => e instanceof Error)
  // A non-Error reason becomes ERR_CONN_ABORTED.
  const pair3 = memoryPair()
  const ac3 = new AbortController()
  const p3 = readMessage(pair3.a, { signal: ac3.signal })
  ac3.abort('why')
  await assert.rejects(p3, (e) => isWsfrpError(e, 'ERR_CONN_ABORTED'))
})

test('the continuation honours pause() for replayed bytes, and onDrain reaches it', { timeout: 5_000 }, async () => {
  const { a, b } = memoryPair({ highWaterMark: 4 })
  const peer = new Sink()
  b.start(peer)
  // Two chunks after the message: the rest of the first chunk and a second write.
  b.write(concatBytes([encodeMessage({ type: 'Ping' }), enc.encode('one')]))
  b.write(enc.encode('two'))
  const r = await readMessage(a)
  const s = new Sink()
  s.onChunk = () => r.conn.pause()
  r.conn.start(s)
  await waitUntil(() => s.chunks.length === 1)
  await turns(10)
  assert.equal(new TextDecoder().decode(s.data), 'one', 'no onData while paused')
  s.onChunk = undefined
  r.conn.resume()
  await waitUntil(() => s.data.length === 6)
  assert.equal(new TextDecoder().decode(s.data), 'onetwo')
  // Backpressure passes through: write() says false above the high-water mark, onDrain follows.
  assert.equal(r.conn.write(enc.encode('0123456789')), false)
  await waitUntil(() => s.events.includes('drain'))
  a.destroy()
})

test('a conn that cannot pause: bytes arriving before start() are queued in order', { timeout: 5_000 }, async () => {
  const { a, b } = memoryPair({ canPause: false })
  b.start(new Sink())
  b.write(concatBytes([encodeMessage({ type: 'Ping' }), enc.encode('a')]))
  const r = await readMessage(a)
  assert.equal(r.conn.canPause, false)
  b.write(enc.encode('b'))
  b.write(enc.encode('c'))
  b.end()
  await turns(10)
  const s = new Sink()
  r.conn.start(s)
  await waitUntil(() => s.events.includes('end'))
  assert.equal(new TextDecoder().decode(s.data), 'abc')
  a.destroy()
})

async function continuationPair(opts?: { canPause?: boolean }): Promise<{ a: Conn; b: Conn }> {
  const { a, b } = memoryPair(opts)
  a.write(encodeMessage({ type: 'NewWorkConn', run_id: 'a' }))
  b.write(encodeMessage({ type: 'StartWorkConn', proxy_name: 'b' }))
  const [ra, rb] = await Promise.all([readMessage(a), readMessage(b)])
  return { a: ra.conn, b: rb.conn }
}

connSuite('readMessage continuation over memoryPair', () => continuationPair())
connSuite('readMessage continuation over memoryPair (canPause false)', () => continuationPair({ canPause: false }), {
  canPause: false,
})
