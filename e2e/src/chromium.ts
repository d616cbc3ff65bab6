/**
 * Headless Chromium for the browser suites (e2e/test/browser) and `npm run bench -- web`: Debian's
 * /usr/bin/chromium driven by playwright-core (never `npx playwright install`: it downloads from
 * outside the reachable registries), the client-web bundles built into a temp dir, and a tiny
 * static server on 127.0.0.1:0 for the test pages in e2e/www. 127.0.0.1 is a secure context, so
 * service workers register on plain http.
 */
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { extname, join, normalize, sep } from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { ROOT } from './process.js'

export const CHROMIUM_PATH = process.env.WSFRP_CHROMIUM ?? '/usr/bin/chromium'

/**
 * The flags that work on these machines (.library/env/machines/node.md): without the background
 * networking ones Chromium keeps dialing Google hosts that the closed network refuses. Playwright
 * gives every launch a fresh profile dir of its own.
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** The static test pages (e2e/www). */
export const WWW = join(ROOT, 'e2e/www')

/**
 * Why the browser suite cannot run, or false. Without Chromium a suite is skipped loudly on a
 * developer machine (scripts/install-test-deps.sh installs it) and fails in CI (CI set), where a
 * skip would hide a gap.
 */
export function chromiumMissing(suite: string): string | false {
  const ok = existsSync(CHROMIUM_PATH) && spawnSync(CHROMIUM_PATH, ['--version'], { stdio: 'ignore' }).status === 0
  if (ok) return false
  const msg = `${CHROMIUM_PATH} missing: run \`bash scripts/install-test-deps.sh\` (chromium)`
  if (process.env.CI) throw new Error(`${msg}; CI must run the ${suite} suite`)
  console.warn(`SKIPPING ${suite} tests: ${msg}`)
  return msg
}

/** Launches headless Chromium with {@link CHROMIUM_ARGS} plus `extraArgs`. */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs], chromiumSandbox: false })
}

/**
 * Collects a page's console output and uncaught errors, so that a failing test can say what the page
 * saw; echoed live with WSFRP_BROWSER_LOG=1.
 */
export function pageLog(page: Page, label: string): string[] {
  const lines: string[] = []
  const add = (line: string): void => {
    lines.push(line)
    if (process.env.WSFRP_BROWSER_LOG) console.log(`[${label}] ${line}`)
  }
  page.on('console', (m) => add(`${m.type()}: ${m.text()}`))
  page.on('pageerror', (e) => add(`pageerror: ${e.message}`))
  return lines
}

/** Also the service workers of a context (their console is not a page's). */
export function workerLog(context: BrowserContext, lines: string[]): void {
  context.on('serviceworker', (w) => {
    lines.push(`serviceworker started: ${w.url()}`)
  })
}

export interface Bundles {
  dir: string
  /** Sizes in bytes by file name (wsfrp.js, wsfrp-sw.js, wsfrp-page.js, wsfrp-demo.js). */
  sizes: Record<string, number>
  remove(): void
}

/**
 * Builds the client-web browser bundles into a temp dir with the package's own build script. It
 * exits 1 while the service-worker bundle is over its size budget (tracked elsewhere); here only a
 * build error, or a missing file, fails.
 */
export async function buildBundles(): Promise<Bundles> {
  const dir = mkdtempSync(join(tmpdir(), 'wsfrp-browser-'))
  const script = join(ROOT, 'packages/client-web/scripts/build.mjs')
  const child = spawn(process.execPath, [script, '--outdir', dir], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr.on('data', (c: Buffer) => (out += c.toString()))
  const [code] = (await once(child, 'close')) as [number | null]
  const sizes: Record<string, number> = {}
  for (const f of ['wsfrp.js', 'wsfrp-sw.js', 'wsfrp-page.js', 'wsfrp-demo.js']) {
    const p = join(dir, f)
    if (!existsSync(p)) {
      rmSync(dir, { recursive: true, force: true })
      throw new Error(`the bundle build did not produce ${f} (exit ${code}):\n${out}`)
    }
    sizes[f] = statSync(p).size
  }
  if (code !== 0 && !/EXCEEDED/.test(out)) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`the bundle build failed (exit ${code}):\n${out}`)
  }
  return { dir, sizes, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
}

export interface StaticServer {
  /** `http://127.0.0.1:PORT`: the pages' origin. */
  readonly origin: string
  readonly port: number
  close(): Promise<void>
}

/**
 * Serves files from `dirs` (first match wins) on 127.0.0.1:0, GET and HEAD only, never outside those
 * dirs, with `Cache-Control: no-store` so that a restarted service worker fetches its script again.
 */
export async function startStaticServer(dirs: string[]): Promise<StaticServer> {
  const server = http.createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!)
    const rel = normalize(path === '/' ? '/index.html' : path).replace(/^[/\\]+/, '')
    let file: string | undefined
    for (const d of dirs) {
      const p = join(d, rel)
      if (p.startsWith(d + sep) && existsSync(p) && statSync(p).isFile()) {
        file = p
        break
      }
    }
    if ((req.method !== 'GET' && req.method !== 'HEAD') || file === undefined) {
      res.writeHead(file === undefined ? 404 : 405, { 'Content-Type': 'text/plain' })
      res.end(file === undefined ? 'not found\n' : 'method not allowed\n')
      return
    }
    const body = readFileSync(file)
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Length': body.length, 'Cache-Control': 'no-store' })
    res.end(req.method === 'HEAD' ? undefined : body)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
