/**
 * The REST API scoped per user ([[auth.users]]): two users signed in with their own name and token
 * (HTTP Basic), real clients logged in with those tokens, real traffic. Each user sees only its own
 * clients, proxies and traffic; the operator sees everything.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { ClientInfo, ProxyInfo, ServerInfo } from '../src/api.js'
import { TOKEN, connectClient, echoServer, memoryLogger, proxyClosed, roundTrip, startServer } from './support/helpers.js'
import { basic, getJson, request } from './dashboard-support.js'

const AUTH = {
  token: TOKEN,
  users: [
    { name: 'alice', token: 'alice-secret-token' },
    { name: 'bob', token: 'bob-secret-token' },
  ],
}
const OPS = basic('admin', 'admin-password')
const ALICE = basic('alice', 'alice-secret-token')
const BOB = basic('bob', 'bob-secret-token')

const portOf = (remoteAddr: string): number => Number(remoteAddr.slice(remoteAddr.lastIndexOf(':') + 1))
const names = (list: { name: string }[]): string[] => list.map((p) => p.name).sort()

test('each user sees only its own clients, proxies and traffic; the operator sees all', { timeout: 20_000 }, async () => {
  const echo = await echoServer()
  const { server, port } = await startServer({ auth: AUTH, webServer: { user: 'admin', password: 'admin-password' } }, memoryLogger())
  const url = `ws://127.0.0.1:${port}/~!frp`
  try {
    const alice = await connectClient(url, [{ name: 'a-web', type: 'tcp', fields: {} }, { name: 'a-db', type: 'tcp', fields: {} }], { token: 'alice-secret-token', targetPort: echo.port })
    const bob = await connectClient(url, [{ name: 'b-ssh', type: 'tcp', fields: {} }], { token: 'bob-secret-token', targetPort: echo.port })
    const admin = await connectClient(url, [{ name: 'ops-1', type: 'tcp', fields: {} }], { targetPort: echo.port })
    const up = async (c: typeof alice, n: string): Promise<number> => {
      const st = await c.status(n)
      assert.equal(st.status, 'running', st.detail)
      return portOf(st.detail)
    }
    const aliceWeb = await up(alice, 'a-web')
    await up(alice, 'a-db')
    const bobSsh = await up(bob, 'b-ssh')
    await up(admin, 'ops-1')
    // Traffic on one proxy of each user, of different sizes, so that leaked totals would show.
    assert.equal((await roundTrip(aliceWeb, 'x'.repeat(100))).length, 100)
    assert.equal((await roundTrip(bobSsh, 'y'.repeat(7000))).length, 7000)

    // Lists: each user its own proxies and clients only.
    const aliceTcp = await getJson<{ proxies: ProxyInfo[] }>(port, '/_wsfrp/api/proxy/tcp', ALICE)
    assert.deepEqual(names(aliceTcp.proxies), ['a-db', 'a-web'])
    assert.ok(aliceTcp.proxies.every((p) => p.tenant === 'alice'))
    const bobTcp = await getJson<{ proxies: ProxyInfo[] }>(port, '/_wsfrp/api/proxy/tcp', BOB)
    assert.deepEqual(names(bobTcp.proxies), ['b-ssh'])
    const opsTcp = await getJson<{ proxies: ProxyInfo[] }>(port, '/_wsfrp/api/proxy/tcp', OPS)
    assert.deepEqual(names(opsTcp.proxies), ['a-db', 'a-web', 'b-ssh', 'ops-1'])
    assert.deepEqual((await getJson<ClientInfo[]>(port, '/_wsfrp/api/clients', ALICE)).map((c) => c.runID), [alice.runId])
    assert.deepEqual((await getJson<ClientInfo[]>(port, '/_wsfrp/api/clients', BOB)).map((c) => c.runID), [bob.runId])
    assert.equal((await getJson<ClientInfo[]>(port, '/_wsfrp/api/clients', OPS)).length, 3)

    // By name: its own is there; the other user's (and the operator's) answer like unknown names.
    assert.equal((await getJson<ProxyInfo>(port, '/_wsfrp/api/proxy/tcp/a-web', ALICE)).name, 'a-web')
    for (const [who, path] of [
      [ALICE, '/_wsfrp/api/proxy/tcp/b-ssh'],
      [ALICE, '/_wsfrp/api/traffic/b-ssh'],
      [ALICE, '/_wsfrp/api/proxy/tcp/ops-1'],
      [BOB, '/_wsfrp/api/proxy/tcp/a-web'],
      [BOB, '/_wsfrp/api/traffic/a-web'],
    ] as const) {
      const r = await request(port, path, { headers: who })
      assert.equal(r.status, 404, `${path} for ${who.Authorization}: ${r.body}`)
      assert.deepEqual(JSON.parse(r.body), { error: 'not found' })
    }
    const bobTraffic = await getJson<{ trafficIn: number[] }>(port, '/_wsfrp/api/traffic/b-ssh', BOB)
    assert.equal(bobTraffic.trafficIn[0], 7000)

    // Totals: a user's are summed over its own proxies and clients; nothing of the other leaks.
    const ai = await getJson<ServerInfo>(port, '/_wsfrp/api/serverinfo', ALICE)
    assert.equal(ai.tenant, 'alice')
    assert.equal(ai.clientCounts, 1)
    assert.equal(ai.transports, 1)
    assert.equal(ai.proxyTypeCount.tcp, 2)
    assert.equal(ai.totalTrafficIn, 100)
    assert.equal(ai.totalTrafficOut, 100)
    assert.equal(ai.loginFailures, 0)
    const bi = await getJson<ServerInfo>(port, '/_wsfrp/api/serverinfo', BOB)
    assert.equal(bi.clientCounts, 1)
    assert.equal(bi.proxyTypeCount.tcp, 1)
    assert.equal(bi.totalTrafficIn, 7000)
    const oi = await getJson<ServerInfo>(port, '/_wsfrp/api/serverinfo', OPS)
    assert.equal(oi.tenant, undefined)
    assert.equal(oi.clientCounts, 3)
    assert.equal(oi.proxyTypeCount.tcp, 4)
    assert.equal(oi.totalTrafficIn, 7100)

    // A wrong token, a user's token under another name, and no credentials: 401. /metrics is the operator's.
    for (const h of [basic('alice', 'bob-secret-token'), basic('bob', 'alice-secret-token'), basic('nobody', 'alice-secret-token'), {}]) {
      assert.equal((await request(port, '/_wsfrp/api/serverinfo', { headers: h })).status, 401)
    }
    assert.equal((await request(port, '/_wsfrp/metrics', { headers: ALICE })).status, 403)
    assert.equal((await request(port, '/_wsfrp/metrics', { headers: OPS })).status, 200)
    // The page itself loads for a user (it reads the same, scoped, API).
    assert.equal((await request(port, '/_wsfrp/', { headers: BOB })).status, 200)
    for (const c of [alice, bob, admin]) c.client.close()
  } finally {
    await server.close()
    await echo.close()
  }
})

test('a proxy name taken over by another user starts a new traffic history', { timeout: 20_000 }, async () => {
  const echo = await echoServer()
  // No webServer credentials: local requests are the operator, users still sign in with Basic.
  const { server, port } = await startServer({ bindAddr: '127.0.0.1', auth: AUTH }, memoryLogger())
  const url = `ws://127.0.0.1:${port}/~!frp`
  try {
    const alice = await connectClient(url, [{ name: 'shared-name', type: 'tcp', fields: {} }], { token: 'alice-secret-token', targetPort: echo.port })
    const st = await alice.status('shared-name')
    assert.equal((await roundTrip(portOf(st.detail), 'z'.repeat(500))).length, 500)
    const offline = proxyClosed(server, 'shared-name')
    alice.client.close()
    await offline
    // Alice still sees her (offline) proxy's history.
    assert.equal((await getJson<{ trafficIn: number[] }>(port, '/_wsfrp/api/traffic/shared-name', ALICE)).trafficIn[0], 500)
    const bob = await connectClient(url, [{ name: 'shared-name', type: 'tcp', fields: {} }], { token: 'bob-secret-token', targetPort: echo.port })
    assert.equal((await bob.status('shared-name')).status, 'running')
    assert.equal((await getJson<{ trafficIn: number[] }>(port, '/_wsfrp/api/traffic/shared-name', BOB)).trafficIn[0], 0)
    assert.equal((await request(port, '/_wsfrp/api/traffic/shared-name', { headers: ALICE })).status, 404)
    // The operator (a local request) sees everything without credentials.
    assert.equal((await getJson<{ proxies: ProxyInfo[] }>(port, '/_wsfrp/api/proxy/tcp')).proxies[0]?.tenant, 'bob')
    bob.client.close()
  } finally {
    await server.close()
    await echo.close()
  }
})
