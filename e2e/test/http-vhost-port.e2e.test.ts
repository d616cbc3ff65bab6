/**
 * A vhostHTTPPort of its own, end to end: wsfrps with `vhostHTTPPort` ≠ `bindPort`, wsfrpc in quick
 * mode (`wsfrpc http --sd demo`) dialling the bind port, curl on the vhost port.
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
import type { AddressInfo } from 'node:net'
import { freePort } from '../src/nginx.js'
import { startCli, type Proc } from '../src/process.js'

const exec = promisify(execFile)
const TOKEN = 'e2e-vhost-port-token'
const tmp = mkdtempSync(join(tmpdir(), 'wsfrp-vport-'))
const procs: Proc[] = []

describe('http vhosts on a vhostHTTPPort of their own (wsfrps + wsfrpc processes)', { timeout: 120_000 }, () => {
  let app: http.Server
  let appPort: number
  let bindPort: number
  let vhostPort: number
  let publicUrl: string

  before(async () => {
    app = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ host: req.headers.host, path: req.url }))
    })
    app.listen(0, '127.0.0.1')
    await once(app, 'listening')
    appPort = (app.address() as AddressInfo).port
    // A config file cannot ask for "any free port" for a second listener: take one the OS just
    // gave out, and start over should something else grab it before wsfrps binds it.
    for (let attempt = 0; ; attempt++) {
      const wanted = await freePort()
      const cfg = join(tmp, 'server.toml')
      writeFileSync(cfg, `bindAddr = "127.0.0.1"\nbindPort = 0\nvhostHTTPPort = ${wanted}\nsubDomainHost = "localhost"\nauth.token = "${TOKEN}"\n`)
      const server = startCli('server', ['-c', cfg])
      procs.push(server)
      try {
        bindPort = Number((await server.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/))[1])
        vhostPort = Number((await server.waitForLine(/http vhosts on http:\/\/127\.0\.0\.1:(\d+)/))[1])
        break
      } catch (err) {
        await server.stop()
        if (attempt >= 3 || !server.lines.some((l) => l.includes('already in use'))) throw err
      }
    }
    assert.notEqual(vhostPort, bindPort)
    const client = startCli('client', ['http', '-s', `ws://127.0.0.1:${bindPort}`, '-t', TOKEN, '--local-port', String(appPort), '--sd', 'demo'])
    procs.push(client)
    const m = await client.waitForLine(/http proxy running: .*⇐ (\S+)/)
    publicUrl = m[1]!
  })
  after(async () => {
    await Promise.all(procs.map((p) => p.stop()))
    app?.close()
    rmSync(tmp, { recursive: true, force: true })
  })

  test('wsfrpc prints the public URL with the vhost port', { timeout: 10_000 }, () => {
    assert.equal(publicUrl, `http://demo.localhost:${vhostPort}`)
  })

  test('curl on the vhost port reaches the local service through the tunnel', { timeout: 20_000 }, async () => {
    // curl resolves *.localhost to loopback by itself (RFC 6761).
    const { stdout } = await exec('curl', ['-sS', `${publicUrl}/through?x=1`])
    const body = JSON.parse(stdout) as { host: string; path: string }
    assert.equal(body.host, `demo.localhost:${vhostPort}`)
    assert.equal(body.path, '/through?x=1')
  })

  test('the bind port serves the WebSocket endpoint and its own pages, not the vhost', { timeout: 20_000 }, async () => {
    const ws = await exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${bindPort}/~!frp`])
    assert.equal(ws.stdout, '426') // the WebSocket path, asking for an upgrade
    const routed = await exec('curl', ['-sS', '-o', '/dev/null', '-D', '-', '-H', 'Host: demo.localhost', `http://127.0.0.1:${bindPort}/`])
    assert.match(routed.stdout, /^HTTP\/1\.1 404/)
    assert.match(routed.stdout, /x-wsfrp-error: no-route/i)
    const own = await exec('curl', ['-sS', '-o', '/dev/null', '-D', '-', `http://127.0.0.1:${vhostPort}/healthz`])
    assert.match(own.stdout, /^HTTP\/1\.1 404/)
  })

  test('CONNECT and an HTTP/2 prior-knowledge request get clean errors on the vhost port', { timeout: 20_000 }, async () => {
    const connect = await exec('curl', ['-sS', '-o', '/dev/null', '-D', '-', '-X', 'CONNECT', '--request-target', 'demo.localhost:80', `http://127.0.0.1:${vhostPort}/`])
    assert.match(connect.stdout, /^HTTP\/1\.1 405/)
    assert.match(connect.stdout, /x-wsfrp-error: method-not-allowed/i)
    // curl speaks HTTP/2 only if it was built with it; skip the h2c probe otherwise.
    const { stdout: features } = await exec('curl', ['-V'])
    if (!/\bHTTP2\b/.test(features)) return
    const h2 = await exec('curl', ['-sS', '--http2-prior-knowledge', '-o', '/dev/null', '-w', '%{http_code}', `${publicUrl}/`]).then(
      (r) => ({ ok: true, out: r.stdout }),
      (e: { stderr?: string }) => ({ ok: false, out: e.stderr ?? '' }),
    )
    // The 505 is HTTP/1.1 text an h2 client cannot read: curl fails; the connection is closed.
    assert.equal(h2.ok, false, h2.out)
  })
})
