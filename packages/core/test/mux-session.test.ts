import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  YamuxSession,
  YamuxStream,
  FrameDecoder,
  FrameType,
  Flag,
  GoAwayCode,
  encodeHeader,
  concatBytes,
  isWsfrpError,
  type Conn,
  type ConnSink,
  type YamuxOptions,
} from '@wsfrp/core'
import { memoryPair, type MemoryPairOptions } from '@wsfrp/core/testing'

const KiB = 1024
const MiB = 1024 * KiB

function sessions(opts: { client?: Partial<YamuxOptions>; server?: Partial<YamuxOptions>; pair?: MemoryPairOptions; onStream?: (s: YamuxStream) => void } = {}) {
  const { a, b } = memoryPair(opts.pair)
  const accepted: YamuxStream[] = []
  const waiters: ((s: YamuxStream) => void)[] = []
  const server = new YamuxSession(b, {
    client: false,
    keepAliveInterval: 0,
    onStream: opts.onStream ?? ((s) => {
      const w = waiters.shift()
      if (w) w(s)
      else accepted.push(s)
    }),
    ...opts.server,
  })
  const client = new YamuxSession(a, { client: true, keepAliveInterval: 0, ...opts.client })
  const nextAccepted = (): Promise<YamuxStream> =>
    accepted.length ? Promise.resolve(accepted.shift()!) : new Promise((r) => waiters.push(r))
  return { client, server, nextAccepted }
}

/** Collects everything a Conn delivers. */
function collect(c: Conn, opts: { onData?: (d: Uint8Array) => void } = {}) {
  const chunks: Uint8Array[] = []
  let bytes = 0
  let resolveEnd!: () => void
  let resolveClose!: (e: Error | undefined) => void
  const ended = new Promise<void>((r) => (resolveEnd = r))
  const closed = new Promise<Error | undefined>((r) => (resolveClose = r))
  const drains: (() => void)[] = []
  c.start({
    onData: (d) => {
      chunks.push(d)
      bytes += d.length
      opts.onData?.(d)
    },
    onDrain: () => drains.splice(0).forEach((f) => f()),
    onEnd: () => resolveEnd(),
    onClose: (e) => resolveClose(e),
  })
  return {
    ended,
    closed,
    get bytes() {
      return bytes
    },
    data: () => concatBytes(chunks),
    drained: () => new Promise<void>((r) => drains.push(r)),
  }
}

/** Writes `data` in `chunk`-sized pieces honouring backpressure, then ends (unless `end` is false). */
async function writeAll(c: Conn, data: Uint8Array, sink: { drained: () => Promise<void> }, chunk = 16 * KiB, end = true): Promise<void> {
  for (let off = 0; off < data.length; off += chunk) {
    if (!c.write(data.subarray(off, off + chunk))) await sink.drained()
  }
  if (end) c.end()
}

function pattern(n: number, seed = 7): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 255
  return b
}

test('echo with half-close over a transport that splits every byte', { timeout: 20000 }, async () => {
  const { client, nextAccepted } = sessions({ pair: { split: 1 } })
  const s = client.open()
  assert.equal(s.id, 1)
  const c = collect(s)
  const data = pattern(20 * KiB)
  void writeAll(s, data, c, 1000)
  const srv = await nextAccepted()
  assert.equal(srv.id, 1)
  const sc = collect(srv, { onData: (d) => srv.write(d) })
  await sc.ended
  srv.end()
  await c.ended
  assert.deepEqual(c.data(), data)
  assert.equal(await c.closed, undefined)
  assert.equal(await sc.closed, undefined)
  assert.equal(client.numStreams, 0)
})

test('client ids are odd, server ids even; both sides can open', { timeout: 5000 }, async () => {
  const { client, server, nextAccepted } = sessions()
  const got: YamuxStream[] = []
  const c2 = new YamuxSession(memoryPair().a, { client: true, keepAliveInterval: 0 })
  c2.close()
  assert.deepEqual([client.open().id, client.open().id], [1, 3])
  assert.deepEqual([server.open().id, server.open().id], [2, 4])
  got.push(await nextAccepted(), await nextAccepted())
  assert.deepEqual(got.map((s) => s.id), [1, 3])
})

test('a paused reader holds only its own writer; another stream moves 256 MiB meanwhile', { timeout: 60000 }, async () => {
  const { client, nextAccepted } = sessions()
  // Stream A: the server side pauses after the first byte and never resumes.
  const a = client.open()
  const ac = collect(a)
  const aSrv = await (a.write(new Uint8Array(1)), nextAccepted())
  aSrv.pause()
  collect(aSrv)
  let aAccepted = 1
  const big = new Uint8Array(64 * KiB)
  let aBlocked = false
  for (let i = 0; i < 1000; i++) {
    aAccepted += big.length
    if (!a.write(big)) {
      aBlocked = true
      break
    }
  }
  assert.ok(aBlocked, 'writer A must be told to wait')
  // B moves 256 MiB while A stays stalled.
  const b = client.open()
  const bc = collect(b)
  const bDone = nextAccepted().then(async (bSrv) => {
    const sc = collect(bSrv)
    await sc.ended
    bSrv.end()
    return sc.bytes
  })
  const chunk = new Uint8Array(64 * KiB).fill(3)
  for (let sent = 0; sent < 256 * MiB; sent += chunk.length) {
    if (!b.write(chunk)) await bc.drained()
  }
  b.end()
  assert.equal(await bDone, 256 * MiB)
  await bc.closed
  // A's writer got rid of at most its window (256 KiB) plus the write high-water mark (64 KiB),
  // plus the one chunk that crossed the mark.
  assert.ok(aAccepted <= 256 * KiB + 64 * KiB + 64 * KiB, `writer A pushed ${aAccepted} bytes`)
  let drainedA = false
  void ac.drained().then(() => (drainedA = true))
  await new Promise<void>((r) => setImmediate(r))
  assert.equal(drainedA, false, 'A must stay blocked while its reader is paused')
  // Resuming A lets its bytes through and wakes the writer.
  aSrv.resume()
  await ac.drained()
})

test('windows grow for a flowing stream up to maxStreamWindow, and not past the session budget', { timeout: 30000 }, async () => {
  const { client, server, nextAccepted } = sessions({ server: { maxStreamWindow: 2 * MiB, sessionReceiveBudget: 1 * MiB } })
  const s = client.open()
  const c = collect(s)
  const data = new Uint8Array(32 * MiB)
  const w = writeAll(s, data, c, 64 * KiB)
  const srv = await nextAccepted()
  const sc = collect(srv)
  await sc.ended
  await w
  assert.equal(sc.bytes, 32 * MiB)
  const st = server.stats()
  // The budget caps growth: 256 KiB initial + at most 1 MiB grown.
  assert.ok(st.receiveBudgetUsed <= 1 * MiB && st.receiveBudgetUsed > 0, `budget used ${st.receiveBudgetUsed}`)
  srv.end()
  await sc.closed
  assert.equal(server.stats().receiveBudgetUsed, 0, 'budget is returned when the stream closes')
})

test('a paused stream buffers at most its window and does not grow it', { timeout: 10000 }, async () => {
  const { client, server, nextAccepted } = sessions()
  const s = client.open()
  const c = collect(s)
  s.write(new Uint8Array(1))
  const srv = await nextAccepted()
  srv.pause()
  collect(srv)
  const chunk = new Uint8Array(64 * KiB)
  while (s.write(chunk)) {
    /* fill */
  }
  // wait until the client's send window is exhausted (all credit used)
  for (let i = 0; i < 100 && server.stats().receiveBufferedBytes < 256 * KiB; i++) await new Promise<void>((r) => setImmediate(r))
  assert.equal(server.stats().receiveBufferedBytes, 256 * KiB)
  assert.equal(server.stats().receiveBudgetUsed, 0)
  void c
})

test('RST: the peer sees ERR_MUX_STREAM_RESET; the session goes on', { timeout: 5000 }, async () => {
  const { client, nextAccepted } = sessions()
  const s = client.open()
  collect(s)
  s.write(new Uint8Array([1, 2, 3]))
  const srv = await nextAccepted()
  const sc = collect(srv)
  s.reset()
  const err = await sc.closed
  assert.ok(isWsfrpError(err, 'ERR_MUX_STREAM_RESET'), String(err))
  const s2 = client.open()
  const c2 = collect(s2)
  s2.write(new Uint8Array([9]))
  const srv2 = await nextAccepted()
  const sc2 = collect(srv2, { onData: (d) => srv2.write(d) })
  s2.end()
  await sc2.ended
  srv2.end()
  await c2.ended
  assert.deepEqual([...c2.data()], [9])
})

test('GoAway refuses new streams while an existing stream keeps working', { timeout: 5000 }, async () => {
  const { client, server, nextAccepted } = sessions()
  const s = client.open()
  const c = collect(s)
  s.write(new Uint8Array([1]))
  const srv = await nextAccepted()
  const sc = collect(srv, { onData: (d) => srv.write(d) })
  server.goAway()
  await client.ping() // the GoAway frame went before the ping answer
  assert.throws(() => client.open(), (e: unknown) => isWsfrpError(e, 'ERR_MUX_GO_AWAY'))
  s.write(new Uint8Array([2, 3]))
  s.end()
  await sc.ended
  srv.end()
  await c.ended
  assert.deepEqual([...c.data()], [1, 2, 3])
})

test('ping measures an RTT; an unanswered keep-alive fails the session with ERR_MUX_PING_TIMEOUT', { timeout: 10000 }, async () => {
  const { client } = sessions()
  const rtt = await client.ping()
  assert.ok(rtt >= 0 && rtt < 1000)
  assert.ok(client.rtt >= 0)
  // A peer that never answers: a raw conn that swallows everything.
  const { a, b } = memoryPair()
  b.start({ onData() {}, onDrain() {}, onEnd() {}, onClose() {} })
  const lonely = new YamuxSession(a, { client: true, keepAliveInterval: 20, pingTimeout: 50 })
  // keep-alive timers are unref'd (they must not hold a process open): hold the loop ourselves
  const hold = setInterval(() => {}, 1000)
  const err = await lonely.closed
  clearInterval(hold)
  assert.ok(isWsfrpError(err, 'ERR_MUX_PING_TIMEOUT'), String(err))
})

/** A raw peer: decodes what the session sends and lets the test write raw frames. */
function rawPeer(opts: Partial<YamuxOptions> = {}, client = true) {
  const { a, b } = memoryPair()
  const frames: { type: number; flags: number; id: number; length: number }[] = []
  const waiters: (() => void)[] = []
  const dec = new FrameDecoder(
    {
      onFrame: (type, flags, id, length) => {
        frames.push({ type, flags, id, length })
        waiters.splice(0).forEach((w) => w())
      },
      onPayload() {},
      onPayloadEnd() {},
    },
    1 << 30,
  )
  let closed = false
  b.start({ onData: (d) => dec.push(d), onDrain() {}, onEnd() {}, onClose: () => { closed = true } })
  const session = new YamuxSession(a, { client: !client, keepAliveInterval: 0, onStream: (s) => collect(s), ...opts })
  const until = async (pred: () => boolean) => {
    while (!pred()) await new Promise<void>((r) => waiters.push(r))
  }
  return { session, frames, send: (...bufs: Uint8Array[]) => b.write(concatBytes(bufs)), until, isClosed: () => closed }
}

test('a new stream is ACKed at once, before the application starts it', { timeout: 5000 }, async () => {
  const p = rawPeer({ onStream: () => {} }) // never started
  p.send(encodeHeader(FrameType.WindowUpdate, Flag.SYN, 1, 0))
  await p.until(() => p.frames.length > 0)
  assert.deepEqual(p.frames[0], { type: FrameType.WindowUpdate, flags: Flag.ACK, id: 1, length: 0 })
})

test('protocol violations send GoAway(protocol error) and close with ERR_MUX_PROTOCOL', { timeout: 5000 }, async (t) => {
  const cases: [string, Uint8Array][] = [
    ['bad version', new Uint8Array([1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])],
    ['our id parity', encodeHeader(FrameType.WindowUpdate, Flag.SYN, 2, 0)],
    ['window exceeded', concatBytes([encodeHeader(FrameType.WindowUpdate, Flag.SYN, 1, 0), encodeHeader(FrameType.Data, 0, 1, 256 * KiB + 1), new Uint8Array(256 * KiB + 1)])],
    ['duplicate SYN', concatBytes([encodeHeader(FrameType.WindowUpdate, Flag.SYN, 1, 0), encodeHeader(FrameType.WindowUpdate, Flag.SYN, 1, 0)])],
  ]
  for (const [name, bytes] of cases) {
    await t.test(name, async () => {
      const p = rawPeer()
      p.send(bytes)
      const err = await p.session.closed
      assert.ok(isWsfrpError(err, 'ERR_MUX_PROTOCOL'), `${name}: ${String(err)}`)
      await p.until(() => p.frames.some((f) => f.type === FrameType.GoAway))
      assert.equal(p.frames.find((f) => f.type === FrameType.GoAway)!.length, GoAwayCode.ProtocolError)
      assert.throws(() => p.session.open(), (e: unknown) => isWsfrpError(e, 'ERR_MUX_SESSION_CLOSED'))
    })
  }
})

test('limits: maxStreams refuses local opens with a typed error and remote opens with RST; accept backlog too', { timeout: 5000 }, async () => {
  const p = rawPeer({ maxStreams: 2, acceptBacklog: 1, onStream: () => {} })
  p.send(encodeHeader(FrameType.WindowUpdate, Flag.SYN, 1, 0), encodeHeader(FrameType.WindowUpdate, Flag.SYN, 3, 0))
  await p.until(() => p.frames.length >= 2)
  assert.deepEqual(p.frames.map((f) => [f.id, f.flags]), [[1, Flag.ACK], [3, Flag.RST]], 'backlog of 1: the second is reset')
  p.session.open()
  assert.equal(p.session.numStreams, 2)
  assert.throws(() => p.session.open(), (e: unknown) => isWsfrpError(e, 'ERR_MUX_STREAM_LIMIT'))
})

test('a peer that never grants window never gets more than 256 KiB', { timeout: 5000 }, async () => {
  const p = rawPeer()
  const s = p.session.open()
  collect(s)
  for (let i = 0; i < 10; i++) s.write(new Uint8Array(64 * KiB))
  let dataBytes = 0
  await p.until(() => {
    dataBytes = p.frames.filter((f) => f.type === FrameType.Data).reduce((n, f) => n + f.length, 0)
    return dataBytes >= 256 * KiB
  })
  await new Promise<void>((r) => setImmediate(r))
  assert.equal(p.frames.filter((f) => f.type === FrameType.Data).reduce((n, f) => n + f.length, 0), 256 * KiB)
  // granting more lets exactly that much through
  p.send(encodeHeader(FrameType.WindowUpdate, 0, s.id, 100))
  await p.until(() => p.frames.filter((f) => f.type === FrameType.Data).reduce((n, f) => n + f.length, 0) >= 256 * KiB + 100)
})

test('data frames for unknown streams are skipped without losing sync', { timeout: 5000 }, async () => {
  const p = rawPeer()
  p.send(encodeHeader(FrameType.Data, 0, 77, 5), new Uint8Array(5), encodeHeader(FrameType.Ping, Flag.SYN, 0, 42))
  await p.until(() => p.frames.some((f) => f.type === FrameType.Ping))
  assert.deepEqual(p.frames.find((f) => f.type === FrameType.Ping), { type: FrameType.Ping, flags: Flag.ACK, id: 0, length: 42 })
  assert.equal(p.session.isClosedSession, false)
})

test('frames of one tick leave in one transport write', { timeout: 5000 }, async () => {
  const { a, b } = memoryPair()
  const writes: number[] = []
  const orig = a.write.bind(a)
  a.write = (c: Uint8Array) => {
    writes.push(c.length)
    return orig(c)
  }
  b.start({ onData() {}, onDrain() {}, onEnd() {}, onClose() {} })
  const s = new YamuxSession(a, { client: true, keepAliveInterval: 0 })
  for (let i = 0; i < 10; i++) s.open().write(new Uint8Array(100))
  await new Promise<void>((r) => setImmediate(r))
  assert.deepEqual(writes, [10 * (12 + 12 + 100)])
})

test('closing the session closes every stream with ERR_MUX_SESSION_CLOSED', { timeout: 5000 }, async () => {
  const { client, server, nextAccepted } = sessions()
  const s = client.open()
  const c = collect(s)
  s.write(new Uint8Array(1))
  const srv = await nextAccepted()
  const sc = collect(srv)
  client.close()
  assert.ok(isWsfrpError(await c.closed, 'ERR_MUX_SESSION_CLOSED'))
  assert.ok(isWsfrpError(await sc.closed, 'ERR_MUX_SESSION_CLOSED'))
  assert.equal(await client.closed, undefined)
  await server.closed
  assert.equal(server.numStreams, 0)
})

void ({} as ConnSink)
