/**
 * The slow suite (about 3 minutes): an idle tunnel behind nginx with nginx's DEFAULT
 * proxy_read_timeout (60 s) stays up, because yamux keep-alive pings flow every 30 s.
 *
 * The idle time is measured by events, not by a sleep: a control client with keep-alive stretched
 * to an hour (and its own server, which does not ping either) sits behind the same nginx, and nginx
 * cuts it at each 60 s of silence ("upstream timed out … while proxying upgraded connection"). The
 * control's third cut means the main tunnel has been idle for at least 3 minutes, and proves that
 * nginx's timeout was live all along.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CONNECTION_UPGRADE_MAP, missingTools, proxyLocation, startNginx, type Nginx } from '../../src/nginx.js'
import type { Proc } from '../../src/process.js'
import { startEchoServer, type Service } from '../../src/services.js'
import { Procs, proxyPort, roundTrip, startClient, startServer } from '../../src/tunnel.js'

const skip = missingTools('nginx idle', [{ bin: 'nginx', pkg: 'nginx' }])
const CUTS = 3
const timedOut = (path: string): RegExp => new RegExp(`upstream timed out .* while proxying upgraded connection.*request: "GET ${path} `)

describe('idle tunnel behind nginx with the default proxy_read_timeout', { timeout: 330_000, skip }, () => {
  const procs = new Procs()
  let tmp: string
  let nginx: Nginx
  let echo: Service

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'wsfrp-idle-'))
    echo = await startEchoServer()
  })
  after(async () => {
    await procs.stopAll()
    await nginx?.stop()
    await echo?.close()
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true })
  })

  test(`${CUTS} minutes idle: the tunnel with 30 s keep-alive survives, a tcp proxy still works; one without keep-alive is cut every 60 s`, { timeout: 320_000 }, async () => {
    const main = await startServer(procs, tmp, 'transport.wsPaths = ["/tunnel"]')
    const quiet = await startServer(procs, tmp, 'transport.wsPaths = ["/tunnel"]\ntransport.tcpMuxKeepaliveInterval = 3600')
    // No proxy_read_timeout/proxy_send_timeout: nginx's defaults (60 s) are what is tested.
    nginx = await startNginx({
      tmp,
      ports: 1,
      http: ([port]) => `  ${CONNECTION_UPGRADE_MAP}
  server {
    listen 127.0.0.1:${port};
${proxyLocation('/main/tunnel', `http://127.0.0.1:${main.port}/tunnel`)}
${proxyLocation('/control/tunnel', `http://127.0.0.1:${quiet.port}/tunnel`)}
  }`,
    })
    const nginxPort = nginx.ports[0]!
    const client = startClient(procs, tmp, {
      settings: [`serverURL = "ws://127.0.0.1:${nginxPort}/main/tunnel"`],
      proxies: [{ name: 'echo', localPort: echo.port }],
    })
    const port = await proxyPort(client, 'echo')
    assert.equal((await roundTrip(port, Buffer.from('before\n'))).toString(), 'before\n')
    const idleSince = Date.now()

    const control: Proc = startClient(procs, tmp, {
      settings: [`serverURL = "ws://127.0.0.1:${nginxPort}/control/tunnel"`, 'transport.tcpMuxKeepaliveInterval = 3600'],
      proxies: [{ name: 'quiet', localPort: echo.port }],
      loginFailExit: false,
    })
    await proxyPort(control, 'quiet')
    let since = 0
    for (let cut = 1; cut <= CUTS; cut++) {
      // nginx logs the cut at error level on its stderr; a cut comes 60 s after the control's login.
      await nginx.proc.waitForLine(timedOut('/control/tunnel'), { since, timeoutMs: 100_000 })
      since = nginx.proc.lines.findIndex((l, i) => i >= since && timedOut('/control/tunnel').test(l)) + 1
    }
    const idleMs = Date.now() - idleSince
    assert.ok(idleMs >= CUTS * 60_000, `idle for ${idleMs} ms`)
    assert.ok(control.lines.filter((l) => l.includes('disconnected from')).length >= CUTS - 1, control.lines.join('\n'))

    // The main tunnel: never cut, never logged in again, and its proxy (same port) still carries bytes.
    assert.deepEqual(nginx.proc.lines.filter((l) => timedOut('/main/tunnel').test(l)), [])
    assert.deepEqual(client.lines.filter((l) => l.includes('disconnected from')), [])
    assert.equal(client.lines.filter((l) => l.includes('logged in to')).length, 1, client.lines.join('\n'))
    assert.equal((await roundTrip(port, Buffer.from(`after ${Math.round(idleMs / 1000)} s idle\n`))).toString(), `after ${Math.round(idleMs / 1000)} s idle\n`)
  })
})
