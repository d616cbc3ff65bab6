/**
 * End to end in Node: a real wsfrps (`@wsfrp/server`, port 0, with the http vhost) and the browser
 * client's `connect()` over `ws` (isomorphic-ws' Node side), with JavaScript handlers as the local
 * services. Requests come in through the server's public port as plain HTTP/TCP.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { isWsfrpError, noopLogger } from '@wsfrp/core'
import { createServer, type WsfrpServer } from '@wsfrp/server'
import { connect, websocketURL, type ConnectionStatus, type ProxyStatusEvent, type StatusEvent, type WsfrpClient } from '@wsfrp/client-web'

const TOKEN = 'e2e-token'
let server: WsfrpServer
let port = 0

before(async () => {
  server = createServer(
    { bindAddr: '127.0.0.1', bindPort: 0, subDomainHost: 'example.test', auth: { token: TOKEN } },
    { logger: noopLogger, yamux: { keepAliveInterval: 0 } },
  )
  // createServer serves http vhost proxies on its one port (vhostHTTPPort defaults to bindPort).
  port = (await server.listen()).port
})

after(async () => {
  await server.close()
})

function waitFor<T extends Event>(target: EventTarget, type: string, pred: (e: T) => boolean): Promise<T> {
  return new Promise((resolve) => {
    const on = (e: Event): void => {
      if (!pred(e as T)) return
      target.removeEventListener(type, on)
      resolve(e as T)
    }
    target.addEventListener(type, on)
  })
}

function get(path: string, host: string, opts: { method?: string; body?: Uint8Array; agent?: http.Agent } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: { Host: host }, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

test('websocketURL adds the frp path and maps http(s) to ws(s)', { timeout: 5_000 }, () => {
  assert.equal(websocketURL('http://h:7000'), 'ws://h:7000/~!frp')
  assert.equal(websocketURL('wss://h/custom'), 'wss://h/custom')
  assert.throws(() => websocketURL('ftp://h'), (e: unknown) => isWsfrpError(e, 'ERR_CONFIG'))
})

test('connect(): an http handler and a tcp stream handler served through wsfrps', { timeout: 30_000 }, async () => {
  const seen: { method: string; url: string; host: string | null; forwardedFor: string | null }[] = []
  const client: WsfrpClient = connect({
    serverURL: server.url()!,
    token: TOKEN,
    proxies: [
      {
        name: 'web',
        type: 'http',
        subdomain: 'app',
        handler: async (request) => {
          seen.push({ method: request.method, url: request.url, host: request.headers.get('host'), forwardedFor: request.headers.get('x-forwarded-for') })
          if (request.method === 'POST') {
            const h = createHash('sha256')
            let n = 0
            for await (const c of request.body!) {
              h.update(c)
              n += c.length
            }
            return Response.json({ sha: h.digest('hex'), n })
          }
          if (new URL(request.url).pathname === '/boom') throw new Error('handler failure')
          return new Response(`hello from the handler: ${new URL(request.url).pathname}`, { headers: { 'X-Handler': 'yes' } })
        },
      },
      {
        name: 'echo',
        type: 'tcp',
        handler: ({ readable, writable }) => readable.pipeTo(writable),
      },
    ],
    reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
  })
  const statuses: ConnectionStatus[] = []
  client.addEventListener('status', (e) => statuses.push((e as StatusEvent).status))
  const tcpRunning = waitFor<ProxyStatusEvent>(client, 'proxy', (e) => e.name === 'echo' && e.status === 'running')
  const webRunning = waitFor<ProxyStatusEvent>(client, 'proxy', (e) => e.name === 'web' && e.status === 'running')
  await waitFor<StatusEvent>(client, 'status', (e) => e.status === 'online')
  assert.deepEqual(statuses, ['connecting', 'online'])
  assert.match(client.runId ?? '', /^[0-9a-f]{16}$/)
  await webRunning
  const tcp = await tcpRunning

  try {
    const r = await get('/hello?x=1', 'app.example.test')
    assert.equal(r.status, 200)
    assert.equal(r.body.toString(), 'hello from the handler: /hello')
    assert.equal(r.headers['x-handler'], 'yes')
    assert.equal(seen[0]!.host, 'app.example.test')
    assert.equal(seen[0]!.url, 'http://app.example.test/hello?x=1')
    assert.ok(seen[0]!.forwardedFor?.includes('127.0.0.1'), `X-Forwarded-For: ${seen[0]!.forwardedFor}`)

    // Sequential requests over one keep-alive client connection (the server reuses work streams).
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    const data = new Uint8Array(randomBytes(2 * 1024 * 1024))
    for (let i = 0; i < 3; i++) {
      const p = await get('/upload', 'app.example.test', { method: 'POST', body: data, agent })
      assert.deepEqual(JSON.parse(p.body.toString()), { sha: createHash('sha256').update(data).digest('hex'), n: data.length })
    }
    agent.destroy()

    const boom = await get('/boom', 'app.example.test')
    assert.equal(boom.status, 500)
    assert.equal(boom.body.toString(), 'Internal Server Error\n')

    // The tcp proxy: the server picked a port, reported in NewProxyResp.
    const tcpPort = Number(/:(\d+)$/.exec(tcp.detail)?.[1])
    assert.ok(tcpPort > 0, tcp.detail)
    const echoed = await new Promise<Buffer>((resolve, reject) => {
      const sock = net.connect(tcpPort, '127.0.0.1', () => sock.end('ping over tcp'))
      const chunks: Buffer[] = []
      sock.on('data', (c: Buffer) => chunks.push(c))
      sock.on('end', () => resolve(Buffer.concat(chunks)))
      sock.on('error', reject)
    })
    assert.equal(echoed.toString(), 'ping over tcp')

    // Reconnect: the server drops the client's control; the client comes back with the same run id.
    const runId = client.runId!
    const offline = waitFor<StatusEvent>(client, 'status', (e) => e.status === 'offline')
    const online = waitFor<StatusEvent>(client, 'status', (e) => e.status === 'online')
    const running = waitFor<ProxyStatusEvent>(client, 'proxy', (e) => e.name === 'web' && e.status === 'running')
    server.role.controls.get(runId)!.close('test: drop the client')
    await offline
    await online
    await running
    assert.equal(client.runId, runId)
    assert.equal((await get('/again', 'app.example.test')).body.toString(), 'hello from the handler: /again')

    // Proxies come and go at run time (a service worker registering pages' handlers).
    const added = waitFor<ProxyStatusEvent>(client, 'proxy', (e) => e.name === 'late' && e.status === 'running')
    client.addProxy({ name: 'late', type: 'http', customDomains: ['late.test'], handler: () => new Response('late one') })
    await added
    assert.equal((await get('/', 'late.test')).body.toString(), 'late one')
    assert.equal(client.removeProxy('late'), true)
    assert.deepEqual(client.proxyNames().sort(), ['echo', 'web'])
  } finally {
    await client.close()
  }
  assert.equal(client.status, 'offline')
})

test('connect(): a wrong token goes offline with ERR_AUTH and does not retry', { timeout: 10_000 }, async () => {
  const client = connect({ serverURL: server.url()!, token: 'wrong', reconnect: { initialDelayMs: 5 } })
  const statuses: ConnectionStatus[] = []
  client.addEventListener('status', (e) => statuses.push((e as StatusEvent).status))
  const off = await waitFor<StatusEvent>(client, 'status', (e) => e.status === 'offline')
  assert.ok(isWsfrpError(off.error, 'ERR_AUTH'), String(off.error))
  await client.close()
  assert.deepEqual(statuses, ['connecting', 'offline'])
  assert.ok(isWsfrpError(client.lastError, 'ERR_AUTH'))
})

test('connect(): an unreachable server is retried with backoff until close()', { timeout: 10_000 }, async () => {
  // A listener that answers every upgrade with 503: reachable, but never a WebSocket.
  const refusing = http.createServer((_req, res) => res.writeHead(503).end())
  refusing.on('upgrade', (_req, socket: net.Socket) => socket.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n'))
  await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r))
  const addr = refusing.address() as net.AddressInfo
  try {
    const client = connect({ serverURL: `http://127.0.0.1:${addr.port}`, token: TOKEN, reconnect: { initialDelayMs: 5, maxDelayMs: 10 } })
    let attempts = 0
    const third = new Promise<void>((resolve) =>
      client.addEventListener('status', (e) => {
        if ((e as StatusEvent).status === 'connecting' && ++attempts === 3) resolve()
      }),
    )
    await third
    assert.ok(isWsfrpError(client.lastError, 'ERR_CONNECT'), String(client.lastError))
    await client.close()
    assert.equal(client.status, 'offline')
  } finally {
    await new Promise<void>((r) => refusing.close(() => r()))
  }
})

test('connect() validates proxies', { timeout: 5_000 }, () => {
  assert.throws(() => connect({ serverURL: 'ws://127.0.0.1:1', token: '', proxies: [{ name: 'x', type: 'http', handler: () => new Response() }], reconnect: false }), (e: unknown) =>
    isWsfrpError(e, 'ERR_CONFIG'),
  )
  const c = connect({ serverURL: 'ws://127.0.0.1:1', token: '', reconnect: false, connectTimeoutMs: 1 })
  c.addProxy({ name: 'a', type: 'tcp', handler: () => {} })
  assert.throws(() => c.addProxy({ name: 'a', type: 'tcp', handler: () => {} }), (e: unknown) => isWsfrpError(e, 'ERR_CONFIG'))
  void c.close()
})
