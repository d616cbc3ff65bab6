/**
 * `vhostHTTPPort`: shared with bindPort (default), a vhost-only listener of its own, or 0 (off, as
 * frps). Real server, real client over the WebSocket, real local service, all on 127.0.0.1.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as http from 'node:http'
import * as net from 'node:net'
import { once } from 'node:events'
import { isWsfrpError } from '@wsfrp/core'
import { dialWs } from '@wsfrp/node'
import { createServer, type ServerConfigInput, type WsfrpServer } from '@wsfrp/server'
import { ERROR_HEADER } from '../src/vhost/index.js'
import { getJson, request as get } from './dashboard-support.js'
import { connectClient, freePort, memoryLogger, startServer } from './support/helpers.js'
import { closeServer, describeHandler, localService, request } from './vhost-support.js'

const T = { timeout: 20_000 }


/**
 * Starts a server whose `vhostHTTPPort` (and `bindPort`, with `fixedBindPort`) are free ports. A
 * config file cannot ask for "any free port" for a second listener, so the port is found first;
 * should another process take it in between, listen() fails with EADDRINUSE and this tries again.
 */
async function startWithPorts(
  config: (ports: { vhost: number; bind: number }) => ServerConfigInput,
  logger = memoryLogger(),
): Promise<{ server: WsfrpServer; port: number; url: string; vhostPort: number; logger: ReturnType<typeof memoryLogger> }> {
  for (let attempt = 0; ; attempt++) {
    const ports = { vhost: await freePort(), bind: await freePort() }
    try {
      const s = await startServer(config(ports), logger)
      return { ...s, vhostPort: ports.vhost, logger }
    } catch (err) {
      if (attempt < 5 && isWsfrpError(err, 'ERR_CONNECT') && /already in use/.test(err.message)) continue
      throw err
    }
  }
}

test('vhostHTTPPort of its own: routes there through the tunnel; the bind port keeps the WebSocket endpoint', T, async () => {
  const local = await localService(describeHandler('own'))
  const { server, port, url, vhostPort, logger } = await startWithPorts(({ vhost }) => ({ vhostHTTPPort: vhost, subDomainHost: 'example.test' }))
  try {
    assert.equal(server.vhostMode, 'own')
    assert.deepEqual(server.vhostAddress(), { address: '127.0.0.1', port: vhostPort })
    assert.ok(logger.lines.some((l) => l.includes('http vhosts listening') && l.includes(`127.0.0.1:${vhostPort}`)), logger.lines.join('\n'))
    // The client dials the bind port: the WebSocket endpoint is there.
    const c = await connectClient(url, [{ name: 'web', type: 'http', fields: { custom_domains: ['app.test'], subdomain: 'demo' } }], { targetPort: local.port })
    const st = await c.status('web')
    assert.equal(st.status, 'running')
    // NewProxyResp.remote_addr (what wsfrpc prints as the public URL) names the vhost port.
    assert.deepEqual(st.detail.split(',').sort(), [`app.test:${vhostPort}`, `demo.example.test:${vhostPort}`])

    const r = await request(vhostPort, 'app.test', { path: '/hello?x=1', method: 'POST', body: 'hi' })
    assert.equal(r.status, 200)
    const seen = JSON.parse(r.body.toString()) as { url: string; body: string }
    assert.equal(seen.url, '/hello?x=1')
    assert.equal(seen.body, 'hi')
    assert.equal((await request(vhostPort, `demo.example.test:${vhostPort}`)).status, 200)
    // Nothing is reserved on a vhost port: even /~!frp and /healthz of a routed host go to its proxy.
    assert.equal(JSON.parse((await request(vhostPort, 'app.test', { path: '/~!frp' })).body.toString()).url, '/~!frp')
    assert.equal(JSON.parse((await request(vhostPort, 'app.test', { path: '/healthz' })).body.toString()).url, '/healthz')

    // Only vhost routing there: no landing page, health check, dashboard or WebSocket endpoint.
    for (const path of ['/', '/healthz', '/_wsfrp/api/serverinfo']) {
      const own = await request(vhostPort, '127.0.0.1', { path })
      assert.equal(own.status, 404, path)
      assert.equal(own.headers[ERROR_HEADER.toLowerCase()], 'no-route', path)
    }
    await assert.rejects(dialWs(`ws://127.0.0.1:${vhostPort}/~!frp`))

    // The bind port no longer routes vhosts; it still serves its own pages.
    const onBind = await request(port, 'app.test')
    assert.equal(onBind.status, 404)
    assert.equal(onBind.headers[ERROR_HEADER.toLowerCase()], 'no-route')
    assert.equal((await get(port, '/healthz')).status, 200)
    // /api/serverinfo reports the vhost port, as frps does.
    const info = await getJson<{ bindPort: number; vhostHTTPPort: number }>(port, '/_wsfrp/api/serverinfo')
    assert.equal(info.bindPort, port)
    assert.equal(info.vhostHTTPPort, vhostPort)
    assert.equal(local.requests.length, 4)
    c.client.close()
  } finally {
    await server.close()
    await closeServer(local.server)
  }
  // The vhost listener stops with the server.
  await assert.rejects(
    new Promise<void>((resolve, reject) => {
      const s = net.connect(vhostPort, '127.0.0.1', () => {
        s.destroy()
        resolve()
      })
      s.on('error', reject)
    }),
    /ECONNREFUSED/,
  )
})

test('CONNECT and HTTP/2.0 get their stable errors on the bind port too', T, async () => {
  const { server, port } = await startServer({}, memoryLogger())
  try {
    const connect = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'CONNECT', path: 'example.com:443', agent: false })
      req.on('connect', (res, socket) => {
        socket.destroy()
        resolve(res)
      })
      req.on('error', reject)
      req.end()
    })
    assert.equal(connect.statusCode, 405)
    assert.equal(connect.headers[ERROR_HEADER.toLowerCase()], 'method-not-allowed')
    const text = await new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => s.write('GET /healthz HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n'))
      let got = ''
      s.on('data', (d: Buffer) => (got += d.toString('latin1')))
      s.on('close', () => resolve(got))
      s.on('error', reject)
    })
    assert.match(text, /^HTTP\/1\.1 505 /)
    assert.match(text, /x-wsfrp-error: version-not-supported/i)
  } finally {
    await server.close()
  }
})

test('vhostHTTPPort = 0 turns http vhosts off, as frps: http proxies are refused', T, async () => {
  const { server, url, port } = await startWithPorts(({ bind }) => ({ bindPort: bind, vhostHTTPPort: 0 }))
  try {
    assert.equal(server.vhostMode, 'off')
    assert.equal(server.vhostAddress(), undefined)
    const c = await connectClient(url, [{ name: 'web', type: 'http', fields: { custom_domains: ['app.test'] } }])
    const st = await c.status('web')
    assert.equal(st.status, 'error')
    assert.match(st.detail, /vhostHTTPPort = 0/)
    const info = await getJson<{ vhostHTTPPort: number }>(port, '/_wsfrp/api/serverinfo')
    assert.equal(info.vhostHTTPPort, 0)
    c.client.close()
  } finally {
    await server.close()
  }
})

test('a vhostHTTPPort that is taken fails listen() with ERR_CONNECT and gives the bind port back', T, async () => {
  const blocker = net.createServer()
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r))
  const taken = (blocker.address() as net.AddressInfo).port
  const server = createServer({ bindAddr: '127.0.0.1', bindPort: 0, proxyBindAddr: '127.0.0.1', vhostHTTPPort: taken }, { logger: memoryLogger() })
  try {
    await assert.rejects(server.listen(), (e: unknown) => isWsfrpError(e, 'ERR_CONNECT') && /vhostHTTPPort/.test(e.message) && e.message.includes(String(taken)))
    assert.equal(server.address(), undefined)
    assert.equal(server.vhostAddress(), undefined)
  } finally {
    await server.close()
    await new Promise<void>((r) => blocker.close(() => r()))
  }
})

test('shared port: an upgrade to the frp endpoint pipelined behind a vhost request is answered after its response', T, async () => {
  let releaseFirst!: () => void
  const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve))
  const local = await localService((_req, res) => {
    void firstHeld.then(() => {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 15 })
      res.end('answer to first')
    })
  })
  const { server, port, url } = await startServer({}, memoryLogger())
  let s: net.Socket | undefined
  try {
    const c = await connectClient(url, [{ name: 'web', type: 'http', fields: { custom_domains: ['pipe.test'] } }], { targetPort: local.port })
    assert.equal((await c.status('web')).status, 'running')
    // The server's http.Server is private; the test only listens to it, to release the held
    // response once Node has handed over the upgrade (it does so before that response is written).
    const upgradeSeen = once((server as unknown as { httpServer: http.Server }).httpServer, 'upgrade')
    s = net.connect(port, '127.0.0.1')
    let text = ''
    const waiters: (() => void)[] = []
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1')
      for (const w of waiters.splice(0)) w()
    })
    s.on('error', () => {})
    await once(s, 'connect')
    s.write(
      'GET /first HTTP/1.1\r\nHost: pipe.test\r\n\r\n' +
        `GET /~!frp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    )
    await upgradeSeen
    releaseFirst()
    while (!text.includes('HTTP/1.1 101 ')) {
      assert.ok(!s.destroyed, `closed early: ${JSON.stringify(text)}`)
      await new Promise<void>((r) => waiters.push(r))
    }
    const iFirst = text.indexOf('answer to first')
    assert.ok(text.startsWith('HTTP/1.1 200 OK\r\n') && iFirst > 0 && text.indexOf('HTTP/1.1 101 ') > iFirst, `order: ${JSON.stringify(text)}`)
    c.client.close()
  } finally {
    s?.destroy()
    await server.close()
    await closeServer(local.server)
  }
})
