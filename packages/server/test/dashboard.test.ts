// The dashboard page, its script, and who may see the observe surfaces (packages/server/src/dashboard/).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import * as http from 'node:http'
import * as net from 'node:net'
import { fileURLToPath } from 'node:url'
import * as vm from 'node:vm'
import { isWsfrpError } from '@wsfrp/core'
import { createServer } from '@wsfrp/server'
import { BasicAuth, decideExposure, isLoopbackAddress, isLoopbackHost } from '../src/dashboard/index.js'
import { DASHBOARD_SCRIPT } from '../src/dashboard/ui-bundle.js'
import { TOKEN, connectClient, echoServer, freePort, memoryLogger, startServer } from './support/helpers.js'
import { basic, getJson, request, scrape } from './dashboard-support.js'

test('the page loads as HTML with a strict CSP and its script is served', { timeout: 10_000 }, async () => {
  const { server, port } = await startServer({}, memoryLogger())
  try {
    const page = await request(port, '/_wsfrp/')
    assert.equal(page.status, 200)
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8')
    assert.match(String(page.headers['content-security-policy']), /script-src 'self'/)
    assert.match(String(page.headers['content-security-policy']), /connect-src 'self'/)
    assert.equal(page.headers['x-frame-options'], 'DENY')
    assert.match(page.body, /<script src="app\.js" defer><\/script>/)
    for (const id of ['totals', 'clients', 'proxies', 'status', 'version']) assert.match(page.body, new RegExp(`id="${id}"`))

    const js = await request(port, '/_wsfrp/app.js')
    assert.equal(js.status, 200)
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8')
    assert.equal(js.body, DASHBOARD_SCRIPT)
    assert.ok(js.body.includes('api/serverinfo'), 'the script polls the API')
    // Revalidation: unchanged content answers 304.
    const again = await request(port, '/_wsfrp/app.js', { headers: { 'If-None-Match': String(js.headers.etag) } })
    assert.equal(again.status, 304)

    const bare = await request(port, '/_wsfrp')
    assert.equal(bare.status, 301)
    assert.equal(bare.headers.location, '/_wsfrp/')
    assert.equal((await request(port, '/_wsfrp/nope')).status, 404)
    assert.equal((await request(port, '/_wsfrp/', { method: 'POST' })).status, 405)
    // What was there before is still there.
    assert.equal((await request(port, '/healthz')).body, 'ok\n')
    assert.match((await request(port, '/')).body, /wsfrps/)
  } finally {
    await server.close()
  }
})

test('the generated script bundle is up to date with ui/app.ts', { timeout: 30_000 }, async () => {
  const script = fileURLToPath(new URL('../src/dashboard/build-ui.mjs', import.meta.url))
  const out = await new Promise<{ code: number; text: string }>((resolve) => {
    execFile(process.execPath, [script, '--check'], (err, stdout, stderr) => resolve({ code: err === null ? 0 : Number(err.code ?? 1), text: stdout + stderr }))
  })
  assert.equal(out.code, 0, out.text)
})

// ---- the script renders real data (run in a VM with a small DOM, against a real server) ----

/** Just enough of a DOM for app.js: elements with children, text, classes and attributes. */
class FakeElement {
  className = ''
  title = ''
  readonly attributes = new Map<string, string>()
  children: (FakeElement | string)[] = []
  constructor(readonly tag: string) {}
  get textContent(): string {
    return this.children.map((c) => (typeof c === 'string' ? c : c.textContent)).join('')
  }
  set textContent(v: string | null) {
    this.children = v === null || v === '' ? [] : [v]
  }
  append(...nodes: (FakeElement | string)[]): void {
    this.children.push(...nodes)
  }
  replaceChildren(...nodes: (FakeElement | string)[]): void {
    this.children = [...nodes]
  }
  setAttribute(name: string, value: string): void {
    this.attributes.set(name, value)
  }
  /** Every descendant with this tag. */
  all(tag: string): FakeElement[] {
    const out: FakeElement[] = []
    for (const c of this.children) {
      if (typeof c === 'string') continue
      if (c.tag === tag) out.push(c)
      out.push(...c.all(tag))
    }
    return out
  }
}

/** Runs app.js once against the server at `base` and resolves with the page's elements after the first poll. */
async function renderOnce(base: string): Promise<Record<string, FakeElement>> {
  const ids = ['version', 'status', 'totals', 'clients-title', 'clients', 'proxies']
  const els: Record<string, FakeElement> = Object.fromEntries(ids.map((id) => [id, new FakeElement('div')]))
  els.body = new FakeElement('body')
  let polled!: () => void
  const firstPoll = new Promise<void>((r) => (polled = r))
  const context = vm.createContext({
    document: {
      getElementById: (id: string) => els[id] ?? null,
      createElement: (tag: string) => new FakeElement(tag),
      body: els.body,
    },
    // Relative URLs, as in a browser showing `${base}`.
    fetch: (path: string, init: RequestInit) => fetch(new URL(path, base), init),
    // The next poll is where the first one ends: stop there.
    setTimeout: () => polled(),
  })
  vm.runInContext(DASHBOARD_SCRIPT, context, { filename: 'app.js' })
  await firstPoll
  return els
}

test('the script fills the page from the API: totals, clients, proxies per type', { timeout: 15_000 }, async () => {
  const echo = await echoServer()
  const { server, port, url } = await startServer({}, memoryLogger())
  try {
    const c = await connectClient(url, [{ name: 'ssh', type: 'tcp', fields: { remote_port: 0 } }], {
      targetPort: echo.port,
      extra: { platform: { os: 'linux', arch: 'amd64', hostname: '<img src=x onerror=alert(1)>' } },
    })
    const remote = (await c.status('ssh')).detail
    const els = await renderOnce(`http://127.0.0.1:${port}/_wsfrp/`)
    assert.equal(els.body!.attributes.get('data-state'), 'ready', els.status!.textContent)
    assert.match(els.version!.textContent, /^\d+\.\d+\.\d+/)
    const cards = new Map(els.totals!.children.map((c) => [(c as FakeElement).attributes.get('data-metric'), (c as FakeElement).textContent]))
    assert.equal(cards.get('clients'), '1clients')
    assert.equal(cards.get('proxies'), '1proxies')
    assert.equal(cards.get('login-failures'), '0login failures')
    assert.equal(els['clients-title']!.textContent, 'Clients (1)')
    const clientCells = els.clients!.all('td').map((td) => td.textContent)
    assert.ok(clientCells.includes(c.runId), clientCells.join(' | '))
    assert.ok(clientCells.includes('linux/amd64'))
    // Client-controlled strings are text, never markup.
    assert.ok(clientCells.includes('<img src=x onerror=alert(1)>'))
    assert.equal(els.clients!.all('img').length, 0)
    // One section per type the server serves (http too, empty here).
    const sections = els.proxies!.all('h2').map((h) => h.textContent)
    assert.ok(sections.includes('tcp proxies (1)'), sections.join(' | '))
    for (const s of sections) if (!s.startsWith('tcp ')) assert.match(s, /\(0\)$/)
    const proxyCells = els.proxies!.all('td').map((td) => td.textContent)
    assert.ok(proxyCells.includes('ssh'))
    assert.ok(proxyCells.includes('online'))
    assert.ok(proxyCells.includes(remote), `remote ${remote} in ${proxyCells.join(' | ')}`)
    c.client.close()
  } finally {
    await server.close()
    await echo.close()
  }
})

test('the script says so when the API cannot be reached', { timeout: 10_000 }, async () => {
  const { server, port } = await startServer({ webServer: { user: 'u', password: 'p' } }, memoryLogger())
  try {
    // No credentials: every API call answers 401.
    const els = await renderOnce(`http://127.0.0.1:${port}/_wsfrp/`)
    assert.equal(els.body!.attributes.get('data-state'), 'error')
    assert.match(els.status!.textContent, /offline.*HTTP 401/)
  } finally {
    await server.close()
  }
})

// ---- exposure ----

test('the exposure rule: credentials → Basic auth; loopback → local only; otherwise off', { timeout: 5_000 }, () => {
  const d = (listenAddress: string | undefined, user = '', password = '', enabled = true) => decideExposure({ listenAddress, user, password, enabled }).mode
  assert.equal(d('127.0.0.1'), 'local')
  assert.equal(d('127.3.4.5'), 'local')
  assert.equal(d('::1'), 'local')
  assert.equal(d('::ffff:127.0.0.1'), 'local')
  assert.equal(d('0.0.0.0'), 'off')
  assert.equal(d('::'), 'off')
  assert.equal(d('192.168.1.10'), 'off')
  assert.equal(d(undefined), 'off')
  assert.equal(d('0.0.0.0', 'admin', 'pw'), 'basic')
  assert.equal(d('0.0.0.0', '', 'pw'), 'basic', 'a password alone still protects')
  assert.equal(d('127.0.0.1', 'admin', 'pw'), 'basic', 'credentials apply on loopback too')
  assert.equal(d('127.0.0.1', 'admin', 'pw', false), 'off')
  const off = decideExposure({ listenAddress: '0.0.0.0', user: '', password: '', enabled: true })
  assert.ok(off.mode === 'off' && off.reason.includes('0.0.0.0'))
})

test('loopback addresses and hosts', { timeout: 5_000 }, () => {
  for (const a of ['127.0.0.1', '127.255.0.9', '::1', '0:0:0:0:0:0:0:1', '[::1]', '::ffff:127.0.0.1', '::ffff:7f00:1']) assert.ok(isLoopbackAddress(a), a)
  for (const a of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '::2', '::ffff:10.0.0.1', 'localhost', '', 'fe80::1%lo0']) assert.ok(!isLoopbackAddress(a), a)
  for (const h of ['localhost', 'localhost:7000', 'LOCALHOST.', 'app.localhost:80', '127.0.0.1:7000', '[::1]:7000', '[::1]']) assert.ok(isLoopbackHost(h), h)
  for (const h of ['evil.example', 'evil.example:7000', 'localhost.evil.example', '127.0.0.1.nip.io', '[::2]:7000', '[::1']) assert.ok(!isLoopbackHost(h), h)
})

test('BasicAuth accepts exactly the configured pair', { timeout: 5_000 }, () => {
  const a = new BasicAuth('admin', 'p:ss wörd')
  const hdr = (s: string): string => `Basic ${Buffer.from(s).toString('base64')}`
  assert.ok(a.check(hdr('admin:p:ss wörd')), 'a colon in the password is part of it')
  assert.ok(a.check(`basic  ${Buffer.from('admin:p:ss wörd').toString('base64')}`), 'scheme is case-insensitive')
  assert.ok(!a.check(hdr('admin:p:ss')))
  assert.ok(!a.check(hdr('Admin:p:ss wörd')))
  assert.ok(!a.check(hdr('admin')))
  assert.ok(!a.check(undefined))
  assert.ok(!a.check('Bearer abc'))
  assert.ok(!a.check(`Basic ${Buffer.from('admin:p:ss wörd').toString('base64')} extra`))
})

test('with webServer.user/password every surface needs Basic auth (401 + WWW-Authenticate)', { timeout: 10_000 }, async () => {
  // 14 wrong sign-ins from one address: the sign-in throttle (tested on its own below) is off here.
  const { server, port } = await startServer({ webServer: { user: 'admin', password: 'secret-pw' }, limits: { webLoginFailures: 0 } }, memoryLogger())
  try {
    for (const path of ['/_wsfrp/', '/_wsfrp/app.js', '/_wsfrp/api/serverinfo', '/_wsfrp/api/clients', '/_wsfrp/metrics', '/_wsfrp', '/_wsfrp/anything']) {
      for (const headers of [{}, basic('admin', 'wrong'), basic('root', 'secret-pw')]) {
        const r = await request(port, path, { headers })
        assert.equal(r.status, 401, `${path} ${JSON.stringify(headers)}`)
        assert.match(String(r.headers['www-authenticate']), /^Basic realm="[^"]+"/)
      }
    }
    const auth = basic('admin', 'secret-pw')
    assert.equal((await getJson<{ clientCounts: number }>(port, '/_wsfrp/api/serverinfo', auth)).clientCounts, 0)
    assert.equal((await request(port, '/_wsfrp/', { headers: auth })).status, 200)
    assert.equal((await scrape(port, '/_wsfrp/metrics', auth)).samples.get('frp_server_client_counts'), 0)
    // Health check and landing page stay public; the WebSocket endpoint is untouched.
    assert.equal((await request(port, '/healthz')).status, 200)
    assert.equal((await request(port, '/')).status, 200)
    const c = await connectClient(`ws://127.0.0.1:${port}/~!frp`, [])
    c.client.close()
  } finally {
    await server.close()
  }
})

/** A GET from a chosen local address (127.0.0.0/8 is all loopback on Linux): another peer to the throttle. */
function requestFrom(localAddress: string, port: number, path: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, headers, localAddress, agent: false }, (res) => {
        res.resume()
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }))
      })
      .on('error', reject)
  })
}

test('failed Basic sign-ins are throttled per address: 429 with Retry-After, credentials unchecked', { timeout: 10_000 }, async () => {
  const { server, port } = await startServer(
    {
      auth: { token: TOKEN, users: [{ name: 'alice', token: 'alice-token' }] },
      webServer: { user: 'admin', password: 'secret-pw' },
      limits: { webLoginFailures: 3, loginFailureWindow: 3600 },
    },
    memoryLogger(),
  )
  try {
    const api = '/_wsfrp/api/serverinfo'
    // A browser's first request carries no credentials: never counted, never throttled.
    for (let i = 0; i < 5; i++) assert.equal((await request(port, api)).status, 401)
    // Wrong operator password, wrong tenant token, a header that is not Basic: three failures.
    for (const h of [basic('admin', 'guess-1'), basic('alice', 'guess-2'), { Authorization: 'Bearer guess-3' }]) {
      assert.equal((await request(port, api, { headers: h })).status, 401)
    }
    // Used up: every sign-in from this address gets 429, the right credentials too (not checked).
    for (const h of [basic('admin', 'guess-4'), basic('admin', 'secret-pw'), basic('alice', 'alice-token')]) {
      const r = await request(port, api, { headers: h })
      assert.equal(r.status, 429, JSON.stringify(h))
      const retry = Number(r.headers['retry-after'])
      // One failure is forgiven every 3600 s / 3 = 1200 s.
      assert.ok(Number.isInteger(retry) && retry > 0 && retry <= 1200, `Retry-After ${String(r.headers['retry-after'])}`)
      assert.equal(r.headers['www-authenticate'], undefined)
    }
    // The same answer on every surface that signs in (page, metrics), while no-credential requests still get the challenge.
    assert.equal((await request(port, '/_wsfrp/metrics', { headers: basic('admin', 'secret-pw') })).status, 429)
    assert.equal((await request(port, '/_wsfrp/')).status, 401)
    // Another address is not affected, and signs in.
    assert.equal((await requestFrom('127.0.0.2', port, api, basic('admin', 'secret-pw'))).status, 200)
    assert.equal((await requestFrom('127.0.0.2', port, api, basic('alice', 'alice-token'))).status, 200)
    // frp logins have their own bucket: the throttled address still logs a client in.
    const c = await connectClient(`ws://127.0.0.1:${port}/~!frp`, [])
    c.client.close()
  } finally {
    await server.close()
  }
})

test('a successful sign-in costs nothing; webLoginFailures = 0 turns the sign-in throttle off', { timeout: 10_000 }, async () => {
  const on = await startServer({ webServer: { user: 'admin', password: 'secret-pw' }, limits: { webLoginFailures: 2 } }, memoryLogger())
  const off = await startServer({ webServer: { user: 'admin', password: 'secret-pw' }, limits: { webLoginFailures: 0 } }, memoryLogger())
  try {
    for (let i = 0; i < 10; i++) assert.equal((await request(on.port, '/_wsfrp/api/serverinfo', { headers: basic('admin', 'secret-pw') })).status, 200)
    assert.equal((await request(on.port, '/_wsfrp/api/serverinfo', { headers: basic('admin', 'x') })).status, 401)
    assert.equal((await request(on.port, '/_wsfrp/api/serverinfo', { headers: basic('admin', 'y') })).status, 401)
    assert.equal((await request(on.port, '/_wsfrp/api/serverinfo', { headers: basic('admin', 'secret-pw') })).status, 429)
    for (let i = 0; i < 10; i++) assert.equal((await request(off.port, '/_wsfrp/api/serverinfo', { headers: basic('admin', `guess-${i}`) })).status, 401)
    assert.equal((await request(off.port, '/_wsfrp/api/serverinfo', { headers: basic('admin', 'secret-pw') })).status, 200)
  } finally {
    await on.server.close()
    await off.server.close()
  }
})

test('the webServer.port listener and the local mode throttle failed sign-ins too', { timeout: 10_000 }, async () => {
  const webPort = await freePort()
  const own = await startServer({ webServer: { addr: '127.0.0.1', port: webPort, user: 'ops', password: 'pw-1' }, limits: { webLoginFailures: 1 } }, memoryLogger())
  // Local mode (no webServer credentials): a tenant signing in from "elsewhere" (through a proxy).
  const local = await startServer({ auth: { token: TOKEN, users: [{ name: 'alice', token: 'alice-token' }] }, limits: { webLoginFailures: 1 } }, memoryLogger())
  try {
    assert.equal((await request(webPort, '/api/serverinfo', { headers: basic('ops', 'nope') })).status, 401)
    assert.equal((await request(webPort, '/api/serverinfo', { headers: basic('ops', 'pw-1') })).status, 429)
    assert.equal((await request(webPort, '/healthz')).status, 200)

    const proxied = { 'X-Forwarded-For': '203.0.113.7' }
    assert.equal((await request(local.port, '/_wsfrp/api/serverinfo', { headers: { ...proxied, ...basic('alice', 'nope') } })).status, 403)
    assert.equal((await request(local.port, '/_wsfrp/api/serverinfo', { headers: { ...proxied, ...basic('alice', 'alice-token') } })).status, 429)
    // A local request is the operator without credentials: the throttle does not lock it out.
    assert.equal((await request(local.port, '/_wsfrp/api/serverinfo')).status, 200)
  } finally {
    await own.server.close()
    await local.server.close()
  }
})

test('without credentials on loopback: only local requests (no proxy headers, a localhost Host)', { timeout: 10_000 }, async () => {
  const { server, port } = await startServer({}, memoryLogger())
  try {
    assert.equal((await request(port, '/_wsfrp/api/serverinfo')).status, 200)
    assert.equal((await request(port, '/_wsfrp/api/serverinfo', { headers: { Host: `localhost:${port}` } })).status, 200)
    const refused: Record<string, string>[] = [
      { 'X-Forwarded-For': '203.0.113.7' },
      { Forwarded: 'for=203.0.113.7' },
      { 'X-Real-IP': '203.0.113.7' },
      { Host: 'evil.example' },
      { Host: `attacker.example:${port}` },
    ]
    for (const headers of refused) {
      const r = await request(port, '/_wsfrp/api/serverinfo', { headers })
      assert.equal(r.status, 403, JSON.stringify(headers))
      assert.match(r.body, /webServer\.user/)
      assert.equal((await request(port, '/_wsfrp/metrics', { headers })).status, 403)
    }
  } finally {
    await server.close()
  }
})

test('dashboard: { enabled: false } serves nothing under the prefix', { timeout: 10_000 }, async () => {
  const server = createServer({ bindAddr: '127.0.0.1', bindPort: 0, auth: { token: TOKEN } }, { logger: memoryLogger(), dashboard: { enabled: false } })
  const { port } = await server.listen()
  try {
    for (const path of ['/_wsfrp/', '/_wsfrp/api/serverinfo', '/_wsfrp/metrics']) assert.equal((await request(port, path)).status, 404, path)
    assert.equal((await request(port, '/healthz')).status, 200)
  } finally {
    await server.close()
  }
})

test('another prefix can be chosen; a bad one is refused', { timeout: 10_000 }, async () => {
  const server = createServer({ bindAddr: '127.0.0.1', bindPort: 0, auth: { token: TOKEN } }, { logger: memoryLogger(), dashboard: { path: '/ops/frp/' } })
  const { port } = await server.listen()
  try {
    assert.equal((await request(port, '/ops/frp/')).status, 200)
    assert.equal((await getJson<{ bindPort: number }>(port, '/ops/frp/api/serverinfo')).bindPort, port)
    assert.notEqual((await request(port, '/_wsfrp/api/serverinfo')).headers['content-type'], 'application/json; charset=utf-8')
  } finally {
    await server.close()
  }
  for (const path of ['/', 'ops/', '/ops', '/a b/']) {
    assert.throws(() => createServer({ bindAddr: '127.0.0.1', bindPort: 0 }, { logger: memoryLogger(), dashboard: { path } }), (e: unknown) => isWsfrpError(e) && e.code === 'ERR_CONFIG', path)
  }
})


test('webServer.port other than bindPort: a listener of its own on webServer.addr, at / and under the prefix', { timeout: 10_000 }, async () => {
  const webPort = await freePort()
  const { server, port } = await startServer({ webServer: { addr: '127.0.0.1', port: webPort } }, memoryLogger())
  try {
    assert.deepEqual(server.dashboard.address(), { address: '127.0.0.1', port: webPort })
    assert.equal((await request(webPort, '/')).status, 200)
    assert.match((await request(webPort, '/')).body, /src="app\.js"/)
    assert.equal((await request(webPort, '/app.js')).body, DASHBOARD_SCRIPT)
    assert.equal((await getJson<{ bindPort: number }>(webPort, '/api/serverinfo')).bindPort, port)
    assert.equal((await getJson<{ bindPort: number }>(webPort, '/_wsfrp/api/serverinfo')).bindPort, port)
    assert.equal((await scrape(webPort, '/metrics')).samples.get('frp_server_client_counts'), 0)
    assert.equal((await request(webPort, '/healthz')).body, 'ok\n')
    assert.equal((await request(webPort, '/api/nope')).status, 404)
    // Not on the public port any more.
    assert.notEqual((await request(port, '/_wsfrp/api/serverinfo')).headers['content-type'], 'application/json; charset=utf-8')
    assert.equal((await request(webPort, '/api/serverinfo', { headers: { 'X-Forwarded-For': '203.0.113.7' } })).status, 403)
  } finally {
    await server.close()
  }
  assert.equal(server.dashboard.address(), undefined, 'closed with the server')
  // The port is free again.
  const again = net.createServer()
  await new Promise<void>((resolve, reject) => {
    again.once('error', reject)
    again.listen(webPort, '127.0.0.1', resolve)
  })
  await new Promise<void>((r) => again.close(() => r()))
})

test('the webServer.port listener with credentials: 401 without them, /healthz stays open', { timeout: 10_000 }, async () => {
  const webPort = await freePort()
  const { server } = await startServer({ webServer: { addr: '127.0.0.1', port: webPort, user: 'ops', password: 'pw-1' } }, memoryLogger())
  try {
    const r = await request(webPort, '/api/serverinfo')
    assert.equal(r.status, 401)
    assert.ok(r.headers['www-authenticate'])
    assert.equal((await request(webPort, '/api/serverinfo', { headers: basic('ops', 'pw-1') })).status, 200)
    assert.equal((await request(webPort, '/healthz')).status, 200)
  } finally {
    await server.close()
  }
})

test('a public webServer.addr without credentials refuses to start, and frees the main port', { timeout: 10_000 }, async () => {
  const server = createServer(
    { bindAddr: '127.0.0.1', bindPort: 0, auth: { token: TOKEN }, webServer: { addr: '0.0.0.0', port: 7500 } },
    { logger: memoryLogger() },
  )
  await assert.rejects(server.listen(), (e: unknown) => isWsfrpError(e) && e.code === 'ERR_CONFIG' && /webServer\.user/.test(e.message))
  assert.equal(server.address(), undefined)
  assert.equal(server.dashboard.address(), undefined)
  await server.close()
})
