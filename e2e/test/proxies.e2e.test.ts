/**
 * wsfrpc behind a corporate forward proxy: a real squid with Basic auth (basic_ncsa_auth and an
 * htpasswd file) between the client process and wsfrps, for ws:// (transport.proxyURL) and wss://
 * (HTTPS_PROXY, wsfrps terminating TLS with a test CA made by openssl now); a wrong proxy password;
 * NO_PROXY sending the client around a dead proxy.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, missingTools } from '../src/nginx.js'
import { startEchoServer, type Service } from '../src/services.js'
import { startSquid, type Squid } from '../src/squid.js'
import { createTestCa, type TestCa } from '../src/tls.js'
import { MiB, Procs, echoTransfer, proxyPort, roundTrip, startClient, startServer } from '../src/tunnel.js'

const skip = missingTools('squid proxy', [
  { bin: 'squid', pkg: 'squid' },
  { bin: 'htpasswd', args: ['-h'], pkg: 'apache2-utils' },
  { bin: 'openssl', args: ['version'], pkg: 'openssl' },
])

/** URL-hostile characters on purpose: the client must percent-decode them before Basic auth. */
const USER = 'alice'
const PASSWORD = 'p@ss:w0rd/%'

describe('wsfrpc through squid (HTTP CONNECT, Basic auth)', { timeout: 300_000, skip }, () => {
  const procs = new Procs()
  let tmp: string
  let ca: TestCa
  let squid: Squid
  let echo: Service
  let ws: { port: number }
  let wss: { port: number }

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'wsfrp-proxies-'))
    ca = createTestCa(tmp)
    const cert = ca.issue('server', ['DNS:localhost', 'IP:127.0.0.1'])
    echo = await startEchoServer()
    squid = await startSquid({ tmp, users: [{ user: USER, password: PASSWORD }] })
    ws = await startServer(procs, tmp)
    wss = await startServer(procs, tmp, `transport.tls.certFile = "${cert.certFile}"\ntransport.tls.keyFile = "${cert.keyFile}"`)
  })

  after(async () => {
    await procs.stopAll()
    await squid?.stop()
    await echo?.close()
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true })
  })

  test('ws:// with transport.proxyURL: 64 MiB echoed through squid, equal by sha256; squid logged the tunnel for alice', { timeout: 180_000 }, async () => {
    const since = squid.accessLog.length
    const client = startClient(procs, tmp, {
      settings: ['serverAddr = "127.0.0.1"', `serverPort = ${ws.port}`, `transport.proxyURL = "${squid.url}"`],
      proxies: [{ name: 'echo', localPort: echo.port }],
    })
    const port = await proxyPort(client, 'echo')
    assert.equal((await roundTrip(port, Buffer.from('hello via squid\n'))).toString(), 'hello via squid\n')
    const r = await echoTransfer(port, 64)
    assert.equal(r.bytes, 64 * MiB)
    assert.equal(r.got, r.sent)
    // squid logs a CONNECT when the tunnel ends: stop the client, then read the record.
    await client.stop()
    const line = await squid.waitForAccess(new RegExp(`TCP_TUNNEL/200 (\\d+) CONNECT 127\\.0\\.0\\.1:${ws.port} ${USER} `), { since })
    const tunnelled = Number(/TCP_TUNNEL\/200 (\d+) /.exec(line)?.[1])
    assert.ok(tunnelled > 64 * MiB, `squid carried ${tunnelled} bytes to the client, expected more than 64 MiB`)
    assert.ok(!client.lines.some((l) => l.includes('p@ss') || l.includes('p%40ss')), 'the proxy password is never printed')
  })

  test('wss:// with HTTPS_PROXY: TLS to wsfrps inside the tunnel, verified with trustedCaFile; 64 MiB equal by sha256', { timeout: 180_000 }, async () => {
    const since = squid.accessLog.length
    const client = startClient(procs, tmp, {
      settings: [`serverURL = "wss://localhost:${wss.port}/~!frp"`, `transport.tls.trustedCaFile = "${ca.caFile}"`],
      proxies: [{ name: 'echo', localPort: echo.port }],
      env: { HTTPS_PROXY: squid.url },
    })
    const port = await proxyPort(client, 'echo')
    assert.ok(client.lines.some((l) => l.includes(`using proxy http://${USER}@127.0.0.1:${squid.port} (HTTPS_PROXY)`)), client.lines.join('\n'))
    const r = await echoTransfer(port, 64)
    assert.equal(r.bytes, 64 * MiB)
    assert.equal(r.got, r.sent)
    await client.stop()
    const line = await squid.waitForAccess(new RegExp(`TCP_TUNNEL/200 \\d+ CONNECT localhost:${wss.port} ${USER} `), { since })
    assert.ok(line.length > 0)
  })

  test('a wrong proxy password: the client exits with one line naming the proxy and the user, not the password', { timeout: 60_000 }, async () => {
    const since = squid.accessLog.length
    const client = startClient(procs, tmp, {
      settings: ['serverAddr = "127.0.0.1"', `serverPort = ${ws.port}`, `transport.proxyURL = "http://${USER}:not-the-password@127.0.0.1:${squid.port}"`],
      proxies: [{ name: 'echo', localPort: echo.port }],
    })
    assert.equal(await client.exited, 1)
    const errors = client.lines.filter((l) => l.startsWith('wsfrpc: '))
    assert.deepEqual(errors, [
      `wsfrpc: connect to ws://127.0.0.1:${ws.port}/~!frp failed: proxy http://${USER}@127.0.0.1:${squid.port} refused CONNECT 127.0.0.1:${ws.port}: 407 Proxy Authentication Required (the proxy refused the credentials of user "${USER}")`,
    ])
    assert.ok(!client.lines.some((l) => l.includes('not-the-password')), client.lines.join('\n'))
    await squid.waitForAccess(new RegExp(`TCP_DENIED/407 \\d+ CONNECT 127\\.0\\.0\\.1:${ws.port} ${USER} `), { since })
  })

  test('NO_PROXY: with HTTPS_PROXY on a dead port the client fails, with NO_PROXY=localhost it connects directly', { timeout: 60_000 }, async () => {
    const dead = await freePort()
    const settings = [`serverURL = "wss://localhost:${wss.port}/~!frp"`, `transport.tls.trustedCaFile = "${ca.caFile}"`]
    // Control: the variable is read, and loopback is not bypassed by itself.
    const direct = startClient(procs, tmp, { settings, proxies: [{ name: 'echo', localPort: echo.port }], env: { HTTPS_PROXY: `127.0.0.1:${dead}` } })
    assert.equal(await direct.exited, 1)
    assert.ok(
      direct.lines.includes(`wsfrpc: connect to wss://localhost:${wss.port}/~!frp failed: proxy http://127.0.0.1:${dead} is unreachable: connect ECONNREFUSED 127.0.0.1:${dead}`),
      direct.lines.join('\n'),
    )
    const client = startClient(procs, tmp, {
      settings,
      proxies: [{ name: 'echo', localPort: echo.port }],
      env: { HTTPS_PROXY: `http://127.0.0.1:${dead}`, NO_PROXY: 'internal.example, localhost' },
    })
    const port = await proxyPort(client, 'echo')
    assert.ok(client.lines.some((l) => l.includes('not using the proxy from HTTPS_PROXY: NO_PROXY matches localhost (localhost)')), client.lines.join('\n'))
    const data = Buffer.from('direct, around the proxy\n')
    assert.equal((await roundTrip(port, data)).toString(), data.toString())
    await client.stop()
  })
})
