// The REST API (packages/server/src/api.ts) against a real server and real clients over ws + yamux.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type { ClientInfo, ProxyInfo, ServerInfo } from '../src/api.js'
import { allowPortsString, frpTime } from '../src/api.js'
import { TOKEN, connectClient, echoServer, memoryLogger, proxyClosed, roundTrip, startServer } from './support/helpers.js'
import { getJson, request } from './dashboard-support.js'

function portOf(remoteAddr: string): number {
  const m = /^:(\d+)$/.exec(remoteAddr)
  assert.ok(m, `remote_addr ${remoteAddr}`)
  return Number(m[1])
}

test('the API shows a logged-in client and its tcp proxy, and neither after logout', { timeout: 15_000 }, async () => {
  const echo = await echoServer()
  const { server, port } = await startServer({ allowPorts: [{ start: 1024, end: 65535 }], subDomainHost: 'tunnel.test' }, memoryLogger())
  try {
    const loggedIn = once(server, 'login')
    const c = await connectClient(`ws://127.0.0.1:${port}/~!frp`, [{ name: 'echo', type: 'tcp', fields: { remote_port: 0 } }], {
      targetPort: echo.port,
      extra: { user: 'alice', platform: { os: 'linux', arch: 'arm64', hostname: 'pi-4' } },
    })
    await loggedIn
    const st = await c.status('echo')
    assert.equal(st.status, 'running', st.detail)
    const remotePort = portOf(st.detail)

    const info = await getJson<ServerInfo>(port, '/_wsfrp/api/serverinfo')
    assert.equal(info.bindPort, port, 'the real port, not the configured 0')
    assert.equal(info.vhostHTTPPort, port)
    assert.equal(info.subdomainHost, 'tunnel.test')
    assert.equal(info.maxPoolCount, 5)
    assert.equal(info.allowPortsStr, '1024-65535')
    assert.equal(info.clientCounts, 1)
    assert.equal(info.proxyTypeCount.tcp, 1)
    assert.equal(info.curConns, 0)
    assert.equal(info.totalTrafficIn, 0)
    assert.equal(info.totalTrafficOut, 0)
    assert.equal(info.loginFailures, 0)
    assert.equal(info.transports, 1)
    assert.ok(info.yamuxStreams >= 1, 'at least the control stream is open')
    assert.match(info.version, /^\d+\.\d+\.\d+/)

    const clients = await getJson<ClientInfo[]>(port, '/_wsfrp/api/clients')
    assert.equal(clients.length, 1)
    const cl = clients[0]!
    assert.equal(cl.runID, c.runId)
    assert.equal(cl.user, 'alice')
    assert.equal(cl.hostname, 'pi-4')
    assert.equal(cl.os, 'linux')
    assert.equal(cl.arch, 'arm64')
    assert.equal(cl.clientIP, '127.0.0.1')
    assert.match(cl.remoteAddress, /^127\.0\.0\.1:\d+$/)
    assert.equal(cl.online, true)
    assert.ok(Math.abs(cl.lastConnectedAt - Date.now() / 1000) < 60, 'unix seconds, about now')
    assert.ok(cl.streams >= 1)
    // frp prefixes the proxy name with the user on the wire.
    assert.deepEqual(cl.proxies, ['alice.echo'])

    const list = await getJson<{ proxies: ProxyInfo[] }>(port, '/_wsfrp/api/proxy/tcp')
    assert.equal(list.proxies.length, 1)
    const p = list.proxies[0]!
    assert.equal(p.name, 'alice.echo')
    assert.equal(p.type, 'tcp')
    assert.equal(p.status, 'online')
    assert.equal(p.user, 'alice')
    assert.equal(p.runID, c.runId)
    assert.equal(p.remoteAddr, `:${remotePort}`)
    assert.deepEqual(p.conf, { name: 'alice.echo', type: 'tcp', transport: { useEncryption: false, useCompression: false }, remotePort: 0 })
    assert.equal(p.curConns, 0)
    assert.match(p.lastStartTime, /^\d\d-\d\d \d\d:\d\d:\d\d$/)
    assert.equal(p.lastCloseTime, '')

    assert.deepEqual(await getJson(port, '/_wsfrp/api/proxy/tcp/alice.echo'), p)
    assert.deepEqual(await getJson(port, '/_wsfrp/api/proxy/http'), { proxies: [] })

    // Bytes through the proxy show up in the totals and today's traffic.
    assert.equal((await roundTrip(remotePort, 'x'.repeat(1000))).length, 1000)
    const traffic = await getJson<{ name: string; trafficIn: number[]; trafficOut: number[] }>(port, '/_wsfrp/api/traffic/alice.echo')
    assert.deepEqual(traffic, { name: 'alice.echo', trafficIn: [1000, 0, 0, 0, 0, 0, 0], trafficOut: [1000, 0, 0, 0, 0, 0, 0] })

    const closed = proxyClosed(server, 'alice.echo')
    const loggedOut = once(server, 'logout')
    c.client.close()
    await Promise.all([closed, loggedOut])

    assert.deepEqual(await getJson(port, '/_wsfrp/api/clients'), [])
    assert.deepEqual(await getJson(port, '/_wsfrp/api/proxy/tcp'), { proxies: [] })
    assert.equal((await request(port, '/_wsfrp/api/proxy/tcp/alice.echo')).status, 404)
    const after = await getJson<ServerInfo>(port, '/_wsfrp/api/serverinfo')
    assert.equal(after.clientCounts, 0)
    assert.equal(after.proxyTypeCount.tcp, 0)
    assert.equal(after.totalTrafficIn, 1000, 'server totals outlive the proxy')
    // The per-day history is kept for the name (frps keeps 7 days).
    assert.deepEqual((await getJson<{ trafficIn: number[] }>(port, '/_wsfrp/api/traffic/alice.echo')).trafficIn, [1000, 0, 0, 0, 0, 0, 0])
  } finally {
    await server.close()
    await echo.close()
  }
})

test('unknown API paths and names answer 404 JSON; other methods 405', { timeout: 10_000 }, async () => {
  const { server, port } = await startServer({}, memoryLogger())
  try {
    for (const path of ['/_wsfrp/api/nope', '/_wsfrp/api/proxy/tcp/missing', '/_wsfrp/api/traffic/missing', '/_wsfrp/api/proxy/tcp/a/b', '/_wsfrp/api/serverinfo/x', '/_wsfrp/api', '/_wsfrp/api/']) {
      const r = await request(port, path)
      assert.equal(r.status, 404, path)
      assert.match(String(r.headers['content-type']), /^application\/json/, path)
      assert.deepEqual(JSON.parse(r.body), { error: 'not found' }, path)
    }
    const post = await request(port, '/_wsfrp/api/serverinfo', { method: 'POST' })
    assert.equal(post.status, 405)
    assert.equal(post.headers.allow, 'GET, HEAD')
    const bad = await request(port, '/_wsfrp/api/traffic/%E0%A4%A')
    assert.equal(bad.status, 400)
    const head = await request(port, '/_wsfrp/api/serverinfo', { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.equal(head.body, '')
    // Query strings are ignored; a trailing slash is accepted.
    assert.equal((await getJson<ServerInfo>(port, '/_wsfrp/api/serverinfo/?x=1')).clientCounts, 0)
  } finally {
    await server.close()
  }
})

test('no secret reaches any answer: token, dashboard password, login metas, proxy keys', { timeout: 15_000 }, async () => {
  const echo = await echoServer()
  const password = 'dash-pw-3a9f1c'
  const { server, port } = await startServer({ webServer: { user: 'admin', password } }, memoryLogger())
  const auth = { Authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` }
  const secrets = [TOKEN, password, 'META-SECRET-1', 'META-SECRET-2', 'SK-SECRET', 'HTTP-PWD-SECRET', 'GROUP-KEY-SECRET', 'HEADER-SECRET', 'ANNOTATION-SECRET']
  try {
    const c = await connectClient(
      `ws://127.0.0.1:${port}/~!frp`,
      [
        {
          name: 'leaky',
          type: 'tcp',
          fields: {
            remote_port: 0,
            metas: { token: 'META-SECRET-2' },
            annotations: { note: 'ANNOTATION-SECRET' },
            sk: 'SK-SECRET',
            http_user: 'u',
            http_pwd: 'HTTP-PWD-SECRET',
            group: 'g',
            group_key: 'GROUP-KEY-SECRET',
            headers: { Authorization: 'HEADER-SECRET' },
          },
        },
      ],
      { targetPort: echo.port, extra: { metas: { token: 'META-SECRET-1' } } },
    )
    const st = await c.status('leaky')
    assert.equal(st.status, 'running', st.detail)
    await roundTrip(portOf(st.detail), 'hello')
    const paths = [
      '/_wsfrp/',
      '/_wsfrp/app.js',
      '/_wsfrp/metrics',
      '/_wsfrp/api/serverinfo',
      '/_wsfrp/api/clients',
      '/_wsfrp/api/proxy/tcp',
      '/_wsfrp/api/proxy/tcp/leaky',
      '/_wsfrp/api/traffic/leaky',
      '/',
    ]
    let seen = ''
    for (const path of paths) {
      const r = await request(port, path, { headers: auth })
      assert.equal(r.status, 200, `${path}: ${r.body}`)
      seen += `${path}\n${JSON.stringify(r.headers)}\n${r.body}\n`
    }
    // The group name is published (frps does), its key is not.
    assert.ok(seen.includes('"loadBalancer":{"group":"g"}'), 'the proxy conf is in the answers')
    for (const s of secrets) assert.ok(!seen.includes(s), `${s} leaked`)
    c.client.close()
  } finally {
    await server.close()
    await echo.close()
  }
})

test('frpTime and allowPortsString format like frps', { timeout: 5_000 }, () => {
  assert.equal(frpTime(0), '')
  assert.equal(frpTime(new Date(2024, 0, 2, 15, 4, 5).getTime()), '01-02 15:04:05')
  assert.equal(allowPortsString([]), '')
  assert.equal(allowPortsString([{ start: 2000, end: 3000 }, { start: 3001, end: 3001 }]), '2000-3000,3001')
})
