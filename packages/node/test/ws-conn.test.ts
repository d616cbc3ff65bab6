import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as http from 'node:http'
import type * as net from 'node:net'
import type { Duplex } from 'node:stream'
import WebSocket from 'ws'
import { isWsfrpError } from '@wsfrp/core'
import { acceptWs, createWsServer, dialWs, type WsConn } from '@wsfrp/node'
import { connSuite, Recorder, type ConnPair } from '../../core/test/support/conn-suite.js'

/**
 * An HTTP server on 127.0.0.1:0 whose upgrades go to `onUpgrade` (default: accept with acceptWs and
 * hand the conn to `accepted()`). `close()` destroys any socket still open, then closes the server.
 */
async function wsServer(onUpgrade?: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void) {
  const wss = createWsServer()
  const server = http.createServer((_req, res) => res.writeHead(404).end())
  const sockets = new Set<net.Socket>()
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  const conns: WsConn[] = []
  const waiters: Array<(c: WsConn) => void> = []
  server.on(
    'upgrade',
    onUpgrade ??
      ((req, socket, head) => {
        acceptWs(wss, req, socket, head).then(
          (conn) => {
            const w = waiters.shift()
            if (w !== undefined) w(conn)
            else conns.push(conn)
          },
          () => {},
        )
      }),
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  return {
    port,
    url: `ws://127.0.0.1:${port}/~!frp`,
    /** The next accepted conn. */
    accepted(): Promise<WsConn> {
      const c = conns.shift()
      return c !== undefined ? Promise.resolve(c) : new Promise((resolve) => waiters.push(resolve))
    },
    async close(): Promise<void> {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      wss.close()
    },
  }
}

async function wsPair(): Promise<ConnPair> {
  const srv = await wsServer()
  const got = srv.accepted()
  const a = await dialWs(srv.url)
  const b = await got
  return { a, b, cleanup: () => srv.close() }
}

// A WebSocket has no half-close: end() closes both directions.
connSuite('wsConn over ws on loopback', wsPair, { skipHalfClose: true })

const T = { timeout: 15_000 }

/** A raw `ws` client against our server, to send frames wsConn itself never sends. */
async function rawClient(url: string): Promise<WebSocket> {
  const raw = new WebSocket(url, { origin: 'http://test.local', skipUTF8Validation: true })
  await new Promise<void>((resolve, reject) => {
    raw.once('open', resolve)
    raw.once('error', reject)
  })
  return raw
}

/** Records every message a raw client receives; `wait(n)` resolves once n have arrived. */
function collect(ws: WebSocket) {
  const msgs: Array<{ data: Buffer; isBinary: boolean }> = []
  let waiter: { n: number; resolve: () => void } | undefined
  ws.on('message', (data, isBinary) => {
    msgs.push({ data: data as Buffer, isBinary })
    if (waiter !== undefined && msgs.length >= waiter.n) waiter.resolve()
  })
  return {
    msgs,
    wait: (n: number) =>
      msgs.length >= n ? Promise.resolve() : new Promise<void>((resolve) => (waiter = { n, resolve })),
  }
}

test('a TEXT frame carrying invalid UTF-8 arrives intact as bytes (frp <= 0.69)', T, async () => {
  const srv = await wsServer()
  const got = srv.accepted()
  const raw = await rawClient(srv.url)
  const b = await got
  try {
    // 0xff and 0xfe never occur in UTF-8; 0xc3 0x28 is a broken 2-byte sequence; 0x80 a stray continuation.
    const bytes = Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x00, 0x80, 0x41])
    const rb = new Recorder().expect(bytes)
    b.start(rb)
    raw.send(bytes, { binary: false })
    await rb.waitFor(() => rb.bytes === bytes.length, 'bytes')
    rb.assertReceivedAll('text frame')
    assert.equal(rb.closes, 0, 'the connection must survive the invalid text frame')
  } finally {
    raw.terminate()
    b.destroy()
    await srv.close()
  }
})

test('wsConn sends binary frames, and writev() sends one message', T, async () => {
  const srv = await wsServer()
  const got = srv.accepted()
  const raw = await rawClient(srv.url)
  const b = await got
  try {
    b.start(new Recorder())
    const got = collect(raw)
    b.write(new Uint8Array([1, 2, 3]))
    b.writev([new Uint8Array([4, 5]), new Uint8Array([]), new Uint8Array([6])])
    b.write(new Uint8Array([7]))
    await got.wait(3)
    assert.deepEqual(
      got.msgs.map((m) => [m.isBinary, [...m.data]]),
      [
        [true, [1, 2, 3]],
        [true, [4, 5, 6]],
        [true, [7]],
      ],
      'binary frames; writev is one message',
    )
  } finally {
    raw.terminate()
    b.destroy()
    await srv.close()
  }
})

test('a close frame with code 1000 is onEnd then onClose(); another code is ERR_CONN_CLOSED', T, async () => {
  const srv = await wsServer()
  try {
    for (const [code, clean] of [
      [1000, true],
      [4000, false],
    ] as const) {
      const got = srv.accepted()
      const raw = await rawClient(srv.url)
      const b = await got
      const rb = new Recorder()
      b.start(rb)
      raw.close(code, 'bye')
      await rb.waitClosed()
      assert.equal(rb.ended, clean)
      if (clean) rb.assertCleanClose()
      else {
        assert.ok(isWsfrpError(rb.closeErr, 'ERR_CONN_CLOSED'))
        assert.match(rb.closeErr.message, /4000/)
      }
    }
  } finally {
    await srv.close()
  }
})

test('dialWs always sends an Origin header (default http://host:port) and offers no extension', T, async () => {
  const seen: http.IncomingHttpHeaders[] = []
  const wss = createWsServer()
  const srv = await wsServer((req, socket, head) => {
    seen.push(req.headers)
    acceptWs(wss, req, socket, head).then(
      (c) => c.destroy(),
      () => {},
    )
  })
  try {
    const a = await dialWs(srv.url)
    a.destroy()
    const c = await dialWs(srv.url, { origin: 'https://example.com', headers: { 'x-test': '1' } })
    c.destroy()
    assert.equal(seen.length, 2)
    assert.equal(seen[0]!.origin, `http://127.0.0.1:${srv.port}`)
    assert.equal(seen[0]!['sec-websocket-extensions'], undefined)
    assert.equal(seen[1]!.origin, 'https://example.com')
    assert.equal(seen[1]!['x-test'], '1')
  } finally {
    await srv.close()
    wss.close()
  }
})

test('dialWs: a 403 answer is ERR_CONNECT', T, async () => {
  const srv = await wsServer((_req, socket) => {
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
  })
  try {
    await assert.rejects(dialWs(srv.url), (err: unknown) => {
      assert.ok(isWsfrpError(err, 'ERR_CONNECT'))
      assert.match(err.message, /403/)
      return true
    })
  } finally {
    await srv.close()
  }
})

test('dialWs: no answer to the upgrade is ERR_TIMEOUT after handshakeTimeoutMs', T, async () => {
  let upgraded!: () => void
  const sawUpgrade = new Promise<void>((resolve) => (upgraded = resolve))
  const srv = await wsServer(() => upgraded())
  try {
    const dial = dialWs(srv.url, { handshakeTimeoutMs: 100 })
    await sawUpgrade
    await assert.rejects(dial, (err: unknown) => isWsfrpError(err, 'ERR_TIMEOUT'))
  } finally {
    await srv.close()
  }
})

test('dialWs: abort gives ERR_CONN_ABORTED; a bad URL gives ERR_CONFIG', T, async () => {
  const srv = await wsServer(() => {})
  try {
    const ac = new AbortController()
    const dial = dialWs(srv.url, { signal: ac.signal })
    ac.abort()
    await assert.rejects(dial, (err: unknown) => isWsfrpError(err, 'ERR_CONN_ABORTED'))
    await assert.rejects(dialWs('http://127.0.0.1:1/'), (err: unknown) => isWsfrpError(err, 'ERR_CONFIG'))
    await assert.rejects(dialWs('not a url'), (err: unknown) => isWsfrpError(err, 'ERR_CONFIG'))
  } finally {
    await srv.close()
  }
})

test('acceptWs: an invalid upgrade request is rejected with ERR_CONNECT', T, async () => {
  const wss = createWsServer()
  let result!: Promise<unknown>
  let upgraded!: () => void
  const sawUpgrade = new Promise<void>((resolve) => (upgraded = resolve))
  const srv = await wsServer((req, socket, head) => {
    result = acceptWs(wss, req, socket, head)
    upgraded()
  })
  try {
    // Upgrade: websocket but no Sec-WebSocket-Key: ws answers 400 and closes.
    const req = http.request(`http://127.0.0.1:${srv.port}/`, {
      headers: { Connection: 'Upgrade', Upgrade: 'websocket' },
    })
    const answered = new Promise<number>((resolve) => req.on('response', (res) => resolve(res.statusCode ?? 0)))
    req.on('error', () => {})
    req.end()
    await sawUpgrade
    await assert.rejects(result, (err: unknown) => isWsfrpError(err, 'ERR_CONNECT'))
    assert.equal(await answered, 400)
  } finally {
    await srv.close()
    wss.close()
  }
})
