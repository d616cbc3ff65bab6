/**
 * The "Try it in your browser" demo that wsfrps serves itself (packages/server/src/demo.ts and
 * client-web's src/demo). Each session is a generated [[auth.users]] user. First its rules, checked
 * with the browser client's `connect()` in Node (what a visitor could do with its token by hand); then the real thing in headless Chromium:
 * landing page → click → the tab publishes `demo-<id>.<subDomainHost>` → a screenshot, and Node
 * fetches that URL through the vhost.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, statSync } from 'node:fs'
import * as http from 'node:http'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { noopLogger } from '@wsfrp/core'
import { createServer, type WsfrpServer } from '@wsfrp/server'
import { connect, type ProxyStatusEvent, type StatusEvent, type WebProxy, type WsfrpClient } from '@wsfrp/client-web'
import { ROOT } from '../../src/process.js'
import { buildBundles, chromiumMissing, launchChromium, pageLog, type Bundles } from '../../src/chromium.js'

const TOKEN = 'the-real-token'
const DOMAIN = 'example.test'

interface Session {
  wsPath: string
  token: string
  user: string
  metas: Record<string, string>
  subdomain: string
  publicURL: string
  expiresAt: number
}

interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

function request(port: number, path: string, opts: { method?: string; host?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.host ? { Host: opts.host } : {}, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** Waits for server state that announces no event of its own (polled every 20 ms, bounded). */
async function waitUntil(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function newSession(port: number): Promise<Session> {
  const r = await request(port, '/_wsfrp/demo/session', { method: 'POST' })
  assert.equal(r.status, 200, r.body.toString())
  return JSON.parse(r.body.toString()) as Session
}

/** The first `proxy` event for `name`, or the client going offline for good (refused login). */
function outcome(client: WsfrpClient, name: string): Promise<{ status: string; detail: string }> {
  return new Promise((resolve) => {
    client.addEventListener('proxy', (ev) => {
      const e = ev as ProxyStatusEvent
      if (e.name === name) resolve({ status: e.status, detail: e.detail })
    })
    client.addEventListener('status', (ev) => {
      const e = ev as StatusEvent
      if (e.status === 'offline' && e.error !== undefined) resolve({ status: 'offline', detail: e.error.message })
    })
  })
}

function demoClient(port: number, s: Session, proxy: Partial<WebProxy> & { type: 'http' | 'tcp' }, over: { token?: string; user?: string } = {}): WsfrpClient {
  const handler = proxy.type === 'http' ? () => new Response('from a demo client in Node') : () => {}
  return connect({
    serverURL: `ws://127.0.0.1:${port}${s.wsPath}`,
    token: over.token ?? s.token,
    user: over.user ?? s.user,
    metas: s.metas,
    reconnect: false,
    proxies: [{ name: 'web', handler, ...proxy } as WebProxy],
  })
}

describe('browser demo: what a demo session may do', () => {
  let server: WsfrpServer
  let port = 0
  const clients: WsfrpClient[] = []
  before(async () => {
    server = createServer(
      { bindAddr: '127.0.0.1', bindPort: 0, subDomainHost: DOMAIN, auth: { token: TOKEN } },
      { logger: noopLogger, yamux: { keepAliveInterval: 0 }, demo: { maxSessions: 2, ttlSeconds: 60 } },
    )
    port = (await server.listen()).port
  })
  after(async () => {
    await Promise.all(clients.map((c) => c.close()))
    await server.close()
  })
  const track = (c: WsfrpClient): WsfrpClient => (clients.push(c), c)

  test('the landing page offers the demo; a session names its subdomain and public URL', { timeout: 10_000 }, async () => {
    const landing = await request(port, '/')
    assert.match(landing.body.toString(), /<a class="try" id="try-demo" href="\/_wsfrp\/demo\/">Try it in your browser<\/a>/)
    const page = await request(port, '/_wsfrp/demo/')
    assert.equal(page.status, 200)
    assert.match(String(page.headers['content-security-policy']), /script-src 'self'/)
    assert.match(page.body.toString(), /<script type="module" src="\/_wsfrp\/demo\/demo.js">/)
    const s = await newSession(port)
    assert.match(s.subdomain, /^demo-[0-9a-f]{10}$/)
    assert.equal(s.user, s.subdomain)
    // The server's own WebSocket path: a demo session is an ordinary (generated) user.
    assert.equal(s.wsPath, '/~!frp')
    assert.deepEqual(s.metas, {})
    assert.equal(s.publicURL, `http://${s.subdomain}.${DOMAIN}:${port}/`)
    assert.notEqual(s.token, TOKEN)
    assert.ok(s.expiresAt > Date.now() + 50_000)
    // Not on a published site's origin (whatever else answers there), and not with GET.
    const elsewhere = await request(port, '/_wsfrp/demo/', { host: `app.${DOMAIN}` })
    assert.notEqual(elsewhere.status, 200)
    assert.doesNotMatch(elsewhere.body.toString(), /demo\.js/)
    assert.equal((await request(port, '/_wsfrp/demo/session')).status, 405)
  })

  test('a session publishes its own subdomain, and nothing else', { timeout: 20_000 }, async () => {
    const s = await newSession(port)
    const ok = track(demoClient(port, s, { type: 'http', subdomain: s.subdomain }))
    assert.deepEqual(await outcome(ok, 'web'), { status: 'running', detail: `${s.subdomain}.${DOMAIN}:${port}` })
    const r = await request(port, '/', { host: `${s.subdomain}.${DOMAIN}` })
    assert.equal(r.body.toString(), 'from a demo client in Node')

    // The user's restrictions, checked by the same code as a configured user's (tenants.ts).
    const user = s.user
    const refusals: [Partial<WebProxy> & { type: 'http' | 'tcp' }, RegExp][] = [
      [{ type: 'http', subdomain: 'www' }, new RegExp(`subdomain \\[www\\].* is not allowed for user \\[${user}\\]`)],
      [{ type: 'http', subdomain: s.subdomain, customDomains: ['evil.example'] }, new RegExp(`custom domain \\[evil\\.example\\] is not allowed for user \\[${user}\\]`)],
      [{ type: 'tcp', remotePort: 0 }, new RegExp(`proxy type \\[tcp\\] is not allowed for user \\[${user}\\] \\(allowed: http\\)`)],
    ]
    for (const [i, [proxy, why]] of refusals.entries()) {
      const c = track(demoClient(port, s, { ...proxy, name: `x${i}` } as typeof proxy))
      const o = await outcome(c, `x${i}`)
      assert.equal(o.status, 'error', JSON.stringify(proxy))
      assert.match(o.detail, why)
      await c.close()
      // The refused proxy's client still counted as a session until the server saw it go.
      await waitUntil('the demo session to end', () => server.demo!.sessions === 1)
    }
    assert.deepEqual(server.proxies.proxies.map((p) => p.type), ['http'])
  })

  test('a wrong token or another session\'s token is refused; names outside demo-<id>. are refused', { timeout: 20_000 }, async () => {
    const s = await newSession(port)
    const other = await newSession(port)
    const cases: [Parameters<typeof demoClient>[3], RegExp][] = [
      [{ token: 'not-a-demo-token' }, /token/],
      // frp's `user` names the user whose token is tried: another session's token does not match.
      [{ token: other.token }, /token/],
    ]
    for (const [over, why] of cases) {
      const c = track(demoClient(port, s, { type: 'http', subdomain: s.subdomain }, over))
      const o = await outcome(c, 'web')
      assert.equal(o.status, 'offline', JSON.stringify(over))
      assert.match(o.detail, why)
      await c.close()
    }
    // Its own token under another frp user logs in, but proxy names then leave demo-<id>.
    const renamed = track(demoClient(port, s, { type: 'http', subdomain: s.subdomain }, { user: 'someone-else' }))
    const o = await outcome(renamed, 'web')
    assert.equal(o.status, 'error')
    assert.match(o.detail, new RegExp(`proxy names of user \\[${s.user}\\] must start with "${s.user}\\."`))
    await renamed.close()
    await waitUntil('the renamed client to go', () => server.demo!.sessions === 1)
  })

  test('sessions are limited in number', { timeout: 20_000 }, async () => {
    // Two are allowed (maxSessions: 2); the test above left one running.
    const s = await newSession(port)
    const second = track(demoClient(port, s, { type: 'http', subdomain: s.subdomain }))
    assert.equal((await outcome(second, 'web')).status, 'running')
    const busy = await request(port, '/_wsfrp/demo/session', { method: 'POST' })
    assert.equal(busy.status, 503)
    assert.match(busy.body.toString(), /busy/)
  })
})

describe('browser demo: sessions expire', () => {
  test('the server ends a session at its expiry and refuses its token afterwards', { timeout: 20_000 }, async () => {
    const server = createServer(
      { bindAddr: '127.0.0.1', bindPort: 0, subDomainHost: DOMAIN, auth: { token: TOKEN } },
      { logger: noopLogger, yamux: { keepAliveInterval: 0 }, demo: { ttlSeconds: 1 } },
    )
    const { port } = await server.listen()
    try {
      const s = await newSession(port)
      const c = connect({
        serverURL: `ws://127.0.0.1:${port}${s.wsPath}`,
        token: s.token,
        user: s.user,
        metas: s.metas,
        reconnect: { initialDelayMs: 10, maxDelayMs: 10 },
        proxies: [{ name: 'web', type: 'http', subdomain: s.subdomain, handler: () => new Response('x') }],
      })
      const running = outcome(c, 'web')
      const ended = new Promise<Error | undefined>((resolve) => {
        c.addEventListener('status', (ev) => {
          const e = ev as StatusEvent
          // The first offline is the server closing the session; the reconnect is then refused:
          // the generated user's token was withdrawn.
          if (e.status === 'offline' && /token/.test(e.error?.message ?? '')) resolve(e.error)
        })
      })
      assert.equal((await running).status, 'running')
      assert.match((await ended)?.message ?? '', /doesn't match token/)
      await c.close()
      assert.equal(server.demo!.sessions, 0)
    } finally {
      await server.close()
    }
  })

  test('without a subDomainHost there is no demo', { timeout: 10_000 }, async () => {
    const server = createServer({ bindAddr: '127.0.0.1', bindPort: 0, auth: { token: TOKEN } }, { logger: noopLogger, demo: true })
    const { port } = await server.listen()
    try {
      assert.doesNotMatch((await request(port, '/')).body.toString(), /try-demo/)
      const r = await request(port, '/_wsfrp/demo/session', { method: 'POST' })
      assert.notEqual(r.status, 200)
      assert.doesNotMatch(r.body.toString(), /token/)
    } finally {
      await server.close()
    }
  })
})

const skip = chromiumMissing('browser demo')

describe('browser demo in Chromium', { skip }, () => {
  let browser: Browser | undefined
  let bundles: Bundles | undefined
  let server: WsfrpServer | undefined
  before(async () => {
    bundles = await buildBundles()
    // The demo's public names resolve to this machine, so a second tab can visit the published site.
    browser = await launchChromium([`--host-resolver-rules=MAP *.${DOMAIN} 127.0.0.1`])
  })
  after(async () => {
    await browser?.close()
    await server?.close()
    bundles?.remove()
  })

  test('landing page → "Try it in your browser" → the tab serves demo-<id>; a screenshot', { timeout: 60_000 }, async () => {
    server = createServer(
      { bindAddr: '127.0.0.1', bindPort: 0, subDomainHost: DOMAIN, auth: { token: TOKEN } },
      { logger: noopLogger, demo: { bundleDir: bundles!.dir } },
    )
    const { port } = await server.listen()
    const context = await browser!.newContext({ viewport: { width: 900, height: 700 } })
    const page = await context.newPage()
    const log = pageLog(page, 'demo')
    await page.goto(`http://127.0.0.1:${port}/`)
    const dir = join(ROOT, '.test-results')
    mkdirSync(dir, { recursive: true })
    await page.screenshot({ path: join(dir, 'browser-landing.png') })
    await Promise.all([page.waitForURL(`http://127.0.0.1:${port}/_wsfrp/demo/`), page.click('#try-demo')])
    try {
      await page.waitForSelector('body[data-state="running"]', { timeout: 20_000 })
    } catch (err) {
      throw new Error(`the demo did not start: ${(err as Error).message}\n${await page.textContent('#status')}\n${log.join('\n')}`)
    }
    const url = (await page.textContent('#url'))!.trim()
    assert.match(url, new RegExp(`^http://demo-[0-9a-f]{10}\\.example\\.test:${port}/$`))
    assert.equal(await page.getAttribute('#url', 'href'), url)

    // What a visitor of that URL gets (Node, connecting to 127.0.0.1 with the demo's Host).
    const host = new URL(url).host
    const home = await request(port, '/', { host })
    assert.equal(home.status, 200)
    assert.match(String(home.headers['content-type']), /text\/html/)
    assert.match(home.body.toString(), /<h1>Hello from a browser tab<\/h1>/)
    assert.match(home.body.toString(), /Requests served by the tab so far: <b id="count">1<\/b>/)
    const count = await request(port, '/count', { host })
    assert.deepEqual(JSON.parse(count.body.toString()), { requests: 2 })
    // The SSE clock: the first event arrives while the stream stays open.
    const clock = await new Promise<string>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/clock', headers: { Host: host }, agent: false }, (res) => {
        let got = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          got += c
          const m = /data: (\d\d:\d\d:\d\d UTC)\n\n/.exec(got)
          if (m !== null) {
            resolve(m[1]!)
            req.destroy()
          }
        })
      })
      req.on('error', reject)
    })
    assert.match(clock, /^\d\d:\d\d:\d\d UTC$/)
    // The tab lists what it served.
    await page.waitForFunction(() => document.getElementById('requests')?.textContent === '3')

    const file = join(dir, 'browser-demo.png')
    await page.screenshot({ path: file, fullPage: true })
    assert.ok(statSync(file).size > 10_000, 'the screenshot has content')

    // A visitor's browser on that URL (example.test resolves to 127.0.0.1 in this Chromium): the
    // page the tab made, with the clock ticking over SSE.
    const visitor = await context.newPage()
    await visitor.goto(url)
    await visitor.waitForFunction(() => /^\d\d:\d\d:\d\d UTC$/.test(document.getElementById('clock')?.textContent ?? ''))
    assert.equal(await visitor.textContent('h1'), 'Hello from a browser tab')
    await visitor.screenshot({ path: join(dir, 'browser-demo-visitor.png') })

    // Closing the tab takes the site down.
    assert.equal(server.demo!.sessions, 1)
    await context.close()
    await waitUntil('the demo session to end', () => server!.demo!.sessions === 0)
    assert.equal((await request(port, '/', { host })).status, 404)
  })
})
