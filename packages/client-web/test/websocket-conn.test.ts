import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocketServer, type WebSocket as WsSocket } from 'ws'
import { isWsfrpError, type Conn, type ConnSink } from '@wsfrp/core'
import { dialWebSocket, type WebSocketConstructor } from '@wsfrp/client-web'

// Compile-time check: the browsers' WebSocket constructor fits the injected type.
export const browserWebSocketFits = (ctor: typeof globalThis.WebSocket): WebSocketConstructor => ctor

interface Server {
  url: string
  sockets: WsSocket[]
  next(): Promise<WsSocket>
  close(): Promise<void>
}

async function startServer(opts?: { refuse?: boolean }): Promise<Server> {
  const httpServer = http.createServer()
  const wss = new WebSocketServer({ server: httpServer, verifyClient: () => !opts?.refuse })
  const sockets: WsSocket[] = []
  let waiting: ((ws: WsSocket) => void)[] = []
  const queued: WsSocket[] = []
  wss.on('connection', (ws) => {
    sockets.push(ws)
    ws.on('error', () => {})
    const w = waiting.shift()
    if (w) w(ws)
    else queued.push(ws)
  })
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r))
  const port = (httpServer.address() as AddressInfo).port
  return {
    url: `ws://127.0.0.1:${port}/~!frp`,
    sockets,
    next: () => {
      const q = queued.shift()
      return q ? Promise.resolve(q) : new Promise((r) => waiting.push(r))
    },
    close: async () => {
      waiting = []
      for (const s of sockets) s.terminate()
      await new Promise<void>((r) => wss.close(() => r()))
      await new Promise<void>((r) => httpServer.close(() => r()))
    },
  }
}

interface Recorder extends ConnSink {
  data: Uint8Array[]
  events: string[]
  drains: number
  ended: Promise<void>
  closed: Promise<Error | undefined>
  bytes(): number
}

function recorder(onDrain?: () => void): Recorder {
  let endResolve!: () => void
  let closeResolve!: (e: Error | undefined) => void
  const r: Recorder = {
    data: [],
    events: [],
    drains: 0,
    ended: new Promise((x) => (endResolve = x)),
    closed: new Promise((x) => (closeResolve = x)),
    bytes: () => r.data.reduce((n, c) => n + c.length, 0),
    onData: (c) => r.data.push(c),
    onDrain: () => {
      r.drains++
      r.events.push('drain')
      onDrain?.()
    },
    onEnd: () => {
      r.events.push('end')
      endResolve()
    },
    onClose: (err) => {
      r.events.push(err ? `close: ${err.message}` : 'close')
      closeResolve(err)
    },
  }
  return r
}

test('dial, echo binary both ways, end() closes with 1000 and the peer sees it', { timeout: 10_000 }, async () => {
  const server = await startServer()
  try {
    const dialing = dialWebSocket(server.url)
    const peer = await server.next()
    peer.on('message', (m: Buffer, isBinary: boolean) => {
      assert.equal(isBinary, true)
      peer.send(m)
    })
    const peerClosed = new Promise<number>((r) => peer.on('close', (code: number) => r(code)))
    const conn = await dialing
    assert.equal(conn.canPause, false)
    const rec = recorder()
    conn.start(rec)
    conn.pause() // a no-op: must not stop delivery
    const sent = [Uint8Array.of(1, 2, 3), new Uint8Array(70_000).fill(7), Uint8Array.of(255)]
    for (const s of sent) assert.equal(conn.write(s), true)
    while (rec.bytes() < 70_004) await new Promise<void>((r) => setImmediate(r))
    assert.deepEqual(Buffer.concat(rec.data), Buffer.concat(sent))
    conn.end()
    assert.equal(await peerClosed, 1000)
    assert.equal(await rec.closed, undefined)
    assert.deepEqual(rec.events, ['end', 'close'])
  } finally {
    await server.close()
  }
})

test('write() returns false above the high-water mark and onDrain follows once the peer reads', { timeout: 30_000 }, async () => {
  const server = await startServer()
  try {
    const dialing = dialWebSocket(server.url, { highWaterMark: 256 * 1024, lowWaterMark: 64 * 1024, drainPollMs: 2 })
    const peer = await server.next()
    let received = 0
    peer.on('message', (m: Buffer) => (received += m.length))
    peer.pause() // the peer stops reading its socket: kernel buffers fill, then ws's own
    const conn = await dialing
    let drained!: () => void
    const drainedP = new Promise<void>((r) => (drained = r))
    const rec = recorder(() => drained())
    conn.start(rec)
    const chunk = new Uint8Array(1024 * 1024)
    let sent = 0
    let full = false
    // Loopback kernel buffers take a few MiB before WebSocket.bufferedAmount grows.
    while (sent < 256 * 1024 * 1024) {
      sent += chunk.length
      if (!conn.write(chunk)) {
        full = true
        break
      }
      await new Promise<void>((r) => setImmediate(r))
    }
    assert.ok(full, `write() never returned false after ${sent} bytes`)
    assert.equal(rec.drains, 0)
    peer.resume()
    await drainedP
    assert.equal(rec.drains, 1)
    conn.end()
    await rec.closed
    while (received < sent) await new Promise<void>((r) => setImmediate(r))
    assert.equal(received, sent)
  } finally {
    await server.close()
  }
})

test('peer close codes: 1000 is a clean end, anything else an ERR_CONN_CLOSED error', { timeout: 10_000 }, async () => {
  const server = await startServer()
  try {
    for (const [code, clean] of [
      [1000, true],
      [4001, false],
    ] as const) {
      const dialing = dialWebSocket(server.url)
      const peer = await server.next()
      const conn = await dialing
      const rec = recorder()
      conn.start(rec)
      peer.close(code, 'bye')
      const err = await rec.closed
      if (clean) {
        assert.equal(err, undefined)
        assert.deepEqual(rec.events, ['end', 'close'])
      } else {
        assert.ok(isWsfrpError(err, 'ERR_CONN_CLOSED'))
        assert.match(err.message, /4001: bye/)
        assert.deepEqual(rec.events.length, 1)
      }
    }
  } finally {
    await server.close()
  }
})

test('messages that arrive before start() are held, none lost', { timeout: 10_000 }, async () => {
  const server = await startServer()
  try {
    const dialing = dialWebSocket(server.url)
    const peer = await server.next()
    const conn = await dialing
    peer.send(Buffer.from('early-1'))
    peer.send(Buffer.from('early-2'))
    // Let both messages reach the client before anyone listens.
    await new Promise<void>((r) => peer.send(Buffer.from('early-3'), () => r()))
    for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r))
    const rec = recorder()
    conn.start(rec)
    while (rec.bytes() < 21) await new Promise<void>((r) => setImmediate(r))
    assert.equal(Buffer.concat(rec.data).toString(), 'early-1early-2early-3')
    conn.destroy()
  } finally {
    await server.close()
  }
})

test('a text message (frps <= 0.69) fails the connection with a clear error', { timeout: 10_000 }, async () => {
  const server = await startServer()
  try {
    const dialing = dialWebSocket(server.url)
    const peer = await server.next()
    const conn: Conn = await dialing
    const rec = recorder()
    conn.start(rec)
    const peerClosed = new Promise<number>((r) => peer.on('close', (code: number) => r(code)))
    peer.send('text frame')
    const err = await rec.closed
    assert.match(err?.message ?? '', /text WebSocket message/)
    assert.equal(await peerClosed, 4000)
  } finally {
    await server.close()
  }
})

test('destroy(err) reports onClose(err) at once and closes with 4000, never 1006', { timeout: 10_000 }, async () => {
  const server = await startServer()
  try {
    const dialing = dialWebSocket(server.url)
    const peer = await server.next()
    const conn = await dialing
    const rec = recorder()
    conn.start(rec)
    const peerClosed = new Promise<number>((r) => peer.on('close', (code: number) => r(code)))
    const boom = new Error('boom')
    conn.destroy(boom)
    assert.equal(await rec.closed, boom)
    assert.equal(conn.write(Uint8Array.of(1)), false)
    assert.equal(await peerClosed, 4000)
  } finally {
    await server.close()
  }
})

test('dial failures: a refused upgrade is ERR_CONNECT; an abort is ERR_CONN_ABORTED', { timeout: 10_000 }, async () => {
  const refusing = await startServer({ refuse: true })
  try {
    await assert.rejects(dialWebSocket(refusing.url), (e: unknown) => isWsfrpError(e, 'ERR_CONNECT'))
  } finally {
    await refusing.close()
  }
  const server = await startServer()
  try {
    const ac = new AbortController()
    const dialing = dialWebSocket(server.url, { signal: ac.signal })
    ac.abort()
    await assert.rejects(dialing, (e: unknown) => isWsfrpError(e, 'ERR_CONN_ABORTED'))
  } finally {
    await server.close()
  }
})
