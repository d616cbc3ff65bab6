/**
 * The browser client in a real browser (Debian Chromium, headless, driven by playwright-core):
 * page mode (the tunnel in the page) and service-worker mode (the tunnel in a service worker shared
 * by every tab, handlers in the pages). A real wsfrps on 127.0.0.1:0 serves the handlers as http
 * vhosts; Node sends requests to 127.0.0.1 with the proxy's `Host:` and checks what comes back.
 *
 * Test pages: e2e/www (served with the bundles from a static server on 127.0.0.1:0, a secure
 * context for service workers). The pages keep their state on `window.t` (e2e/www/handlers.js).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createHash, randomBytes } from 'node:crypto'
import * as http from 'node:http'
import * as net from 'node:net'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { noopLogger } from '@wsfrp/core'
import { createServer, type WsfrpServer } from '@wsfrp/server'
import { WWW, buildBundles, chromiumMissing, launchChromium, pageLog, startStaticServer, type Bundles, type StaticServer } from '../../src/chromium.js'

const TOKEN = 'browser-e2e'
const DOMAIN = 'example.test'
const MiB = 1024 * 1024

const skip = chromiumMissing('browser')

interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

/** One request to wsfrps on 127.0.0.1 with `Host: host` (a fresh connection each time). */
function request(port: number, host: string, path: string, opts: { method?: string; body?: Uint8Array; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: { ...opts.headers, Host: host }, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** Waits for a condition on state that announces no event of its own (polled every 20 ms, bounded). */
async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

interface Harness {
  server: WsfrpServer
  port: number
  context: BrowserContext
  logs: string[][]
}

let browser: Browser | undefined
let bundles: Bundles | undefined
let site: StaticServer | undefined

before(async () => {
  if (skip) return
  bundles = await buildBundles()
  site = await startStaticServer([WWW, bundles.dir])
  browser = await launchChromium()
})

after(async () => {
  await browser?.close()
  await site?.close()
  bundles?.remove()
})

async function startHarness(): Promise<Harness> {
  const server = createServer(
    { bindAddr: '127.0.0.1', bindPort: 0, subDomainHost: DOMAIN, auth: { token: TOKEN } },
    { logger: noopLogger, yamux: { keepAliveInterval: 0 } },
  )
  const { port } = await server.listen()
  const context = await browser!.newContext()
  return { server, port, context, logs: [] }
}

async function stopHarness(h: Harness | undefined): Promise<void> {
  if (h === undefined) return
  await h.context.close()
  await h.server.close()
}

/** Opens a test page and waits until its handlers are published (`window.t` says so). */
async function openPage(h: Harness, file: string, params: Record<string, string>, ready: () => boolean): Promise<Page> {
  const page = await h.context.newPage()
  const log = pageLog(page, `${file} ${params.sub ?? ''}`)
  h.logs.push(log)
  const q = new URLSearchParams({ server: `ws://127.0.0.1:${h.port}`, token: TOKEN, ...params })
  await page.goto(`${site!.origin}/${file}?${q}`)
  try {
    await page.waitForFunction(ready, undefined, { timeout: 20_000 })
  } catch (err) {
    throw new Error(`${file} did not get ready: ${(err as Error).message}\npage log:\n${log.join('\n')}`)
  }
  return page
}

/** Reads a response chunk by chunk: `until(text)` resolves once the body so far ends with `text`. */
function openStream(port: number, host: string, path: string): Promise<{ res: http.IncomingMessage; received: () => string; until: (text: string) => Promise<void>; end: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { Host: host }, agent: false }, (res) => {
      let got = ''
      const waiters: { text: string; resolve: () => void }[] = []
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        got += c
        for (const w of [...waiters]) {
          if (got.endsWith(w.text)) {
            waiters.splice(waiters.indexOf(w), 1)
            w.resolve()
          }
        }
      })
      const end = once(res, 'end').then(() => undefined)
      resolve({
        res,
        received: () => got,
        until: (text) => (got.endsWith(text) ? Promise.resolve() : new Promise<void>((r) => waiters.push({ text, resolve: r }))),
        end,
      })
    })
    req.on('error', reject)
    req.end()
  })
}

/** Sends `data` to 127.0.0.1:port, half-closes, and resolves with everything that came back. */
function tcpEcho(port: number, data: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.end(data))
    const chunks: Buffer[] = []
    sock.on('data', (c: Buffer) => chunks.push(c))
    sock.on('end', () => resolve(Buffer.concat(chunks)))
    sock.on('error', reject)
  })
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/**
 * The checks both modes must pass: an http handler's answer (with the headers a browser Request
 * would drop), a streamed response seen chunk by chunk, a 10 MiB POST body hashed in the page, and
 * a tcp echo of 1 MiB.
 */
function sharedChecks(mode: 'page' | 'sw', get: () => { h: Harness; page: Page; host: string; tcpPort: () => Promise<number> }): void {
  test(`${mode} mode: an http handler answers through the vhost`, { timeout: 30_000 }, async () => {
    const { h, host } = get()
    const r = await request(h.port, host, '/hello?x=1')
    assert.equal(r.status, 200, r.body.toString())
    assert.equal(r.body.toString(), `hello from ${mode} mode: /hello?x=1`)
    assert.equal(r.headers['x-mode'], mode)
    const hd = await request(h.port, host, '/headers', { headers: { Cookie: 'a=1' } })
    const seen = JSON.parse(hd.body.toString()) as Record<string, string | null>
    // Host and Cookie are forbidden names for `new Request()` in a browser: the client restores them.
    assert.equal(seen.host, host)
    assert.equal(seen.rawHost, host)
    assert.equal(seen.cookie, 'a=1')
    assert.match(seen.forwardedFor ?? '', /127\.0\.0\.1/)
  })

  test(`${mode} mode: a streamed response arrives chunk by chunk`, { timeout: 30_000 }, async () => {
    const { h, page, host } = get()
    const s = await openStream(h.port, host, '/stream')
    assert.equal(s.res.statusCode, 200)
    await s.until('chunk-1\n')
    // Chunk 2 does not exist yet: the page is waiting for us, so chunk 1 was not held back for it.
    assert.equal(s.received(), 'chunk-1\n')
    assert.equal(await page.evaluate(() => (window as unknown as { t: { streamsWaiting: number } }).t.streamsWaiting), 1)
    assert.equal(await page.evaluate(() => (window as unknown as { t: { sendChunk2(): boolean } }).t.sendChunk2()), true)
    await s.end
    assert.equal(s.received(), 'chunk-1\nchunk-2\n')
  })

  test(`${mode} mode: a 10 MiB POST body reaches the handler intact`, { timeout: 60_000 }, async () => {
    const { h, page, host } = get()
    const data = new Uint8Array(randomBytes(10 * MiB))
    const r = await request(h.port, host, '/upload', { method: 'POST', body: data, headers: { 'Content-Type': 'application/octet-stream' } })
    assert.equal(r.status, 200, r.body.toString())
    // The page hashed what it received with crypto.subtle.digest.
    assert.deepEqual(JSON.parse(r.body.toString()), { length: data.length, sha256: sha256(data) })
    const uploads = await page.evaluate(() => (window as unknown as { t: { uploads: unknown[] } }).t.uploads)
    assert.deepEqual(uploads.at(-1), { length: data.length, sha256: sha256(data) })
  })

  test(`${mode} mode: a tcp stream handler echoes 1 MiB`, { timeout: 30_000 }, async () => {
    const { tcpPort } = get()
    const data = new Uint8Array(randomBytes(MiB))
    const back = await tcpEcho(await tcpPort(), data)
    assert.equal(back.length, data.length)
    assert.equal(sha256(back), sha256(data))
  })
}

function remotePort(detail: string | undefined): number {
  const port = Number(/:(\d+)$/.exec(detail ?? '')?.[1])
  assert.ok(port > 0, `no port in ${detail}`)
  return port
}

describe('browser client in Chromium: page mode', { skip }, () => {
  let h: Harness | undefined
  let page: Page | undefined
  before(async () => {
    h = await startHarness()
    page = await openPage(h, 'page-mode.html', { sub: 'page', tcp: '1' }, () => {
      const t = (window as unknown as { t?: { proxies: Record<string, { status: string }> } }).t
      return t?.proxies['page-web']?.status === 'running' && t.proxies['page-web-echo']?.status === 'running'
    })
  })
  after(() => stopHarness(h))

  sharedChecks('page', () => ({
    h: h!,
    page: page!,
    host: `page.${DOMAIN}`,
    tcpPort: async () => remotePort(await page!.evaluate(() => (window as unknown as { t: { proxies: Record<string, { detail: string }> } }).t.proxies['page-web-echo']?.detail)),
  }))
})

describe('browser client in Chromium: service-worker mode', { skip }, () => {
  let h: Harness | undefined
  let page: Page | undefined
  const swReady = (): boolean => (window as unknown as { t?: { ready?: boolean } }).t?.ready === true
  before(async () => {
    h = await startHarness()
    // A 1 s keep-alive, so that a stopped worker is woken (and a closed tab noticed) within a second.
    page = await openPage(h, 'sw-mode.html', { sub: 'sw', tcp: '1', keepalive: '1000' }, swReady)
  })
  after(() => stopHarness(h))

  sharedChecks('sw', () => ({
    h: h!,
    page: page!,
    host: `sw.${DOMAIN}`,
    tcpPort: async () => remotePort(await page!.evaluate(() => (window as unknown as { t: { tcpRemote: string } }).t.tcpRemote)),
  }))

  test('sw mode: every tab shares one tunnel; a closed or crashed tab loses its handler', { timeout: 60_000 }, async () => {
    const server = h!.server
    const page2 = await openPage(h!, 'sw-mode.html', { sub: 'sw2', name: 'sw2-web', keepalive: '1000' }, swReady)
    const page3 = await openPage(h!, 'sw-mode.html', { sub: 'sw3', name: 'sw3-web', keepalive: '1000' }, swReady)
    // One worker, one login, for all three tabs; each tab serves its own handler.
    assert.equal(server.role.controls.size, 1)
    const names = [...server.role.controls.values()][0]!.proxyNames
    assert.deepEqual([...names].sort(), ['sw-web', 'sw-web-echo', 'sw2-web', 'sw3-web'])
    assert.equal((await request(h!.port, `sw2.${DOMAIN}`, '/hello')).body.toString(), 'hello from sw mode: /hello')
    assert.equal((await request(h!.port, `sw3.${DOMAIN}`, '/hello')).status, 200)
    assert.equal(await page2.evaluate(() => (window as unknown as { t: { requests: number } }).t.requests), 1)
    assert.equal(await page3.evaluate(() => (window as unknown as { t: { requests: number } }).t.requests), 1)

    // A closed tab withdraws its handler on pagehide.
    await page2.close()
    await waitUntil('sw2-web to be unregistered', () => !server.proxies.proxies.some((p) => p.name === 'sw2-web'))
    assert.equal((await request(h!.port, `sw2.${DOMAIN}`, '/hello')).status, 404)
    // A crashed tab says nothing: the worker notices at a keep-alive that the page is gone.
    const cdp3 = await h!.context.newCDPSession(page3)
    const crashed = page3.waitForEvent('crash')
    void cdp3.send('Page.crash').catch(() => {})
    await crashed
    await waitUntil('sw3-web to be unregistered', () => !server.proxies.proxies.some((p) => p.name === 'sw3-web'))
    assert.equal((await request(h!.port, `sw3.${DOMAIN}`, '/hello')).status, 404)
    await page3.close()
    // The first tab still serves, over the same login.
    assert.equal((await request(h!.port, `sw.${DOMAIN}`, '/hello')).status, 200)
    assert.equal(server.role.controls.size, 1)
  })

  test('sw mode: a stopped worker is started again and brings the tunnel back', { timeout: 60_000 }, async () => {
    const server = h!.server
    const p = page!
    const before = await p.evaluate(() => (window as unknown as { t: { tunnel: { instance: string } } }).t.tunnel.instance)
    assert.equal((await request(h!.port, `sw.${DOMAIN}`, '/hello')).status, 200)
    const logout = once(server, 'logout')
    const login = once(server, 'login')
    // What Chromium does to an idle worker after 30 s, now: the worker and its WebSocket are gone.
    const cdp = await h!.context.newCDPSession(p)
    await cdp.send('ServiceWorker.enable')
    await cdp.send('ServiceWorker.stopAllWorkers')
    await logout
    assert.equal(server.role.controls.size, 0)
    // The page's next keep-alive starts a new worker instance; it logs in and the page registers again.
    await login
    await p.waitForFunction(
      (old) => {
        const t = (window as unknown as { t: { tunnel: { instance: string }; proxies: Record<string, { status: string; instance: string }> } }).t
        const i = t.tunnel.instance
        return i !== old && t.proxies['sw-web']?.status === 'running' && t.proxies['sw-web'].instance === i
      },
      before,
      { timeout: 20_000 },
    )
    const r = await request(h!.port, `sw.${DOMAIN}`, '/hello?again')
    assert.equal(r.status, 200, r.body.toString())
    assert.equal(r.body.toString(), 'hello from sw mode: /hello?again')
    await cdp.detach()
  })
})
