/**
 * "Try it in your browser": a demo that wsfrps serves itself. The landing page links to
 * `/_wsfrp/demo/`, a page whose script (client-web's `wsfrp-demo.js`) asks for a demo session,
 * starts the browser client in the page and publishes a small handler at
 * `demo-<id>.<subDomainHost>`.
 *
 * A demo session is an ordinary user of `[[auth.users]]`, generated for it: name `demo-<id>`, a
 * random token only that visitor receives, `allowTypes = ["http"]`, `subdomains = ["demo-<id>"]`,
 * `domains = []`, `maxProxies` = {@link MAX_PROXIES_PER_SESSION}, plus two rules generated users
 * get (proxy names under `demo-<id>.`, no load-balancing groups). The client logs in on the
 * server's own WebSocket path with that token, and every NewProxy goes through the same tenant
 * checks (tenants.ts) as a configured user's. The session ends after `ttlSeconds`, or when no
 * client of it has been logged in for {@link IDLE_MS}: then the user's token is withdrawn and its
 * clients are closed.
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type * as http from 'node:http'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { plainAddress, type AuthUser, type ControlHandle, type FrpServerRole, type Logger, type ServerConfig } from '@wsfrp/core'
import { safeHost } from './landing.js'
import type { Tenants } from './tenants.js'

/** Where the demo lives on the server's own port (under the prefix the vhost never routes). */
export const DEMO_PATH = '/_wsfrp/demo/'
/** Proxies one demo session may hold (the demo page uses one): the generated user's `maxProxies`. */
export const MAX_PROXIES_PER_SESSION = 2
/**
 * A demo session none of whose clients is logged in for this long ends (a session asked for and
 * never used, or a tab closed): its token is withdrawn.
 */
export const IDLE_MS = 30_000

/** Options of the demo (`createServer(config, { demo: true | DemoOptions })`). */
export interface DemoOptions {
  /** Demo sessions with a logged-in client at once. Default 20. Sessions waiting for their first login are held to twice that. */
  maxSessions?: number
  /** How long one demo session lasts, in seconds. Default 600. */
  ttlSeconds?: number
  /**
   * A directory holding `wsfrp-demo.js` (client-web's build output). Default: `dist-bundle` of the
   * installed `@wsfrp/client-web`; in a source checkout without that build, the script is bundled
   * on first use with esbuild (a dev dependency).
   */
  bundleDir?: string
}

/** What `POST /_wsfrp/demo/session` answers (client-web's src/demo/main.ts reads the same shape). */
export interface DemoSession {
  /** The server's own WebSocket path (`/~!frp`). */
  wsPath: string
  /** The generated user's token: this session's alone. */
  token: string
  /** The generated user's name, `demo-<id>`, also the frp `user` (proxy names become `demo-<id>.<name>`). */
  user: string
  /** Always `{}` (kept for the client's shape). */
  metas: Record<string, string>
  subdomain: string
  publicURL: string
  expiresAt: number
}

/** What the demo needs from the server. */
export interface DemoHost {
  config: ServerConfig
  /** The server's session role: generated users' tokens are added to it and withdrawn from it. */
  role: Pick<FrpServerRole, 'addUser' | 'removeUser' | 'controls'>
  /** The server's users: generated ones are added here, with the same checks as configured ones. */
  tenants: Pick<Tenants, 'add' | 'remove'>
  /** The server: its `login` and `logout` events tell when a session's clients come and go. */
  events: {
    on(event: 'login' | 'logout', listener: (control: ControlHandle) => void): unknown
    off(event: 'login' | 'logout', listener: (control: ControlHandle) => void): unknown
  }
  /** The WebSocket path clients dial (the server's first one, `/~!frp`). */
  wsPath: string
  log: Logger
  /** True when the server's own port speaks TLS. */
  secure: () => boolean
}

/** One issued demo session (one generated user). */
interface Session {
  readonly name: string
  readonly expiresAt: number
  readonly expiry: NodeJS.Timeout
  /** Runs while no client of the session is logged in. */
  idle: NodeJS.Timeout | undefined
}

function pathOf(url: string | undefined): string {
  return (url ?? '/').split('?')[0] ?? '/'
}

function plainIp(addr: string | undefined): string {
  if (addr === undefined) return 'unknown'
  return plainAddress(addr)
}

/** The demo page: markup only; the script (`demo.js`) fills in #status, #url, #requests, #expires, #log. */
function renderDemoPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wsfrp: a web server in this tab</title>
<style>
body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}
#url{font-family:ui-monospace,monospace;font-size:1.15rem;word-break:break-all}
.box{border:1px solid #ccc;border-radius:6px;padding:.75rem 1rem;margin:1rem 0;background:#fafafa}
body[data-state=running] .box{border-color:#2a7;background:#f2fbf6}
body[data-state=failed] .box,body[data-state=ended] .box{border-color:#c44;background:#fdf3f3}
#log{font-family:ui-monospace,monospace;font-size:.85rem;color:#555}
small{color:#666}
</style>
</head>
<body data-state="loading">
<h1>A web server in this tab</h1>
<p>This page runs the wsfrp browser client: it logs in to this server over one WebSocket and publishes a
small JavaScript handler as a public site. Nothing is installed; closing the tab takes the site down.</p>
<div class="box">
<p id="status">Loading…</p>
<p><a id="url" href="#"></a></p>
</div>
<p>Requests served: <b id="requests">0</b> · session ends in <span id="expires">–</span></p>
<ol id="log" reversed></ol>
<p><small>The published site has a page that counts its requests and a clock streamed with server-sent events.
<a href="/">Back to the server's page</a></small></p>
<script type="module" src="${DEMO_PATH}demo.js"></script>
</body>
</html>
`
}

/**
 * The demo: an HTTP handler for `/_wsfrp/demo/…` that issues sessions (generated users), and their
 * life cycle. Wired into the server by `createServer(config, { demo })`.
 */
export class Demo {
  /** False without a subDomainHost (the demo's site needs one): then the demo stays off. */
  readonly enabled: boolean
  private readonly host: DemoHost
  private readonly log: Logger
  private readonly maxSessions: number
  private readonly ttlMs: number
  private readonly bundleDir: string | undefined
  private bundle: Promise<Buffer> | undefined
  private readonly live = new Map<string, Session>()
  private readonly onLogin = (c: ControlHandle): void => this.loggedIn(c)
  private readonly onLogout = (c: ControlHandle): void => this.loggedOut(c)
  private closed = false

  constructor(host: DemoHost, opts: DemoOptions = {}) {
    this.host = host
    this.log = host.log.child('[demo]')
    this.enabled = host.config.subDomainHost !== ''
    this.maxSessions = opts.maxSessions ?? 20
    this.ttlMs = (opts.ttlSeconds ?? 600) * 1000
    this.bundleDir = opts.bundleDir
    if (!this.enabled) this.log.warn('the browser demo needs subDomainHost: it stays off')
    host.events.on('login', this.onLogin)
    host.events.on('logout', this.onLogout)
  }

  /** Logged-in demo clients. */
  get sessions(): number {
    return this.clientsOf(undefined).length
  }

  /** Serves `/_wsfrp/demo/…`; false for any other path (or when the demo is off). */
  handleRequest(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const path = pathOf(req.url)
    if (!this.enabled || !(path === DEMO_PATH.slice(0, -1) || path.startsWith(DEMO_PATH))) return false
    const sub = path.slice(DEMO_PATH.length)
    const method = req.method ?? 'GET'
    if (path === DEMO_PATH.slice(0, -1)) {
      res.writeHead(301, { Location: DEMO_PATH })
      res.end()
    } else if (sub === '' && (method === 'GET' || method === 'HEAD')) {
      this.sendPage(req, res)
    } else if (sub === 'demo.js' && (method === 'GET' || method === 'HEAD')) {
      this.sendScript(req, res)
    } else if (sub === 'session' && method === 'POST') {
      this.sendSession(req, res)
    } else {
      const known = sub === '' || sub === 'demo.js' || sub === 'session'
      res.writeHead(known ? 405 : 404, { 'Content-Type': 'text/plain; charset=utf-8', ...(known ? { Allow: sub === 'session' ? 'POST' : 'GET, HEAD' } : {}) })
      res.end(known ? 'method not allowed\n' : 'not found\n')
    }
    // The request body (if any) is not wanted.
    req.resume()
    return true
  }

  /** Ends every session (the server is closing). */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true
      this.host.events.off('login', this.onLogin)
      this.host.events.off('logout', this.onLogout)
      for (const name of [...this.live.keys()]) this.end(name, 'the server is shutting down')
    }
    return Promise.resolve()
  }

  // --- sessions ---------------------------------------------------------------------------------

  /** Logged-in clients of session `name`, or of every demo session. */
  private clientsOf(name: string | undefined): ControlHandle[] {
    return [...this.host.role.controls.values()].filter((c) => c.tenant !== undefined && (name === undefined ? this.live.has(c.tenant) : c.tenant === name))
  }

  /** Sessions with at least one logged-in client. */
  private activeSessions(): number {
    return new Set(this.clientsOf(undefined).map((c) => c.tenant)).size
  }

  /** Generates the user of a new session and gives its token to the role; undefined when busy. */
  private issue(): { name: string; token: string; expiresAt: number } | undefined {
    const active = this.activeSessions()
    if (active >= this.maxSessions || this.live.size - active >= this.maxSessions * 2) return undefined
    let name: string
    do name = `demo-${randomBytes(5).toString('hex')}`
    while (this.live.has(name))
    const token = randomBytes(24).toString('base64url')
    const user: AuthUser = {
      name,
      token,
      allowTypes: ['http'],
      allowPorts: [],
      subdomains: [name],
      domains: [],
      maxProxies: MAX_PROXIES_PER_SESSION,
      maxConnections: 0,
    }
    this.host.tenants.add(user, { proxyNamePrefix: `${name}.`, noGroups: true })
    this.host.role.addUser({ name, token })
    const expiresAt = Date.now() + this.ttlMs
    const expiry = setTimeout(() => this.end(name, 'the demo session has expired'), this.ttlMs)
    expiry.unref()
    const session: Session = { name, expiresAt, expiry, idle: undefined }
    this.live.set(name, session)
    this.startIdle(session)
    return { name, token, expiresAt }
  }

  private startIdle(s: Session): void {
    clearTimeout(s.idle)
    s.idle = setTimeout(() => this.end(s.name, 'no client of the demo session is logged in'), IDLE_MS)
    s.idle.unref()
  }

  private loggedIn(c: ControlHandle): void {
    const s = c.tenant === undefined ? undefined : this.live.get(c.tenant)
    if (s === undefined) return
    clearTimeout(s.idle)
    s.idle = undefined
    // Sessions issued while others were idle may all log in: the limit holds at login too.
    if (this.clientsOf(s.name).length === 1 && this.activeSessions() > this.maxSessions) c.close('the demo is busy')
  }

  private loggedOut(c: ControlHandle): void {
    const s = c.tenant === undefined ? undefined : this.live.get(c.tenant)
    // Whether or not the control has left role.controls yet, it does not count as logged in.
    if (s !== undefined && this.clientsOf(s.name).every((x) => x === c)) this.startIdle(s)
  }

  /** Withdraws a session's token, closes its clients (their proxies go), then forgets its user. */
  private end(name: string, reason: string): void {
    const s = this.live.get(name)
    if (s === undefined) return
    this.live.delete(name)
    clearTimeout(s.expiry)
    clearTimeout(s.idle)
    this.host.role.removeUser(name)
    // Closed while the user is still known, so that its proxies are unregistered through the same
    // tenant wrapper that registered them.
    for (const c of this.clientsOf(name)) c.close(reason)
    this.host.tenants.remove(name)
    this.log.info('demo session ended', { user: name, reason })
  }

  // --- HTTP -------------------------------------------------------------------------------------

  private sendPage(req: http.IncomingMessage, res: http.ServerResponse): void {
    const body = renderDemoPage()
    const host = safeHost(req.headers.host)
    // The script talks to this origin only: fetch for the session, the WebSocket for the tunnel.
    const ws = host !== undefined ? ` ws://${host} wss://${host}` : ''
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': `default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'${ws}; base-uri 'none'; form-action 'none'`,
      'Content-Length': Buffer.byteLength(body),
    })
    res.end(req.method === 'HEAD' ? undefined : body)
  }

  private sendScript(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.loadBundle().then(
      (js) => {
        res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff', 'Content-Length': js.length })
        res.end(req.method === 'HEAD' ? undefined : js)
      },
      (err: Error) => {
        this.log.error('the demo script is unavailable', { error: err.message })
        res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' })
        res.end('the demo script is unavailable on this server (see its log)\n')
      },
    )
  }

  private sendSession(req: http.IncomingMessage, res: http.ServerResponse): void {
    const json = (status: number, value: unknown): void => {
      const body = JSON.stringify(value)
      res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) })
      res.end(body)
    }
    const issued = this.closed ? undefined : this.issue()
    if (issued === undefined) {
      json(503, { error: 'the demo is busy: try again in a few minutes' })
      return
    }
    const session: DemoSession = {
      wsPath: this.host.wsPath,
      token: issued.token,
      user: issued.name,
      metas: {},
      subdomain: issued.name,
      publicURL: this.publicURL(req, issued.name),
      expiresAt: issued.expiresAt,
    }
    this.log.info('demo session issued', { user: issued.name, remote: plainIp(req.socket.remoteAddress) })
    json(200, session)
  }

  /** `http(s)://demo-<id>.<subDomainHost>[:port]/` as a visitor reaches the vhost. */
  private publicURL(req: http.IncomingMessage, sub: string): string {
    const cfg = this.host.config
    const name = `${sub}.${cfg.subDomainHost}`
    if (cfg.vhostHTTPPort !== cfg.bindPort) return `http://${name}:${cfg.vhostHTTPPort}/`
    // The vhost shares this listener: the visitor reaches it as they reached this page.
    const forwarded = String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]?.trim()
    const https = this.host.secure() || forwarded === 'https'
    const port = /:(\d+)$/.exec(safeHost(req.headers.host) ?? '')?.[1]
    const dflt = https ? '443' : '80'
    return `${https ? 'https' : 'http'}://${name}${port !== undefined && port !== dflt ? `:${port}` : ''}/`
  }

  private loadBundle(): Promise<Buffer> {
    this.bundle ??= (async () => {
      const dir = this.bundleDir ?? clientWebDir('dist-bundle')
      if (dir !== undefined) {
        try {
          return await readFile(join(dir, 'wsfrp-demo.js'))
        } catch (err) {
          if (this.bundleDir !== undefined) throw err
        }
      }
      return await buildWithEsbuild()
    })()
    // A failure is not cached: the next request tries again (e.g. after the bundle was built).
    this.bundle.catch(() => (this.bundle = undefined))
    return this.bundle
  }
}

/** A directory of the installed @wsfrp/client-web package, or undefined when it is not installed. */
function clientWebDir(sub: string): string | undefined {
  try {
    // `…/client-web/src/index.ts` or `…/client-web/dist/index.js`: the package root is two up.
    return join(dirname(dirname(fileURLToPath(import.meta.resolve('@wsfrp/client-web')))), sub)
  } catch {
    return undefined
  }
}

/** Bundles client-web's demo script in memory (a source checkout without `build.mjs` output). */
async function buildWithEsbuild(): Promise<Buffer> {
  const src = clientWebDir('src/demo/main.ts')
  if (src === undefined) throw new Error('@wsfrp/client-web is not installed')
  // Not a dependency of the server: present in a development checkout only.
  const name = 'esbuild'
  let esbuild: { build(o: Record<string, unknown>): Promise<{ outputFiles?: { contents: Uint8Array }[] }> }
  try {
    esbuild = (await import(name)) as typeof esbuild
  } catch {
    throw new Error('wsfrp-demo.js is not built (node packages/client-web/scripts/build.mjs) and esbuild is not installed')
  }
  const out = await esbuild.build({
    entryPoints: [src],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    conditions: ['wsfrp-source'],
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
  })
  const file = out.outputFiles?.[0]
  if (file === undefined) throw new Error('esbuild produced no demo script')
  return Buffer.from(file.contents)
}
