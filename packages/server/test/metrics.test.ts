// Traffic counting (packages/server/src/metrics.ts) and the Prometheus exposition at /metrics.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { noopLogger, type Conn, type ControlHandle } from '@wsfrp/core'
import { memoryPair } from '@wsfrp/core/testing'
import { DailyCounter, HISTORY_DAYS, ServerMetrics, localDay, proxyConf } from '../src/metrics.js'
import { connSuite } from '../../core/test/support/conn-suite.js'
import { TOKEN, connectClient, echoServer, fakeControl, memoryLogger, roundTrip, startServer } from './support/helpers.js'
import { scrape } from './dashboard-support.js'

function portOf(remoteAddr: string): number {
  const m = /^:(\d+)$/.exec(remoteAddr)
  assert.ok(m, `remote_addr ${remoteAddr}`)
  return Number(m[1])
}

/** Resolves after `n` 'conn' events of `metrics` with `open === false` (user connections that ended). */
function connsClosed(metrics: ServerMetrics, n: number): Promise<void> {
  return new Promise((resolve) => {
    let left = n
    const on = (e: { open: boolean }): void => {
      if (e.open || --left > 0) return
      metrics.off('conn', on)
      resolve()
    }
    metrics.on('conn', on)
  })
}

test('traffic counters grow by exactly the bytes sent through a tcp proxy, both ways', { timeout: 20_000 }, async () => {
  const echo = await echoServer()
  const { server, port, url } = await startServer({}, memoryLogger())
  try {
    const c = await connectClient(url, [{ name: 'echo', type: 'tcp', fields: { remote_port: 0, use_encryption: true } }], { targetPort: echo.port })
    const remote = portOf((await c.status('echo')).detail)
    const sizes = [1, 70_000, 300_001]
    const ended = connsClosed(server.metrics, sizes.length)
    const backs = await Promise.all(sizes.map((n) => roundTrip(remote, Buffer.alloc(n, 0x61))))
    assert.deepEqual(
      backs.map((b) => b.length),
      sizes,
    )
    const sum = sizes.reduce((a, b) => a + b, 0)
    // Plaintext bytes (the work streams are encrypted: AES-CFB keeps the length, the count is the users').
    const p = server.metrics.proxy('echo')!
    assert.equal(p.trafficIn, sum)
    assert.equal(p.trafficOut, sum)
    assert.equal(p.todayTrafficIn, sum)
    assert.equal(p.todayTrafficOut, sum)
    await ended
    assert.equal(server.metrics.proxy('echo')!.curConns, 0)
    assert.deepEqual(server.metrics.totals(), { trafficIn: sum, trafficOut: sum, curConns: 0, loginFailures: 0 })

    const m = await scrape(port)
    assert.equal(m.samples.get('frp_server_traffic_in{name="echo",type="tcp"}'), sum)
    assert.equal(m.samples.get('frp_server_traffic_out{name="echo",type="tcp"}'), sum)
    assert.equal(m.samples.get('frp_server_connection_counts{name="echo",type="tcp"}'), 0)
    c.client.close()
  } finally {
    await server.close()
    await echo.close()
  }
})

test('http vhost proxies are counted too (the same work-connection hook), and listed by the API', { timeout: 15_000 }, async () => {
  const http = await import('node:http')
  const answer = 'y'.repeat(5000)
  const local = http.createServer((req, res) => {
    req.resume()
    // The service hangs up after answering, so the work connection ends now (not at a keep-alive timeout).
    req.on('end', () => res.setHeader('Connection', 'close').end(answer))
  })
  await new Promise<void>((r) => local.listen(0, '127.0.0.1', r))
  const localPort = (local.address() as import('node:net').AddressInfo).port
  const { server, port, url } = await startServer({}, memoryLogger())
  try {
    const c = await connectClient(url, [{ name: 'web', type: 'http', fields: { custom_domains: ['app.test'] } }], { targetPort: localPort })
    assert.equal((await c.status('web')).status, 'running')
    const upload = 'x'.repeat(3000)
    const ended = connsClosed(server.metrics, 1)
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/', method: 'POST', headers: { Host: 'app.test', Connection: 'close' }, agent: false }, (res) => {
        let got = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (got += d))
        res.on('end', () => resolve(got))
      })
      req.on('error', reject)
      req.end(upload)
    })
    assert.equal(body, answer)
    await ended
    const p = server.metrics.proxy('web')!
    assert.equal(p.type, 'http')
    assert.equal(p.curConns, 0)
    // Request and answer heads ride along: at least the bodies, at most a few KiB more.
    assert.ok(p.trafficIn >= upload.length && p.trafficIn < upload.length + 4096, `in ${p.trafficIn}`)
    assert.ok(p.trafficOut >= answer.length && p.trafficOut < answer.length + 4096, `out ${p.trafficOut}`)
    const m = await scrape(port)
    assert.equal(m.samples.get('frp_server_proxy_counts{type="http"}'), 1)
    assert.equal(m.samples.get('frp_server_traffic_out{name="web",type="http"}'), p.trafficOut)
    c.client.close()
  } finally {
    await server.close()
    await new Promise<void>((r) => local.close(() => r()))
  }
})

test('curConns counts user connections while they are joined to a work connection', { timeout: 15_000 }, async () => {
  const echo = await echoServer()
  const { server, port, url } = await startServer({}, memoryLogger())
  try {
    const c = await connectClient(url, [{ name: 'held', type: 'tcp', fields: { remote_port: 0 } }], { targetPort: echo.port })
    const remote = portOf((await c.status('held')).detail)
    const net = await import('node:net')
    const opened = once(server.metrics, 'conn')
    const sock = net.connect(remote, '127.0.0.1')
    sock.on('error', () => {})
    sock.write('ping')
    await opened
    assert.equal(server.metrics.proxy('held')!.curConns, 1)
    assert.equal(server.metrics.totals().curConns, 1)
    const m = await scrape(port)
    assert.equal(m.samples.get('frp_server_connection_counts{name="held",type="tcp"}'), 1)
    const closed = connsClosed(server.metrics, 1)
    sock.destroy()
    await closed
    assert.equal(server.metrics.proxy('held')!.curConns, 0)
    c.client.close()
  } finally {
    await server.close()
    await echo.close()
  }
})

test('/metrics has frp names and wsfrp gauges with the right values', { timeout: 15_000 }, async () => {
  const echo = await echoServer()
  const { server, port, url } = await startServer({}, memoryLogger())
  try {
    // A refused login first: it is counted, nothing else changes.
    const failed = once(server.metrics, 'login-failure')
    await assert.rejects(connectClient(url, [], { token: 'wrong' }))
    await failed

    const c = await connectClient(url, [{ name: 'a', type: 'tcp', fields: { remote_port: 0 } }, { name: 'b', type: 'tcp', fields: { remote_port: 0 } }], { targetPort: echo.port })
    await c.status('a')
    await c.status('b')
    const m = await scrape(port)
    assert.equal(m.types.get('frp_server_client_counts'), 'gauge')
    assert.equal(m.types.get('frp_server_proxy_counts'), 'gauge')
    assert.equal(m.types.get('frp_server_connection_counts'), 'gauge')
    assert.equal(m.types.get('frp_server_traffic_in'), 'counter')
    assert.equal(m.types.get('frp_server_traffic_out'), 'counter')
    assert.equal(m.types.get('wsfrp_login_failures_total'), 'counter')
    assert.equal(m.types.get('wsfrp_yamux_streams'), 'gauge')
    assert.equal(m.types.get('wsfrp_session_receive_buffer_bytes'), 'gauge')
    assert.equal(m.types.get('wsfrp_transports'), 'gauge')

    assert.equal(m.samples.get('frp_server_client_counts'), 1)
    assert.equal(m.samples.get('frp_server_proxy_counts{type="tcp"}'), 2)
    assert.equal(m.samples.get('frp_server_traffic_in{name="a",type="tcp"}'), 0)
    assert.equal(m.samples.get('frp_server_traffic_out{name="b",type="tcp"}'), 0)
    assert.equal(m.samples.get('wsfrp_login_failures_total'), 1)
    // The refused client's transport may still be lingering: at least the logged-in one is open.
    const sessions = server.metrics.sessionTotals()
    assert.ok((m.samples.get('wsfrp_transports') ?? 0) >= 1)
    assert.equal(sessions.transports, server.role.sessionCount)
    const streams = m.samples.get('wsfrp_yamux_streams') ?? -1
    assert.ok(streams >= 1, `streams ${streams}: at least the control stream`)
    const buffered = m.samples.get('wsfrp_session_receive_buffer_bytes')
    assert.ok(buffered !== undefined && buffered >= 0)

    const closedA = once(server, 'logout')
    c.client.close()
    await closedA
    const after = await scrape(port)
    assert.equal(after.samples.get('frp_server_client_counts'), 0)
    assert.equal(after.samples.get('frp_server_proxy_counts{type="tcp"}'), 0)
    assert.equal(after.samples.has('frp_server_connection_counts{name="a",type="tcp"}'), false, 'no gauge for an offline proxy')
    assert.equal(after.samples.get('frp_server_traffic_in{name="a",type="tcp"}'), 0, 'counters of offline proxies stay')
  } finally {
    await server.close()
    await echo.close()
  }
})

test('each server has its own registry: two servers in one process do not mix their metrics', { timeout: 15_000 }, async () => {
  const one = await startServer({}, memoryLogger())
  const two = await startServer({}, memoryLogger())
  try {
    const c = await connectClient(one.url, [])
    assert.equal((await scrape(one.port)).samples.get('frp_server_client_counts'), 1)
    assert.equal((await scrape(two.port)).samples.get('frp_server_client_counts'), 0)
    c.client.close()
  } finally {
    await one.server.close()
    await two.server.close()
  }
})

test('a refused login is counted, with its reason, through the session role\'s onLoginRefused hook', { timeout: 10_000 }, async () => {
  // A logger that drops everything: the count must not depend on a log line.
  const { server, url } = await startServer({}, noopLogger)
  try {
    for (let i = 1; i <= 2; i++) {
      const failed = once(server.metrics, 'login-failure')
      await assert.rejects(connectClient(url, [], { token: `${TOKEN}-wrong` }))
      assert.deepEqual(await failed, ['token'])
      assert.equal(server.metrics.totals().loginFailures, i)
    }

    const c = await connectClient(url, [])
    assert.equal(server.metrics.totals().loginFailures, 2, 'a good login is not a failure')
    c.client.close()
  } finally {
    await server.close()
  }
})

test('DailyCounter books bytes on the day they flowed and keeps 7 days', { timeout: 5_000 }, () => {
  assert.equal(HISTORY_DAYS, 7)
  const d = new DailyCounter(100)
  d.total += 10
  assert.deepEqual(d.lastDays(), [10, 0, 0, 0, 0, 0, 0])
  d.roll(100) // same day: nothing moves
  d.roll(99) // the clock went back: nothing moves
  assert.deepEqual(d.lastDays(), [10, 0, 0, 0, 0, 0, 0])
  d.roll(101)
  d.total += 5
  assert.deepEqual(d.lastDays(), [5, 10, 0, 0, 0, 0, 0])
  d.roll(104) // two idle days in between
  assert.deepEqual(d.lastDays(), [0, 0, 0, 5, 10, 0, 0])
  d.total += 1
  d.roll(106)
  assert.deepEqual(d.lastDays(), [0, 0, 1, 0, 0, 5, 10])
  d.roll(107)
  assert.deepEqual(d.lastDays(), [0, 0, 0, 1, 0, 0, 5], 'the 8th day back is dropped')
  d.total += 7
  d.roll(200)
  assert.deepEqual(d.lastDays(), [0, 0, 0, 0, 0, 0, 0])
  assert.equal(d.total, 23, 'the total is never reset')
})

test('localDay changes at local midnight', { timeout: 5_000 }, () => {
  const before = new Date(2024, 5, 1, 23, 59, 59, 999).getTime()
  const after = new Date(2024, 5, 2, 0, 0, 0, 0).getTime()
  assert.equal(localDay(after) - localDay(before), 1)
  assert.equal(localDay(new Date(2024, 5, 2, 12).getTime()), localDay(after))
})

/**
 * Registers proxy `name` for a fake control through `metrics.countTraffic`, like the server does, and
 * returns the stand-in control the manager was given (whose work connections count).
 */
async function registerFake(metrics: ServerMetrics, name: string, runId = 'run-1') {
  let stand: ControlHandle | undefined
  const wrapped = metrics.countTraffic({
    register: async (_p, c) => {
      stand = c
      return ':1234'
    },
    unregister: () => {},
  })
  const peers: Conn[] = []
  const control = fakeControl(runId, async () => {
    const p = memoryPair()
    peers.push(p.b)
    return p.a
  })
  await wrapped.register({ type: 'NewProxy', proxy_name: name, proxy_type: 'tcp' }, control)
  assert.ok(stand !== undefined)
  return { wrapped, control, stand, peers }
}

test('history by day on a fake clock: midnight rolls, offline proxies are forgotten after 7 days', { timeout: 5_000 }, async () => {
  const now = { t: new Date(2024, 2, 10, 12).getTime() }
  const metrics = new ServerMetrics({ now: () => now.t })
  try {
    const { wrapped, control, stand } = await registerFake(metrics, 'p')
    const c = await stand.startWorkConn('p', {})
    c.start({ onData() {}, onDrain() {}, onEnd() {}, onClose() {} })
    c.write(new Uint8Array(300))
    assert.equal(metrics.proxy('p')!.todayTrafficIn, 300)
    // Midnight passes: the server's midnight timer (or any read) rolls the day over.
    now.t = new Date(2024, 2, 11, 0, 0, 1).getTime()
    assert.deepEqual(metrics.traffic('p')!.trafficIn, [0, 300, 0, 0, 0, 0, 0])
    c.write(new Uint8Array(20))
    now.t = new Date(2024, 2, 11, 9).getTime()
    assert.deepEqual(metrics.traffic('p')!.trafficIn, [20, 300, 0, 0, 0, 0, 0])
    assert.equal(metrics.proxy('p')!.trafficIn, 320)
    assert.equal(metrics.proxy('p')!.curConns, 1)
    const closed = once(metrics, 'conn')
    c.destroy()
    await closed
    assert.equal(metrics.proxy('p')!.curConns, 0)
    wrapped.unregister('p', control)
    assert.equal(metrics.proxy('p')!.status, 'offline')
    assert.equal(metrics.proxies('online').length, 0)
    now.t = new Date(2024, 2, 17, 9).getTime()
    assert.deepEqual(metrics.traffic('p')!.trafficIn, [0, 0, 0, 0, 0, 0, 20], 'kept while inside the 7 days')
    now.t = new Date(2024, 2, 18, 9).getTime()
    assert.equal(metrics.traffic('p'), undefined, 'forgotten once its last day left the window')
  } finally {
    metrics.close()
  }
})

test('a work connection destroyed before it was started is no longer counted as open', { timeout: 5_000 }, async () => {
  const metrics = new ServerMetrics()
  try {
    const { stand } = await registerFake(metrics, 'p')
    const c = await stand.startWorkConn('p', {})
    assert.equal(metrics.totals().curConns, 1)
    c.destroy()
    c.destroy()
    assert.equal(metrics.totals().curConns, 0)
  } finally {
    metrics.close()
  }
})

test('a late unregister from a replaced client does not take the new holder offline', { timeout: 5_000 }, async () => {
  const metrics = new ServerMetrics()
  try {
    const wrapped = metrics.countTraffic({ register: async () => ':1', unregister: () => {} })
    const old = fakeControl('old', async () => memoryPair().a)
    const cur = fakeControl('new', async () => memoryPair().a)
    await wrapped.register({ type: 'NewProxy', proxy_name: 'x' }, old)
    await wrapped.register({ type: 'NewProxy', proxy_name: 'x' }, cur)
    wrapped.unregister('x', old)
    assert.equal(metrics.proxy('x')!.status, 'online')
    assert.equal(metrics.proxy('x')!.runId, 'new')
  } finally {
    metrics.close()
  }
})

test('managers get one stand-in per control: identity checks keep working', { timeout: 5_000 }, async () => {
  const metrics = new ServerMetrics()
  try {
    const seen: unknown[] = []
    const wrapped = metrics.countTraffic({
      register: async (_p, c) => {
        seen.push(c)
        return ':1'
      },
      unregister: (_n, c) => void seen.push(c),
    })
    const control = fakeControl('r', async () => memoryPair().a)
    await wrapped.register({ type: 'NewProxy', proxy_name: 'a' }, control)
    await wrapped.register({ type: 'NewProxy', proxy_name: 'b' }, control)
    wrapped.unregister('a', control)
    assert.equal(seen.length, 3)
    assert.equal(seen[0], seen[1])
    assert.equal(seen[1], seen[2])
    assert.notEqual(seen[0], control, 'a stand-in, not the control itself')
    const stand = seen[0] as typeof control
    assert.equal(stand.runId, 'r')
    assert.equal(stand.since, control.since)
  } finally {
    metrics.close()
  }
})

test('proxyConf publishes no secret field and is frozen', { timeout: 5_000 }, () => {
  const conf = proxyConf({
    type: 'NewProxy',
    proxy_name: 'web',
    proxy_type: 'http',
    custom_domains: ['a.example'],
    subdomain: 'app',
    locations: ['/'],
    http_user: 'u',
    http_pwd: 'pw',
    sk: 'sk',
    group: 'g',
    group_key: 'gk',
    metas: { k: 'v' },
    annotations: { a: 'b' },
    headers: { Authorization: 'x' },
    host_header_rewrite: 'in.example',
    use_encryption: true,
  })
  assert.deepEqual(conf, {
    name: 'web',
    type: 'http',
    transport: { useEncryption: true, useCompression: false },
    loadBalancer: { group: 'g' },
    customDomains: ['a.example'],
    subdomain: 'app',
    locations: ['/'],
    hostHeaderRewrite: 'in.example',
  })
  assert.ok(Object.isFrozen(conf) && Object.isFrozen(conf.transport) && Object.isFrozen(conf.customDomains))
})

// The counting wrapper must behave as a Conn in every respect (backpressure, half-close, destroy, …).
connSuite('counting work connection', async () => {
  const metrics = new ServerMetrics()
  const { stand, peers } = await registerFake(metrics, 'suite')
  const a = await stand.startWorkConn('suite', {})
  return { a, b: peers[0]!, cleanup: () => metrics.close() }
})
