/**
 * HTTP virtual hosts end to end: wsfrps and wsfrpc as processes, a real Node HTTP service behind the
 * client, curl and Node's http client in front of the server's single port.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { once } from 'node:events'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startCli, type Proc } from '../src/process.js'

const exec = promisify(execFile)
const TOKEN = 'e2e-http-token'
const MiB = 1024 * 1024
const tmp = mkdtempSync(join(tmpdir(), 'wsfrp-http-'))
const procs: Proc[] = []

/** The local service: echoes method, Host, path and forwarded headers as JSON; counts upload bytes. */
async function startApp(): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((req, res) => {
    let bytes = 0
    req.on('data', (d: Buffer) => (bytes += d.length))
    req.on('end', () => {
      res.setHeader('content-type', 'application/json')
      res.end(
        JSON.stringify({
          method: req.method,
          host: req.headers.host,
          path: req.url,
          xff: req.headers['x-forwarded-for'] ?? null,
          xfh: req.headers['x-forwarded-host'] ?? null,
          bytes,
        }),
      )
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as import('node:net').AddressInfo).port }
}

describe('http vhosts through wsfrps + wsfrpc processes', { timeout: 180_000 }, () => {
  let app: { server: http.Server; port: number }
  let serverPort: number
  let server: Proc

  before(async () => {
    app = await startApp()
    const cfg = join(tmp, 'server.toml')
    writeFileSync(cfg, `bindAddr = "127.0.0.1"\nbindPort = 0\nsubDomainHost = "localhost"\nauth.token = "${TOKEN}"\n`)
    server = startCli('server', ['-c', cfg])
    procs.push(server)
    serverPort = Number((await server.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/))[1])
    const ccfg = join(tmp, 'client.toml')
    writeFileSync(
      ccfg,
      [
        `serverAddr = "127.0.0.1"`,
        `serverPort = ${serverPort}`,
        `auth.token = "${TOKEN}"`,
        '',
        '[[proxies]]',
        'name = "by-domain"',
        'type = "http"',
        `localPort = ${app.port}`,
        'customDomains = ["app.test"]',
        '',
        '[[proxies]]',
        'name = "by-subdomain"',
        'type = "http"',
        `localPort = ${app.port}`,
        'subdomain = "demo"',
        '',
        '[[proxies]]',
        'name = "dead"',
        'type = "http"',
        'localPort = 1',
        'customDomains = ["dead.test"]',
      ].join('\n') + '\n',
    )
    const client = startCli('client', ['-c', ccfg])
    procs.push(client)
    await client.waitForLine(/\[by-domain\] http proxy running/)
    await client.waitForLine(/\[by-subdomain\] http proxy running/)
    await client.waitForLine(/\[dead\] http proxy running/)
  })
  after(async () => {
    await Promise.all(procs.map((p) => p.stop()))
    app?.server.close()
    rmSync(tmp, { recursive: true, force: true })
  })

  test('curl with a Host header reaches the local service through the tunnel', { timeout: 20_000 }, async () => {
    const { stdout } = await exec('curl', ['-sS', '-H', 'Host: app.test', `http://127.0.0.1:${serverPort}/hello?x=1`])
    const body = JSON.parse(stdout) as Record<string, unknown>
    assert.equal(body.host, 'app.test')
    assert.equal(body.path, '/hello?x=1')
    assert.equal(body.xff, '127.0.0.1')
  })

  test('curl with a *.localhost name reaches the subdomain proxy', { timeout: 20_000 }, async () => {
    // curl resolves every *.localhost name to loopback by itself (RFC 6761), no /etc/hosts needed.
    const { stdout } = await exec('curl', ['-sS', `http://demo.localhost:${serverPort}/sub`])
    const body = JSON.parse(stdout) as Record<string, unknown>
    assert.equal(body.host, `demo.localhost:${serverPort}`)
    assert.equal(body.path, '/sub')
  })

  test('an unknown host gets 404 and a local service that is down gets 502, with stable error codes', { timeout: 20_000 }, async () => {
    const unknown = await exec('curl', ['-sS', '-o', '/dev/null', '-D', '-', '-H', 'Host: nobody.test', `http://127.0.0.1:${serverPort}/`])
    assert.match(unknown.stdout, /^HTTP\/1\.1 404/)
    assert.match(unknown.stdout, /x-wsfrp-error: no-route/i)
    const dead = await exec('curl', ['-sS', '-o', '/dev/null', '-D', '-', '-H', 'Host: dead.test', `http://127.0.0.1:${serverPort}/`])
    assert.match(dead.stdout, /^HTTP\/1\.1 502/)
    assert.match(dead.stdout, /x-wsfrp-error: upstream-refused/i)
  })

  test('the landing page and /healthz still answer on the same port', { timeout: 20_000 }, async () => {
    const { stdout } = await exec('curl', ['-sS', `http://127.0.0.1:${serverPort}/healthz`])
    assert.equal(stdout.trim(), 'ok')
  })

  test('a 1 GiB streamed upload arrives whole while the server stays small', { timeout: 150_000 }, async () => {
    const total = 1024 * MiB
    const chunk = Buffer.alloc(MiB, 0x61)
    const req = http.request({ host: '127.0.0.1', port: serverPort, method: 'POST', path: '/upload', headers: { host: 'app.test' } })
    const answered = once(req, 'response') as Promise<[http.IncomingMessage]>
    for (let sent = 0; sent < total; sent += chunk.length) {
      if (!req.write(chunk)) await once(req, 'drain')
    }
    req.end()
    const [res] = await answered
    let text = ''
    for await (const d of res) text += String(d)
    assert.equal(res.statusCode, 200)
    assert.equal((JSON.parse(text) as { bytes: number }).bytes, total)
    // Peak resident memory of the server over the whole run: a fraction of what went through it.
    const peak = server.peakRssMiB()
    assert.ok(peak < 200, `wsfrps peak RSS ${peak.toFixed(0)} MiB for a 1 GiB upload`)
  })
})
