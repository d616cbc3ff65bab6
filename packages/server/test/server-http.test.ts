import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as http from 'node:http'
import * as net from 'node:net'
import { once } from 'node:events'
import WebSocket from 'ws'
import { YamuxSession } from '@wsfrp/core'
import { wsConn } from '@wsfrp/node'
import { createServer } from '@wsfrp/server'
import { TOKEN, memoryLogger, startServer } from './support/helpers.js'

/** GET (or another method) on 127.0.0.1:port; resolves with status, headers and body. */
function request(port: number, path: string, opts: { method?: string; headers?: Record<string, string> } = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

/** Sends a raw upgrade request and resolves with the status line and headers of the answer. */
function rawUpgrade(port: number, path: string, extraHeaders = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`,
      )
    })
    let got = ''
    s.setEncoding('latin1')
    s.on('data', (c: string) => {
      got += c
      const end = got.indexOf('\r\n\r\n')
      if (end >= 0) {
        s.destroy()
        resolve(got.slice(0, end))
      }
    })
    s.on('error', reject)
    s.on('close', () => reject(new Error(`closed before a full answer: ${JSON.stringify(got)}`)))
  })
}

function openWs(url: string, opts?: WebSocket.ClientOptions): Promise<{ ws: WebSocket; res: http.IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts)
    let res: http.IncomingMessage | undefined
    ws.once('upgrade', (r) => (res = r))
    ws.once('open', () => resolve({ ws, res: res! }))
    ws.once('error', reject)
  })
}

test('upgrade at /~!frp without an Origin header is accepted', { timeout: 10_000 }, async () => {
  const { server, url } = await startServer()
  try {
    const opened = once(server, 'transport-open')
    const { ws, res } = await openWs(url, { perMessageDeflate: false })
    assert.equal(res.statusCode, 101)
    const [info] = (await opened) as [{ remoteAddress: string; path: string }]
    assert.equal(info.path, '/~!frp')
    assert.match(info.remoteAddress, /^127\.0\.0\.1:\d+$/)
    ws.terminate()
  } finally {
    await server.close()
  }
})

test('extensions are never negotiated, even when the client offers permessage-deflate', { timeout: 10_000 }, async () => {
  const { server, url, port } = await startServer()
  try {
    const { ws, res } = await openWs(url, { perMessageDeflate: true })
    assert.equal(res.headers['sec-websocket-extensions'], undefined)
    assert.equal(ws.extensions, '')
    ws.terminate()
    // The same over a raw request, so the check does not depend on the ws client's own parsing.
    const head = await rawUpgrade(port, '/~!frp', 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n')
    assert.match(head, /^HTTP\/1\.1 101 /)
    assert.doesNotMatch(head, /sec-websocket-extensions/i)
  } finally {
    await server.close()
  }
})

test('extra transport.wsPaths are served too; other upgrade paths get 404', { timeout: 10_000 }, async () => {
  const { server, port } = await startServer({ transport: { wsPaths: ['/tunnel'] } })
  try {
    assert.match(await rawUpgrade(port, '/tunnel'), /^HTTP\/1\.1 101 /)
    assert.match(await rawUpgrade(port, '/~!frp?x=1'), /^HTTP\/1\.1 101 /)
    assert.match(await rawUpgrade(port, '/other'), /^HTTP\/1\.1 404 /)
    assert.match(await rawUpgrade(port, '/~!frpx'), /^HTTP\/1\.1 404 /)
  } finally {
    await server.close()
  }
})

test('text and binary WebSocket frames are both taken as raw bytes (frp <= 0.69 sends TEXT frames)', { timeout: 10_000 }, async () => {
  const { server, url } = await startServer()
  try {
    const { ws } = await openWs(url, { perMessageDeflate: false })
    const closed = once(ws, 'close')
    // A yamux header that is not valid UTF-8, in a TEXT frame: a validating server would close with
    // 1007; ours hands the bytes to yamux, which rejects version 0xff as a protocol error instead.
    ws.send(Buffer.from([0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), { binary: false })
    const [code] = (await closed) as [number]
    assert.notEqual(code, 1007)
  } finally {
    await server.close()
  }
})

test('GET /healthz answers 200 ok', { timeout: 10_000 }, async () => {
  const { server, port } = await startServer()
  try {
    const r = await request(port, '/healthz')
    assert.equal(r.status, 200)
    assert.equal(r.body.trim(), 'ok')
  } finally {
    await server.close()
  }
})

test('the landing page shows product, version, a client command and counts, never the token', { timeout: 10_000 }, async () => {
  const { server, port } = await startServer()
  try {
    const r = await request(port, '/')
    assert.equal(r.status, 200)
    assert.match(String(r.headers['content-type']), /^text\/html/)
    assert.match(r.body, /wsfrps/)
    assert.match(r.body, /0\.\d+\.\d+/)
    assert.ok(r.body.includes(`wsfrpc tcp --server ws://127.0.0.1:${port} --token &lt;your-token&gt; --local-port 22 --remote-port 6000`), r.body)
    assert.match(r.body, /id="clients">0</)
    assert.match(r.body, /id="proxies">0</)
    assert.ok(!r.body.includes(TOKEN), 'the token must not appear on the landing page')
    const other = await request(port, '/some/where')
    assert.equal(other.status, 200)
    assert.ok(!other.body.includes(TOKEN))
  } finally {
    await server.close()
  }
})

test('a hostile Host header never reaches a page unescaped (it is no own name: 404 page)', { timeout: 10_000 }, async () => {
  const { server, port } = await startServer()
  try {
    const r = await request(port, '/', { headers: { Host: 'evil"><script>x</script>' } })
    assert.equal(r.status, 404)
    assert.ok(!r.body.includes('<script>'))
    const own = await request(port, '/', { headers: { Host: `127.0.0.1:${port}` } })
    assert.equal(own.status, 200)
    assert.ok(own.body.includes(`ws://127.0.0.1:${port}`))
  } finally {
    await server.close()
  }
})

test('use() handlers run before the landing page and can pass requests on', { timeout: 10_000 }, async () => {
  const { server, port } = await startServer()
  server.use((req, res, next) => {
    if (req.headers.host?.startsWith('app.')) res.end('vhost')
    else next()
  })
  server.use(async (req, _res, next) => {
    if (req.url === '/boom') throw new Error('handler bug')
    next()
  })
  try {
    assert.equal((await request(port, '/', { headers: { Host: 'app.example.com' } })).body, 'vhost')
    assert.equal((await request(port, '/boom')).status, 500)
    assert.equal((await request(port, '/healthz')).body.trim(), 'ok')
    assert.match((await request(port, '/')).body, /wsfrps/)
  } finally {
    await server.close()
  }
})

test('attach() serves /~!frp on an existing server and leaves the app alone', { timeout: 10_000 }, async () => {
  const app = http.createServer((req, res) => {
    if (req.url === '/app') res.end('app route')
    else res.writeHead(404).end()
  })
  app.listen(0, '127.0.0.1')
  await once(app, 'listening')
  const port = (app.address() as net.AddressInfo).port
  // A WebSocket server the app attached before us: it must keep its path and never see ours.
  const { WebSocketServer } = await import('ws')
  const appWss = new WebSocketServer({ server: app, path: '/app-ws' })
  const wsfrps = createServer({ auth: { token: TOKEN } }, { logger: memoryLogger() })
  const detach = wsfrps.attach(app)
  try {
    assert.equal((await request(port, '/app')).body, 'app route')
    assert.equal((await request(port, '/nothing')).status, 404)
    // A working session (a yamux ping answered), not just a 101 that the app's ws server then spoils.
    const { ws } = await openWs(`ws://127.0.0.1:${port}/~!frp`, { perMessageDeflate: false })
    const mux = new YamuxSession(wsConn(ws), { client: true, keepAliveInterval: 0 })
    assert.ok((await mux.ping()) >= 0)
    mux.close()
    assert.match(await rawUpgrade(port, '/app-ws'), /^HTTP\/1\.1 101 /)
    assert.equal(wsfrps.address()?.port, port)
  } finally {
    await wsfrps.close()
    detach()
    appWss.close()
    app.closeAllConnections()
    await new Promise<void>((resolve) => app.close(() => resolve()))
  }
})

test('listen() on a port in use fails with a clear error', { timeout: 10_000 }, async () => {
  const { server, port } = await startServer()
  try {
    const second = createServer({ bindAddr: '127.0.0.1', bindPort: port }, { logger: memoryLogger() })
    await assert.rejects(second.listen(), (err: Error) => err.message.includes(`port ${port} is already in use`))
  } finally {
    await server.close()
  }
})
