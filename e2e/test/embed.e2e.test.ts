/**
 * PaaS shapes: one port for everything.
 *  - wsfrps embedded in an existing Node http app with `attach(app)`: the app keeps its routes and
 *    its own WebSocket endpoint, wsfrp serves /~!frp, unknown routes fall through to wsfrps's
 *    /healthz; a wsfrpc process tunnels through the app's port.
 *  - the wsfrps CLI without a config file binds $PORT; the same port carries the tunnel, /healthz
 *    and the landing page. A config file can take the port with `bindPort = {{ .Envs.PORT }}`.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket, { WebSocketServer } from 'ws'
import { noopLogger } from '@wsfrp/core'
import { createServer, type WsfrpServer } from '@wsfrp/server'
import { freePort } from '../src/nginx.js'
import { startCli, type Proc } from '../src/process.js'
import { startEchoServer, type Service } from '../src/services.js'
import { Procs, TOKEN, echoTransfer, proxyPort, roundTrip, startClient } from '../src/tunnel.js'

async function get(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  const req = http.get({ host: '127.0.0.1', port, path })
  const [res] = (await once(req, 'response')) as [http.IncomingMessage]
  let body = ''
  res.setEncoding('utf8')
  for await (const chunk of res) body += chunk as string
  return { status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }
}

describe('wsfrps attached to an existing http app (one port)', { timeout: 60_000 }, () => {
  const procs = new Procs()
  let tmp: string
  let echo: Service
  let app: http.Server
  let appWs: WebSocketServer
  let wsfrps: WsfrpServer
  let port: number
  let client: Proc

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'wsfrp-embed-'))
    echo = await startEchoServer()
    wsfrps = createServer({ proxyBindAddr: '127.0.0.1', auth: { token: TOKEN } }, { logger: noopLogger })
    app = http.createServer((req, res) => {
      if (req.url === '/api/hello') {
        res.writeHead(200, { 'Content-Type': 'application/json' })
        res.end(JSON.stringify({ hello: 'from the app' }))
        return
      }
      if (req.url === '/') {
        res.writeHead(200, { 'Content-Type': 'text/plain' })
        res.end('the app home page\n')
        return
      }
      // Whatever the app does not know goes to wsfrps: /healthz, its landing page, 404s.
      wsfrps.handleRequest(req, res)
    })
    // The app's own WebSocket, installed the usual way ({ server, path }) BEFORE attach(): a ws
    // server in that mode answers 400 to every other path, so attach() must go in front of it.
    appWs = new WebSocketServer({ server: app, path: '/app/live' })
    appWs.on('connection', (sock) => sock.on('message', (m, binary) => sock.send(`app says: ${(binary ? Buffer.from(m as Buffer) : m).toString()}`)))
    wsfrps.attach(app)
    app.listen(0, '127.0.0.1')
    await once(app, 'listening')
    port = (app.address() as AddressInfo).port
    client = startClient(procs, tmp, {
      settings: ['serverAddr = "127.0.0.1"', `serverPort = ${port}`],
      proxies: [{ name: 'echo', localPort: echo.port }],
    })
  })

  after(async () => {
    await procs.stopAll()
    await wsfrps?.close()
    appWs?.close()
    if (app !== undefined) {
      app.closeAllConnections()
      await new Promise<void>((resolve) => app.close(() => resolve()))
    }
    await echo?.close()
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true })
  })

  test('a wsfrpc process tunnels through the app port: tcp proxy echo and 4 MiB by sha256', { timeout: 30_000 }, async () => {
    const p = await proxyPort(client, 'echo')
    assert.equal((await roundTrip(p, Buffer.from('embedded\n'))).toString(), 'embedded\n')
    const r = await echoTransfer(p, 4)
    assert.equal(r.got, r.sent)
    assert.equal(wsfrps.stats().clients, 1)
  })

  test("the app's routes and its own WebSocket keep working; /healthz falls through to wsfrps", { timeout: 30_000 }, async () => {
    assert.deepEqual(await get(port, '/api/hello'), { status: 200, type: 'application/json', body: '{"hello":"from the app"}' })
    assert.equal((await get(port, '/')).body, 'the app home page\n')
    assert.deepEqual(await get(port, '/healthz'), { status: 200, type: 'text/plain; charset=utf-8', body: 'ok\n' })
    const ws = new WebSocket(`ws://127.0.0.1:${port}/app/live`)
    await once(ws, 'open')
    ws.send('ping')
    const [reply] = (await once(ws, 'message')) as [Buffer]
    assert.equal(reply.toString(), 'app says: ping')
    ws.close()
    await once(ws, 'close')
  })
})

describe('wsfrps CLI on $PORT (PaaS start command)', { timeout: 90_000 }, () => {
  const procs = new Procs()
  let tmp: string
  let echo: Service

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'wsfrp-port-'))
    echo = await startEchoServer()
  })
  after(async () => {
    await procs.stopAll()
    await echo?.close()
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true })
  })

  /**
   * Starts the CLI on a port chosen by the OS a moment before (a $PORT cannot be 0: a platform
   * hands out a real one), again on another port if that one was taken in between.
   */
  async function startOnPort(args: string[]): Promise<{ proc: Proc; port: number }> {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort()
      const proc = procs.track(startCli('server', args, { env: { PORT: String(port), WSFRP_TOKEN: TOKEN } }))
      const m = await proc.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)\/~!frp|EADDRINUSE/)
      if (!m[0].includes('EADDRINUSE')) {
        assert.equal(Number(m[1]), port, 'the server bound $PORT')
        return { proc, port }
      }
      await proc.stop()
      if (attempt >= 5) throw new Error(`port taken 5 times in a row: ${m[0]}`)
    }
  }

  async function checkOnePort(port: number): Promise<void> {
    const health = await get(port, '/healthz')
    assert.equal(health.status, 200)
    assert.equal(health.body, 'ok\n')
    const landing = await get(port, '/')
    assert.equal(landing.status, 200)
    assert.match(landing.type, /^text\/html/)
    const client = startClient(procs, tmp, { settings: ['serverAddr = "127.0.0.1"', `serverPort = ${port}`], proxies: [{ name: 'echo', localPort: echo.port }] })
    const p = await proxyPort(client, 'echo')
    assert.equal((await roundTrip(p, Buffer.from('paas\n'))).toString(), 'paas\n')
    await client.stop()
  }

  test('no config file: wsfrps binds $PORT; that port carries the tunnel, /healthz and the landing page', { timeout: 40_000 }, async () => {
    const { proc, port } = await startOnPort([])
    assert.ok(!proc.lines.some((l) => l.includes('generated for this run')), 'WSFRP_TOKEN is used, no token is generated')
    await checkOnePort(port)
  })

  test('a config file takes the port with bindPort = {{ .Envs.PORT }}', { timeout: 40_000 }, async () => {
    const file = join(tmp, 'server.toml')
    writeFileSync(file, 'bindAddr = "127.0.0.1"\nbindPort = {{ .Envs.PORT }}\nproxyBindAddr = "127.0.0.1"\nauth.token = "{{ .Envs.WSFRP_TOKEN }}"\n')
    const { port } = await startOnPort(['-c', file])
    await checkOnePort(port)
  })
})
