/**
 * Per-user tokens ([[auth.users]]) and the server's [limits]: in-process server, real sockets on
 * 127.0.0.1, the core client role as the client.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as net from 'node:net'
import { once } from 'node:events'
import * as http from 'node:http'
import { TOKEN_MISMATCH, TOO_MANY_FAILED_LOGINS, isWsfrpError, type ClientProxy } from '@wsfrp/core'
import { tenantOf, visibleTo, type ServerConfigInput } from '@wsfrp/server'
import { TOKEN, connectClient, echoServer, memoryLogger, startServer } from './support/helpers.js'

const USERS: ServerConfigInput['auth'] = {
  token: TOKEN,
  users: [
    { name: 'alice', token: 'alice-token' },
    { name: 'bob', token: 'bob-token', maxProxies: 2, maxConnections: 2 },
    // What the browser demo uses: http only, one subdomain, no custom domains.
    { name: 'demo', token: 'demo-token', allowTypes: ['http'], subdomains: ['demo'] },
    { name: 'ops', token: 'ops-token', allowPorts: [{ start: 41000, end: 41009 }], domains: ['*.ops.test', 'exact.test'] },
  ],
}

const tcp = (name: string, remote_port = 0): ClientProxy => ({ name, type: 'tcp', fields: { remote_port } })
const web = (name: string, fields: ClientProxy['fields']): ClientProxy => ({ name, type: 'http', fields })

/** Connects one socket, sends a byte and resolves once it is echoed (a held, working connection). */
async function heldEcho(port: number): Promise<net.Socket> {
  const s = net.connect({ host: '127.0.0.1', port })
  s.on('error', () => {})
  await once(s, 'connect')
  s.write('x')
  const [d] = (await once(s, 'data')) as [Buffer]
  assert.equal(d.toString(), 'x')
  return s
}

/** Resolves true when the socket is closed by the other side before any byte comes back. */
async function closedWithoutEcho(port: number): Promise<boolean> {
  const s = net.connect({ host: '127.0.0.1', port })
  s.on('error', () => {})
  let got = 0
  s.on('data', (d: Buffer) => (got += d.length))
  await once(s, 'connect')
  s.write('y')
  await once(s, 'close')
  return got === 0
}

const portOf = (remote: string): number => Number(remote.slice(remote.lastIndexOf(':') + 1))

test('a login matches the shared token (full rights) or one user\'s token (that user)', { timeout: 15_000 }, async () => {
  const { server, url } = await startServer({ auth: USERS }, memoryLogger())
  try {
    const admin = await connectClient(url, [])
    const alice = await connectClient(url, [], { token: 'alice-token' })
    // frp's `user` field names the user: then only that user's token is tried.
    const named = await connectClient(url, [], { token: 'bob-token', extra: { user: 'bob' } })
    await assert.rejects(connectClient(url, [], { token: 'alice-token', extra: { user: 'bob' } }), (e: unknown) => isWsfrpError(e, 'ERR_AUTH') && (e as Error).message === TOKEN_MISMATCH)
    // A `user` that names nobody: every user's token is tried.
    const free = await connectClient(url, [], { token: 'ops-token', extra: { user: 'someone' } })
    assert.equal(server.tenants.authenticate('alice', 'alice-token'), true)
    assert.equal(server.tenants.authenticate('alice', 'bob-token'), false)
    assert.equal(server.tenants.authenticate('nobody', ''), false)
    const tenants = new Map([...server.role.controls.values()].map((c) => [c.runId, tenantOf(c)]))
    assert.equal(tenants.get(admin.runId), undefined)
    assert.equal(tenants.get(alice.runId), 'alice')
    assert.equal(tenants.get(named.runId), 'bob')
    assert.equal(tenants.get(free.runId), 'ops')
    for (const c of [admin, alice, named, free]) c.client.close()
  } finally {
    await server.close()
  }
})

test('with users and an empty auth.token, the empty token does not log in', { timeout: 10_000 }, async () => {
  const { server, url } = await startServer({ auth: { token: '', users: [{ name: 'alice', token: 'alice-token' }] } }, memoryLogger())
  try {
    await assert.rejects(connectClient(url, [], { token: '' }), (e: unknown) => isWsfrpError(e, 'ERR_AUTH'))
    const alice = await connectClient(url, [], { token: 'alice-token' })
    alice.client.close()
  } finally {
    await server.close()
  }
})

test('a user\'s restrictions are enforced at NewProxy with clear errors', { timeout: 15_000 }, async () => {
  const { server, url } = await startServer({ auth: USERS, subDomainHost: 'tunnel.test', allowPorts: [{ start: 41000, end: 41100 }] }, memoryLogger())
  try {
    const demo = await connectClient(
      url,
      [tcp('d-tcp'), web('d-other', { subdomain: 'other' }), web('d-custom', { custom_domains: ['demo.evil.test'] }), web('d-ok', { subdomain: 'demo' })],
      { token: 'demo-token' },
    )
    assert.deepEqual(await demo.status('d-tcp'), { status: 'error', detail: 'proxy type [tcp] is not allowed for user [demo] (allowed: http)' })
    assert.deepEqual(await demo.status('d-other'), { status: 'error', detail: 'subdomain [other] (other.tunnel.test) is not allowed for user [demo]' })
    assert.deepEqual(await demo.status('d-custom'), { status: 'error', detail: 'custom domain [demo.evil.test] is not allowed for user [demo]' })
    assert.equal((await demo.status('d-ok')).status, 'running')

    const ops = await connectClient(
      url,
      [tcp('o-out', 41050), tcp('o-in', 41003), tcp('o-any'), web('o-dom', { custom_domains: ['a.b.ops.test', 'exact.test'] }), web('o-bad', { custom_domains: ['ops.test'] })],
      { token: 'ops-token' },
    )
    assert.deepEqual(await ops.status('o-out'), { status: 'error', detail: 'port 41050 is not allowed for user [ops]' })
    assert.equal(portOf((await ops.status('o-in')).detail), 41003)
    const any = await ops.status('o-any')
    assert.equal(any.status, 'running')
    const p = portOf(any.detail)
    assert.ok(p >= 41000 && p <= 41009, `remote_port 0 picks inside the user's ports, got ${p}`)
    assert.equal((await ops.status('o-dom')).status, 'running')
    assert.deepEqual(await ops.status('o-bad'), { status: 'error', detail: 'custom domain [ops.test] is not allowed for user [ops]' })
    demo.client.close()
    ops.client.close()
  } finally {
    await server.close()
  }
})

test('maxProxies counts a user\'s proxies over all its clients; a closed proxy frees its slot', { timeout: 15_000 }, async () => {
  const { server, url } = await startServer({ auth: USERS }, memoryLogger())
  try {
    const one = await connectClient(url, [tcp('b1'), tcp('b2')], { token: 'bob-token' })
    assert.equal((await one.status('b1')).status, 'running')
    assert.equal((await one.status('b2')).status, 'running')
    const two = await connectClient(url, [tcp('b3')], { token: 'bob-token' })
    assert.deepEqual(await two.status('b3'), { status: 'error', detail: 'exceed the max proxies of user [bob]: 2 already registered (maxProxies = 2)' })
    assert.deepEqual(server.tenants.usage('bob'), { proxies: 2, connections: 0 })
    const closed = once(server, 'proxy-close')
    one.client.removeProxy('b1')
    await closed
    assert.deepEqual(server.tenants.usage('bob'), { proxies: 1, connections: 0 })
    const three = await connectClient(url, [tcp('b4')], { token: 'bob-token' })
    assert.equal((await three.status('b4')).status, 'running')
    for (const c of [one, two, three]) c.client.close()
  } finally {
    await server.close()
  }
})

test('maxConnections: a user\'s connections beyond the limit are closed; others keep working', { timeout: 15_000 }, async () => {
  const echo = await echoServer()
  const { server, url } = await startServer({ auth: USERS }, memoryLogger())
  try {
    const bob = await connectClient(url, [tcp('bob-echo')], { token: 'bob-token', targetPort: echo.port })
    const alice = await connectClient(url, [tcp('alice-echo')], { token: 'alice-token', targetPort: echo.port })
    const bobPort = portOf((await bob.status('bob-echo')).detail)
    const alicePort = portOf((await alice.status('alice-echo')).detail)
    const held = [await heldEcho(bobPort), await heldEcho(bobPort)]
    assert.equal(server.tenants.usage('bob')?.connections, 2)
    assert.equal(await closedWithoutEcho(bobPort), true, 'the third connection of bob is refused')
    // Another user is not affected, and the held ones still work.
    const a = await heldEcho(alicePort)
    held[0]!.write('z')
    assert.equal(((await once(held[0]!, 'data')) as [Buffer])[0].toString(), 'z')
    // Closing one frees a slot.
    const freed = new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (server.tenants.usage('bob')?.connections === 1) {
          clearInterval(check)
          resolve()
        }
      }, 10)
    })
    held[1]!.destroy()
    await freed
    const again = await heldEcho(bobPort)
    for (const s of [...held, a, again]) s.destroy()
    bob.client.close()
    alice.client.close()
  } finally {
    await server.close()
    await echo.close()
  }
})

test('visibleTo/tenantOf: each user sees only its own clients and proxies', { timeout: 15_000 }, async () => {
  const { server, url } = await startServer({ auth: USERS }, memoryLogger())
  try {
    const alice = await connectClient(url, [tcp('alice-1'), tcp('alice-2')], { token: 'alice-token' })
    const bob = await connectClient(url, [tcp('bob-1')], { token: 'bob-token' })
    const admin = await connectClient(url, [tcp('admin-1')])
    for (const [c, n] of [[alice, 'alice-2'], [bob, 'bob-1'], [admin, 'admin-1']] as const) assert.equal((await c.status(n)).status, 'running')
    const controls = [...server.role.controls.values()]
    const proxiesOf = (viewer: string | undefined): string[] =>
      controls
        .filter((c) => visibleTo(viewer, c))
        .flatMap((c) => [...c.proxyNames])
        .sort()
    assert.deepEqual(proxiesOf('alice'), ['alice-1', 'alice-2'])
    assert.deepEqual(proxiesOf('bob'), ['bob-1'])
    assert.deepEqual(proxiesOf('ops'), [])
    assert.deepEqual(proxiesOf(undefined), ['admin-1', 'alice-1', 'alice-2', 'bob-1'])
    for (const c of [alice, bob, admin]) c.client.close()
  } finally {
    await server.close()
  }
})

test('limits.maxClients refuses logins beyond it; a reconnect with its run id is not counted twice', { timeout: 15_000 }, async () => {
  const { server, url } = await startServer({ limits: { maxClients: 2 } }, memoryLogger())
  try {
    const a = await connectClient(url, [])
    const b = await connectClient(url, [])
    await assert.rejects(connectClient(url, []), (e: unknown) => isWsfrpError(e, 'ERR_LOGIN_FAILED') && /too many clients: this server allows 2 at once/.test((e as Error).message))
    const again = await connectClient(url, [], { runId: a.runId })
    assert.equal(again.runId, a.runId)
    again.client.close()
    b.client.close()
  } finally {
    await server.close()
  }
})

test('limits.maxProxiesPerClient refuses the proxy beyond it', { timeout: 10_000 }, async () => {
  const { server, url } = await startServer({ limits: { maxProxiesPerClient: 2 } }, memoryLogger())
  try {
    const c = await connectClient(url, [tcp('p1'), tcp('p2'), tcp('p3')])
    assert.equal((await c.status('p1')).status, 'running')
    assert.equal((await c.status('p2')).status, 'running')
    assert.deepEqual(await c.status('p3'), { status: 'error', detail: 'exceed the max proxies per client: this client already holds 2 (limits.maxProxiesPerClient = 2)' })
    c.client.close()
  } finally {
    await server.close()
  }
})

test('repeated failed logins from one address are refused unchecked, even with the right token', { timeout: 15_000 }, async () => {
  const lines: string[] = []
  const { server, url } = await startServer({ limits: { loginFailures: 3, loginFailureWindow: 3600 } }, memoryLogger(lines))
  try {
    for (let i = 0; i < 3; i++) await assert.rejects(connectClient(url, [], { token: 'guess' }), (e: unknown) => isWsfrpError(e, 'ERR_AUTH'))
    await assert.rejects(connectClient(url, [], { token: TOKEN }), (e: unknown) => isWsfrpError(e, 'ERR_LOGIN_FAILED') && (e as Error).message === TOO_MANY_FAILED_LOGINS)
    assert.equal(server.role.controls.size, 0)
    assert.equal(server.metrics.totals().loginFailures, 4, 'throttled logins are refused logins too')
    assert.ok(lines.some((l) => l.includes(TOO_MANY_FAILED_LOGINS)))
  } finally {
    await server.close()
  }
})

test('limits.maxStreamsPerSession: a user connection beyond the session\'s streams is closed, the session goes on', { timeout: 15_000 }, async () => {
  const echo = await echoServer()
  // 4 streams: the control stream and three work streams.
  const { server, url } = await startServer({ userConnTimeout: 1, transport: { maxPoolCount: 1 }, limits: { maxStreamsPerSession: 4 } }, memoryLogger())
  try {
    const c = await connectClient(url, [tcp('s')], { targetPort: echo.port, extra: { poolCount: 0 } })
    const port = portOf((await c.status('s')).detail)
    const held = [await heldEcho(port), await heldEcho(port), await heldEcho(port)]
    assert.equal(await closedWithoutEcho(port), true, 'a fourth work stream is refused (RST), its user connection times out')
    held[2]!.write('still')
    assert.equal(((await once(held[2]!, 'data')) as [Buffer])[0].toString(), 'still')
    for (const s of held) s.destroy()
    c.client.close()
  } finally {
    await server.close()
    await echo.close()
  }
})

test('limits.maxHTTPHeaderSize answers 431; limits.httpKeepAliveTimeout closes an idle keep-alive connection', { timeout: 10_000 }, async () => {
  const { server, port } = await startServer({ limits: { maxHTTPHeaderSize: 2048, httpKeepAliveTimeout: 1 } }, memoryLogger())
  try {
    const big = await new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/healthz', headers: { 'x-pad': 'a'.repeat(3000) } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      }).on('error', reject)
    })
    assert.equal(big, 431)
    // A raw socket: Node's own agent drops sockets 1 s before the server's Keep-Alive hint.
    const sock = net.connect({ host: '127.0.0.1', port })
    await once(sock, 'connect')
    let text = ''
    let answeredAt = 0
    sock.setEncoding('utf8')
    sock.on('data', (d: string) => {
      text += d
      if (answeredAt === 0 && text.includes('ok\n')) answeredAt = Date.now()
    })
    sock.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    await once(sock, 'close')
    const idleMs = Date.now() - answeredAt
    assert.match(text, /^HTTP\/1\.1 200 /)
    assert.ok(answeredAt > 0 && idleMs >= 800 && idleMs < 4000, `closed after ${idleMs} ms of idleness (limit 1 s)`)
  } finally {
    await server.close()
  }
})

test('limits.maxPendingTransports: upgrades beyond it get 503 until one of them logs in or goes', { timeout: 15_000 }, async () => {
  const { server, url, port } = await startServer({ limits: { maxPendingTransports: 2 } }, memoryLogger())
  const upgrade = (): Promise<{ status: number; socket: net.Socket }> =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/~!frp', headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' } })
      req.on('upgrade', (res, socket) => resolve({ status: res.statusCode ?? 0, socket }))
      req.on('response', (res) => {
        res.resume()
        resolve({ status: res.statusCode ?? 0, socket: res.socket })
      })
      req.on('error', reject)
      req.end()
    })
  try {
    const a = await upgrade()
    const b = await upgrade()
    assert.deepEqual([a.status, b.status], [101, 101])
    const refused = await upgrade()
    assert.equal(refused.status, 503, 'a third WebSocket without a login is refused')
    refused.socket.destroy()
    // A client that logs in frees its slot (its WebSocket is no longer pending).
    a.socket.destroy()
    await once(server, 'transport-close')
    const c = await connectClient(url, [])
    const d = await upgrade()
    assert.equal(d.status, 101)
    const e = await upgrade()
    assert.equal(e.status, 503, 'b and d are pending; the logged-in client is not counted')
    for (const x of [b, d, e]) x.socket.destroy()
    c.client.close()
  } finally {
    await server.close()
  }
})
