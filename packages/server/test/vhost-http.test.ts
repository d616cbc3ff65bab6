import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as http from 'node:http'
import { WsfrpError, type ControlHandle, type Conn } from '@wsfrp/core'
import { HttpVhost, ERROR_HEADER } from '../src/vhost/index.js'
import { closeServer, describeHandler, listen, localService, request, startBench, type LocalService } from './vhost-support.js'

const T = { timeout: 20_000 }

function basic(user: string, pwd: string): string {
  return `Basic ${Buffer.from(`${user}:${pwd}`).toString('base64')}`
}

interface Described {
  id: string
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  rawHeaders: string[]
  body: string
}

function json(body: Buffer): Described {
  return JSON.parse(body.toString()) as Described
}

async function services(...ids: string[]): Promise<Record<string, LocalService>> {
  const out: Record<string, LocalService> = {}
  for (const id of ids) out[id] = await localService(describeHandler(id))
  return out
}

async function closeAll(s: Record<string, LocalService>): Promise<void> {
  await Promise.all(Object.values(s).map((l) => closeServer(l.server)))
}

test('vhost: routes by Host, subdomain, wildcard and catch-all; longest location wins', T, async () => {
  const s = await services('app', 'sub', 'api', 'apiv2', 'wild', 'all')
  const bench = await startBench({
    vhost: { subDomainHost: 'tunnel.test' },
    proxies: [
      { name: 'app', fields: { custom_domains: ['App.Test'] }, localPort: s.app!.port },
      { name: 'sub', fields: { subdomain: 'blog' }, localPort: s.sub!.port },
      { name: 'api', fields: { custom_domains: ['app.test'], locations: ['/api'] }, localPort: s.api!.port },
      { name: 'apiv2', fields: { custom_domains: ['app.test'], locations: ['/api/v2'] }, localPort: s.apiv2!.port },
      { name: 'wild', fields: { custom_domains: ['*.wild.test'] }, localPort: s.wild!.port },
      { name: 'all', fields: { custom_domains: ['*'], locations: ['/catch'] }, localPort: s.all!.port },
    ],
  })
  try {
    const id = async (host: string, path = '/'): Promise<string> => {
      const r = await request(bench.port, host, { path })
      assert.equal(r.status, 200, `${host}${path}: ${r.status} ${r.body.toString()}`)
      return json(r.body).id
    }
    assert.equal(await id('app.test'), 'app')
    assert.equal(await id(`APP.test:${bench.port}`, '/index.html?q=1'), 'app')
    assert.equal(await id('blog.tunnel.test'), 'sub')
    assert.equal(await id('app.test', '/api/users'), 'api')
    assert.equal(await id('app.test', '/api/v2/users'), 'apiv2')
    assert.equal(await id('x.wild.test'), 'wild')
    assert.equal(await id('a.b.wild.test'), 'wild')
    assert.equal(await id('unknown.test', '/catch/me'), 'all')
    // The path and query reach the local service untouched.
    const r = await request(bench.port, 'app.test', { path: '/api/v2/x?a=1&b=%20' })
    assert.equal(json(r.body).url, '/api/v2/x?a=1&b=%20')
    // No route: 404 page with the stable error header; the wildcard does not cover its apex.
    for (const host of ['nothing.test', 'wild.test']) {
      const miss = await request(bench.port, host)
      assert.equal(miss.status, 404)
      assert.equal(miss.headers[ERROR_HEADER.toLowerCase()], 'no-route')
      assert.match(miss.headers['content-type'] ?? '', /^text\/html/)
      assert.match(miss.body.toString(), /404 Not Found/)
    }
    // NewProxyResp.remote_addr names the routes with the vhost port (frps: "domain:port").
    assert.deepEqual(await bench.proxyStatus('sub'), ['running', `blog.tunnel.test:${bench.port}`])
    assert.deepEqual(await bench.proxyStatus('app'), ['running', `app.test:${bench.port}`])
  } finally {
    await bench.close()
    await closeAll(s)
  }
})

test('vhost: registration errors reach the client in NewProxyResp', T, async () => {
  const s = await services('a')
  const bench = await startBench({
    waitRunning: false,
    vhost: { reserved: (p) => p === '/~!frp' },
    proxies: [
      { name: 'first', fields: { custom_domains: ['dup.test'] }, localPort: s.a!.port },
      { name: 'second', fields: { custom_domains: ['dup.test'] }, localPort: s.a!.port },
      { name: 'nosdh', fields: { subdomain: 'x' }, localPort: s.a!.port },
      { name: 'nothing', fields: {}, localPort: s.a!.port },
      { name: 'reserved', fields: { custom_domains: ['r.test'], locations: ['/~!frp'] }, localPort: s.a!.port },
      { name: 'badheader', fields: { custom_domains: ['h.test'], headers: { 'Bad Name': 'x' } }, localPort: s.a!.port },
      { name: 'g1', fields: { custom_domains: ['g.test'], group: 'web', group_key: 'k1' }, localPort: s.a!.port },
      { name: 'g2', fields: { custom_domains: ['g.test'], group: 'web', group_key: 'k2' }, localPort: s.a!.port },
    ],
  })
  try {
    assert.equal((await bench.proxyStatus('first'))[0], 'running')
    assert.deepEqual(await bench.proxyStatus('second'), ['error', 'router config conflict: domain dup.test location / is already in use'])
    assert.deepEqual(await bench.proxyStatus('nosdh'), ['error', 'subdomain is not supported: this server has no subDomainHost configured'])
    assert.deepEqual(await bench.proxyStatus('nothing'), ['error', 'an http proxy needs custom_domains or subdomain'])
    assert.deepEqual(await bench.proxyStatus('reserved'), ['error', 'location /~!frp is reserved by the server'])
    assert.match((await bench.proxyStatus('badheader'))[1], /^headers: invalid header "Bad Name"/)
    assert.equal((await bench.proxyStatus('g1'))[0], 'running')
    assert.match((await bench.proxyStatus('g2'))[1], /^group auth failed/)
    // A refused registration leaves no route behind; the accepted one serves.
    assert.equal((await request(bench.port, 'h.test')).status, 404)
    assert.equal((await request(bench.port, 'dup.test')).status, 200)
  } finally {
    await bench.close()
    await closeAll(s)
  }
})

test('vhost: subdomain rules: no "." or "*", custom domains may not sit under subDomainHost', T, async () => {
  const vhost = new HttpVhost({ subDomainHost: 'tunnel.test' })
  const control = { runId: 'r' } as ControlHandle
  await assert.rejects(vhost.register({ type: 'NewProxy', proxy_name: 'a', proxy_type: 'http', subdomain: 'a.b' }, control), /'\.' and '\*' are not allowed in subdomain/)
  await assert.rejects(vhost.register({ type: 'NewProxy', proxy_name: 'a', proxy_type: 'http', subdomain: '*' }, control), /'\.' and '\*' are not allowed/)
  await assert.rejects(
    vhost.register({ type: 'NewProxy', proxy_name: 'a', proxy_type: 'http', custom_domains: ['x.tunnel.test'] }, control),
    /custom domain \[x\.tunnel\.test\] should not belong to subDomainHost \[tunnel\.test\]/,
  )
  await assert.rejects(vhost.register({ type: 'NewProxy', proxy_name: 'a', proxy_type: 'tcp', remote_port: 1 }, control), /not an http vhost proxy/)
  assert.equal(vhost.router.size, 0)
  assert.throws(() => new HttpVhost({ trustedProxies: ['10.0.0.0/33'] }), /prefix length/)
  assert.throws(() => new HttpVhost({ trustedProxies: ['nope'] }), /not an IP address/)
})

test('vhost: Basic auth answers 401 with the frps realm; route_by_http_user picks by user name', T, async () => {
  const s = await services('public', 'alice', 'locked')
  const bench = await startBench({
    proxies: [
      { name: 'public', fields: { custom_domains: ['users.test'] }, localPort: s.public!.port },
      { name: 'alice', fields: { custom_domains: ['users.test'], route_by_http_user: 'alice', http_user: 'alice', http_pwd: 's3cret' }, localPort: s.alice!.port },
      { name: 'locked', fields: { custom_domains: ['locked.test'], http_user: 'u', http_pwd: 'p' }, localPort: s.locked!.port },
    ],
  })
  try {
    const plain = await request(bench.port, 'users.test')
    assert.equal(json(plain.body).id, 'public')
    const asAlice = await request(bench.port, 'users.test', { headers: { authorization: basic('alice', 's3cret') } })
    assert.equal(asAlice.status, 200)
    const seen = json(asAlice.body)
    assert.equal(seen.id, 'alice')
    // Authorization is end-to-end (frps forwards it too).
    assert.equal(seen.headers.authorization, basic('alice', 's3cret'))
    const wrong = await request(bench.port, 'users.test', { headers: { authorization: basic('alice', 'nope') } })
    assert.equal(wrong.status, 401)
    assert.equal(wrong.headers['www-authenticate'], 'Basic realm="Restricted"')
    assert.equal(wrong.headers[ERROR_HEADER.toLowerCase()], 'unauthorized')
    // Another user name falls through to the user-less route.
    assert.equal(json((await request(bench.port, 'users.test', { headers: { authorization: basic('bob', 'x') } })).body).id, 'public')

    const none = await request(bench.port, 'locked.test')
    assert.equal(none.status, 401)
    assert.equal(none.headers['www-authenticate'], 'Basic realm="Restricted"')
    assert.equal((await request(bench.port, 'locked.test', { headers: { authorization: basic('u', 'p') } })).status, 200)
    assert.equal((await request(bench.port, 'locked.test', { headers: { authorization: basic('u', 'p2') } })).status, 401)
    assert.equal((await request(bench.port, 'locked.test', { headers: { authorization: 'Bearer abc' } })).status, 401)
    assert.equal(s.locked!.requests.length, 1, 'refused requests reached the local service')
  } finally {
    await bench.close()
    await closeAll(s)
  }
})

test('vhost: host_header_rewrite, headers and response_headers are set; hop-by-hop fields are dropped', T, async () => {
  const local = await localService((req, res) => {
    res.setHeader('X-Drop-Me', 'secret')
    res.setHeader('Connection', 'X-Drop-Me')
    res.setHeader('X-Served-By', 'local')
    res.setHeader('X-Keep', 'kept')
    describeHandler('rw')(req, res)
  })
  const bench = await startBench({
    proxies: [
      {
        name: 'rw',
        fields: {
          custom_domains: ['rw.test'],
          host_header_rewrite: 'internal.local:8080',
          headers: { 'X-From-Tunnel': 'yes', 'X-Override': 'config' },
          response_headers: { 'X-Served-By': 'wsfrp', 'X-Frame-Options': 'DENY' },
        },
        localPort: local.port,
      },
    ],
  })
  try {
    const r = await request(bench.port, 'rw.test', {
      method: 'POST',
      body: 'payload',
      headers: {
        'X-Override': 'user',
        Connection: 'keep-alive, X-Hop',
        'X-Hop': 'must not pass',
        'Proxy-Authorization': basic('x', 'y'),
        'Keep-Alive': 'timeout=5',
        'X-Multi': ['1', '2'],
        Cookie: 'a=1',
      },
    })
    assert.equal(r.status, 200)
    const seen = json(r.body)
    assert.equal(seen.headers.host, 'internal.local:8080')
    assert.equal(seen.headers['x-from-tunnel'], 'yes')
    assert.equal(seen.headers['x-override'], 'config')
    assert.equal(seen.headers['x-hop'], undefined)
    assert.equal(seen.headers['proxy-authorization'], undefined)
    assert.equal(seen.headers['keep-alive'], undefined)
    assert.equal(seen.headers['x-multi'], '1, 2')
    assert.equal(seen.headers.cookie, 'a=1')
    assert.equal(seen.body, 'payload')
    assert.equal(seen.headers['content-length'], '7')
    // The original Host goes on as X-Forwarded-Host.
    assert.equal(seen.headers['x-forwarded-host'], 'rw.test')
    assert.equal(r.headers['x-served-by'], 'wsfrp')
    assert.equal(r.headers['x-frame-options'], 'DENY')
    assert.equal(r.headers['x-keep'], 'kept')
    assert.equal(r.headers['x-drop-me'], undefined, 'a field named in Connection was forwarded')
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: X-Forwarded-* from a trusted peer are extended; src_addr is the real client', T, async () => {
  const local = await localService(describeHandler('xff'))
  // Default trusted proxies: loopback, which is where the test connects from.
  const bench = await startBench({ proxies: [{ name: 'xff', fields: { custom_domains: ['xff.test'] }, localPort: local.port }] })
  try {
    const r = await request(bench.port, 'xff.test', { headers: { 'X-Forwarded-For': '203.0.113.9', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'public.example' } })
    const h = json(r.body).headers
    assert.equal(h['x-forwarded-for'], '203.0.113.9, 127.0.0.1')
    assert.equal(h['x-real-ip'], '203.0.113.9')
    assert.equal(h['x-forwarded-proto'], 'https')
    assert.equal(h['x-forwarded-host'], 'public.example')
    assert.equal(bench.starts.at(-1)?.src_addr, '203.0.113.9')
    assert.equal(bench.starts.at(-1)?.proxy, 'xff')
    const direct = json((await request(bench.port, 'xff.test')).body).headers
    assert.equal(direct['x-forwarded-for'], '127.0.0.1')
    assert.equal(direct['x-real-ip'], '127.0.0.1')
    assert.equal(direct['x-forwarded-proto'], 'http')
    assert.equal(direct['x-forwarded-host'], 'xff.test')
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: X-Forwarded-* and X-Real-IP from an untrusted peer are replaced, not believed', T, async () => {
  const local = await localService(describeHandler('xff'))
  const bench = await startBench({
    vhost: { trustedProxies: [] },
    proxies: [{ name: 'xff', fields: { custom_domains: ['xff.test'] }, localPort: local.port }],
  })
  try {
    const r = await request(bench.port, 'xff.test', {
      headers: { 'X-Forwarded-For': '6.6.6.6', 'X-Real-IP': '6.6.6.6', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'evil.example', Forwarded: 'for=6.6.6.6' },
    })
    const seen = json(r.body)
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
    assert.equal(seen.headers['x-real-ip'], '127.0.0.1')
    assert.equal(seen.headers['x-forwarded-proto'], 'http')
    assert.equal(seen.headers['x-forwarded-host'], 'xff.test')
    assert.equal(seen.headers.forwarded, undefined)
    assert.equal(seen.rawHeaders.filter((n) => n.toLowerCase() === 'x-forwarded-for').length, 1)
    const start = bench.starts.at(-1)!
    assert.equal(start.src_addr, '127.0.0.1')
    assert.ok(start.src_port! > 0)
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: 502 upstream-refused when the local service is down; routes go when the client goes', T, async () => {
  // A port that refuses: listen, note it, close.
  const gone = http.createServer()
  const deadPort = await listen(gone)
  await closeServer(gone)
  const local = await localService(describeHandler('ok'))
  const bench = await startBench({
    proxies: [
      { name: 'down', fields: { custom_domains: ['down.test'] }, localPort: deadPort },
      { name: 'ok', fields: { custom_domains: ['ok.test'] }, localPort: local.port },
    ],
  })
  try {
    const r = await request(bench.port, 'down.test')
    assert.equal(r.status, 502)
    assert.equal(r.headers[ERROR_HEADER.toLowerCase()], 'upstream-refused')
    assert.match(r.body.toString(), /502 Bad Gateway/)
    // The same for a request with a body.
    const p = await request(bench.port, 'down.test', { method: 'POST', body: 'x'.repeat(1000) })
    assert.equal(p.status, 502)
    assert.equal((await request(bench.port, 'ok.test')).status, 200)
    bench.client.close()
    await bench.client.closed
    // The control closes on the server when the transport does: its routes are removed.
    while (bench.vhost.router.size > 0) await new Promise((r) => setImmediate(r))
    const after = await request(bench.port, 'ok.test')
    assert.equal(after.status, 404)
    assert.equal(after.headers[ERROR_HEADER.toLowerCase()], 'no-route')
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: 502 client-offline when no work connection can be had', T, async () => {
  const vhost = new HttpVhost()
  const control = {
    runId: 'offline',
    startWorkConn: (): Promise<Conn> => Promise.reject(new WsfrpError('ERR_TIMEOUT', 'no work connection from client offline within 10000 ms')),
  } as unknown as ControlHandle
  await vhost.register({ type: 'NewProxy', proxy_name: 'off', proxy_type: 'http', custom_domains: ['off.test'] }, control)
  const server = http.createServer((req, res) => {
    if (!vhost.handleRequest(req, res)) vhost.respondNoRoute(req, res)
  })
  const port = await listen(server)
  try {
    for (const method of ['GET', 'POST']) {
      const r = await request(port, 'off.test', { method, body: method === 'POST' ? 'data' : undefined })
      assert.equal(r.status, 502)
      assert.equal(r.headers[ERROR_HEADER.toLowerCase()], 'client-offline')
      assert.match(r.body.toString(), /offline/)
    }
  } finally {
    vhost.close()
    await closeServer(server)
  }
})

test('vhost: 504 upstream-timeout when the local service sends no response headers in time', T, async () => {
  const hung: http.ServerResponse[] = []
  const local = await localService((_req, res) => void hung.push(res))
  const bench = await startBench({
    vhost: { responseHeaderTimeoutMs: 300 },
    proxies: [{ name: 'slow', fields: { custom_domains: ['slow.test'] }, localPort: local.port }],
  })
  try {
    const t0 = Date.now()
    const r = await request(bench.port, 'slow.test')
    assert.equal(r.status, 504)
    assert.equal(r.headers[ERROR_HEADER.toLowerCase()], 'upstream-timeout')
    assert.ok(Date.now() - t0 >= 290, 'answered before the timeout')
    assert.equal(local.requests.length, 1)
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: reserved paths are left to the server even under a catch-all route', T, async () => {
  const local = await localService(describeHandler('all'))
  const bench = await startBench({
    vhost: { reserved: (p) => p === '/~!frp' || p.startsWith('/_wsfrp/') },
    proxies: [{ name: 'all', fields: { custom_domains: ['*'] }, localPort: local.port }],
  })
  try {
    for (const path of ['/~!frp', '/_wsfrp/api', '/%7E!frp', '/%5Fwsfrp/x']) {
      const r = await request(bench.port, 'any.test', { path })
      assert.equal(r.status, 404, path)
    }
    assert.equal((await request(bench.port, 'any.test', { path: '/app' })).status, 200)
    assert.equal(local.requests.length, 1)
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})
