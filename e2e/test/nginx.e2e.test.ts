/**
 * wsfrps behind nginx on a path prefix, TLS on nginx (a test CA made by openssl now): the client
 * dials wss://localhost:NGINX/some/prefix/tunnel, nginx passes the upgrade to wsfrps's extra
 * WebSocket path /tunnel in plain http. tcp proxies, the health check and an http vhost proxy (with
 * the X-Forwarded-* chain) all go through the one nginx port.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import * as http from 'node:http'
import * as https from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CONNECTION_UPGRADE_MAP, missingTools, proxyLocation, startNginx, type Nginx } from '../src/nginx.js'
import type { Proc } from '../src/process.js'
import { startEchoServer, type Service } from '../src/services.js'
import { createTestCa, type TestCa } from '../src/tls.js'
import { MiB, Procs, echoTransfer, proxyPort, roundTrip, startClient, startServer } from '../src/tunnel.js'

const skip = missingTools('nginx reverse proxy', [
  { bin: 'nginx', pkg: 'nginx' },
  { bin: 'openssl', args: ['version'], pkg: 'openssl' },
])

/** A local web app behind an http proxy: answers with what it received. */
async function startHeaderApp(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' })
    res.end(JSON.stringify({ path: req.url, headers: req.headers }))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** One HTTPS request to nginx (SNI localhost, trusting the test CA). */
async function viaNginx(port: number, ca: Buffer, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const req = https.request({ host: '127.0.0.1', port, path, servername: 'localhost', ca, headers: { host: 'localhost', ...headers } })
  req.end()
  const [res] = (await once(req, 'response')) as [http.IncomingMessage]
  let body = ''
  res.setEncoding('utf8')
  for await (const chunk of res) body += chunk as string
  return { status: res.statusCode ?? 0, body }
}

describe('wsfrps behind nginx on a path prefix (TLS on nginx)', { timeout: 180_000, skip }, () => {
  const procs = new Procs()
  let tmp: string
  let ca: TestCa
  let caPem: Buffer
  let nginx: Nginx
  let echo: Service
  let app: { port: number; close(): Promise<void> }
  let server: { proc: Proc; port: number }
  let client: Proc
  let echoPort: number
  let nginxPort: number

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'wsfrp-nginx-'))
    ca = createTestCa(tmp)
    caPem = readFileSync(ca.caFile)
    const cert = ca.issue('nginx', ['DNS:localhost', 'IP:127.0.0.1'])
    echo = await startEchoServer()
    app = await startHeaderApp()
    server = await startServer(procs, tmp, 'transport.wsPaths = ["/tunnel"]')
    nginx = await startNginx({
      tmp,
      ports: 1,
      http: ([port]) => `  ${CONNECTION_UPGRADE_MAP}
  server {
    listen 127.0.0.1:${port} ssl;
    server_name localhost;
    ssl_certificate ${cert.certFile};
    ssl_certificate_key ${cert.keyFile};
${proxyLocation('/some/prefix/tunnel', `http://127.0.0.1:${server.port}/tunnel`, ['proxy_read_timeout 1h;', 'proxy_send_timeout 1h;', 'proxy_buffering off;'])}
${proxyLocation('/', `http://127.0.0.1:${server.port}`)}
  }`,
    })
    nginxPort = nginx.ports[0]!
    client = startClient(procs, tmp, {
      settings: [`serverURL = "wss://localhost:${nginxPort}/some/prefix/tunnel"`, `transport.tls.trustedCaFile = "${ca.caFile}"`],
      proxies: [{ name: 'echo', localPort: echo.port }],
      extra: ['', '[[proxies]]', 'name = "web"', 'type = "http"', 'localIP = "127.0.0.1"', `localPort = ${app.port}`, 'customDomains = ["app.test"]'],
    })
    echoPort = await proxyPort(client, 'echo')
    await client.waitForLine(/\[web\] http proxy running/)
  })

  after(async () => {
    await procs.stopAll()
    await nginx?.stop()
    await echo?.close()
    await app?.close()
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true })
  })

  test('the client logs in through nginx at wss://localhost:PORT/some/prefix/tunnel; a tcp proxy echoes and carries 8 MiB (sha256)', { timeout: 60_000 }, async () => {
    assert.ok(client.lines.some((l) => l.includes(`logged in to wss://localhost:${nginxPort}/some/prefix/tunnel`)), client.lines.join('\n'))
    assert.equal((await roundTrip(echoPort, Buffer.from('through nginx\n'))).toString(), 'through nginx\n')
    const r = await echoTransfer(echoPort, 8)
    assert.equal(r.bytes, 8 * MiB)
    assert.equal(r.got, r.sent)
  })

  test('one nginx port also serves /healthz, and a plain GET on the tunnel path reaches wsfrps (426)', { timeout: 20_000 }, async () => {
    assert.deepEqual(await viaNginx(nginxPort, caPem, '/healthz'), { status: 200, body: 'ok\n' })
    const plain = await viaNginx(nginxPort, caPem, '/some/prefix/tunnel')
    assert.equal(plain.status, 426)
    assert.match(plain.body, /expects a WebSocket upgrade/)
  })

  test('an http vhost proxy through nginx: the service sees https, the X-Forwarded-For chain and the edge client as X-Real-IP', { timeout: 20_000 }, async () => {
    // As if a CDN in front of nginx had forwarded a request from 203.0.113.9.
    const r = await viaNginx(nginxPort, caPem, '/hello?x=1', { host: 'app.test', 'x-forwarded-for': '203.0.113.9' })
    assert.equal(r.status, 200, r.body)
    const seen = JSON.parse(r.body) as { path: string; headers: Record<string, string> }
    assert.equal(seen.path, '/hello?x=1')
    assert.equal(seen.headers.host, 'app.test')
    // nginx appends its peer (us), wsfrps appends its peer (nginx); both are trusted loopback hops.
    assert.equal(seen.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1, 127.0.0.1')
    assert.equal(seen.headers['x-real-ip'], '203.0.113.9')
    // wsfrps itself speaks plain http here: "https" is nginx's X-Forwarded-Proto, kept because nginx is trusted.
    assert.equal(seen.headers['x-forwarded-proto'], 'https')
    assert.equal(seen.headers['x-forwarded-host'], 'app.test')
  })
})
