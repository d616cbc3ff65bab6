/**
 * "Try it in your browser": a demo that wsfrps serves itself. The landing page links to
 * `/_wsfrp/demo/`, a page whose script (client-web's `wsfrp-demo.js`) asks for a demo session,
 * starts the browser client in the page and publishes a small handler at
 * `demo-<id>.<subDomainHost>`.
 *
 * Demo clients never touch the server's own token. They log in over their own WebSocket path with
 * their own frp role and token, which every visitor gets and which is therefore no secret; what
 * limits them is a signed ticket per session (login metadata `demo_ticket`, HMAC-SHA256 with a
 * per-process key) and checks on every NewProxy:
 *
 * - only `type = "http"`, only `subdomain = "demo-<id>"` of the ticket, no customDomains, no
 *   load-balancing group, proxy names under the ticket's frp user (`demo-<id>.…`), at most
 *   {@link MAX_PROXIES_PER_SESSION} proxies;
 * - at most `maxSessions` demo clients at once; each session ends after `ttlSeconds`.
 *
 * Demo proxies are registered in the server's own proxy router (so names and routes stay unique,
 * and the vhost serves them); demo clients are not in `server.role.controls`.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type * as http from 'node:http'
import { dirname, join } from 'node:path'
import type { Duplex } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { FrpServerRole, type ControlHandle, type Logger, type Login, type ProxyManager, type ServerConfig } from '@wsfrp/core'
import { acceptWs, createWsServer, nodeCrypto } from '@wsfrp/node'
import { safeHost } from './landing.js'

/** Where the demo lives on the server's own port (under the prefix the vhost never routes). */
export const DEMO_PATH = '/_wsfrp/demo/'
const WS_PATH = `${DEMO_PATH}ws`
/** Proxies one demo session may hold (the demo page uses one). */
export const MAX_PROXIES_PER_SESSION = 2
/** A demo WebSocket that opened no login within this many ms is closed. */
const LOGIN_DEADLINE_MS = 10_000

/** Options of the demo (`createServer(config, { demo: true | DemoOptions })`). */
export interface DemoOptions {
  /** frp token of demo logins. Every visitor gets it: it is not a secret. Default: random per process. */
  token?: string
  /** Demo clients logged in at once. Default 20. */
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
  wsPath: string
  token: string
  user: string
  metas: Record<string, string>
  subdomain: string
  publicURL: string
  expiresAt: number
}

/** What the demo needs from the server. */
export interface DemoHost {
  config: ServerConfig
  /** The server's proxy router (wrapped by the demo's restrictions). */
  proxies: ProxyManager
  log: Logger
  /** True when the server's own port speaks TLS. */
  secure: () => boolean
  /** Overrides for the demo sessions' yamux. */
  yamux?: ConstructorParameters<typeof FrpServerRole>[0]['yamux']
}

interface Ticket {
  id: string
  expiresAt: number
}

function pathOf(url: string | undefined): string {
  return (url ?? '/').split('?')[0] ?? '/'
}

function plainIp(addr: string | undefined): string {
  if (addr === undefined) return 'unknown'
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr
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
 * The demo: an HTTP handler for `/_wsfrp/demo/…`, an upgrade handler for its WebSocket, and its own
 * frp role. Wired into the server by `createServer(config, { demo })`.
 */
export class Demo {
  /** False without a subDomainHost (the demo's site needs one): then the demo stays off. */
  readonly enabled: boolean
  readonly role: FrpServerRole
  private readonly host: DemoHost
  private readonly log: Logger
  private readonly token: string
  private readonly key = randomBytes(32)
  private readonly maxSessions: number
  private readonly ttlMs: number
  private readonly bundleDir: string | undefined
  private bundle: Promise<Buffer> | undefined
  private readonly wss = createWsServer()
  private readonly sockets = new Set<Duplex>()
  private readonly expiry = new Map<string, NodeJS.Timeout>()
  private closing: Promise<void> | undefined

  constructor(host: DemoHost, opts: DemoOptions = {}) {
    this.host = host
    this.log = host.log.child('[demo]')
    this.enabled = host.config.subDomainHost !== ''
    this.token = opts.token ?? randomBytes(12).toString('hex')
    this.maxSessions = opts.maxSessions ?? 20
    this.ttlMs = (opts.ttlSeconds ?? 600) * 1000
    this.bundleDir = opts.bundleDir
    if (!this.enabled) this.log.warn('the browser demo needs subDomainHost: it stays off')
    this.role = new FrpServerRole({
      token: this.token,
      crypto: nodeCrypto,
      proxies: this.restrict(host.proxies),
      maxPoolCount: 2,
      userConnTimeoutMs: host.config.userConnTimeout * 1000,
      authorizeLogin: (login) => this.authorize(login),
      logger: this.log,
      yamux: { keepAliveInterval: host.config.transport.tcpMuxKeepaliveInterval * 1000, ...host.yamux },
      onControl: (event, control) => this.onControl(event, control),
    })
  }

  /** Logged-in demo clients. */
  get sessions(): number {
    return this.role.controls.size
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

  /** Takes the demo's WebSocket upgrades; false for any other path. */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (!this.enabled || pathOf(req.url) !== WS_PATH) return false
    socket.on('error', (err) => this.log.debug('demo socket error', { error: err.message }))
    // Transports beyond twice the session limit are refused before the handshake: logins would be anyway.
    if (this.closing !== undefined || this.sockets.size >= this.maxSessions * 2) {
      const status = this.closing !== undefined ? '503 Service Unavailable' : '503 Too Many Demo Connections'
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
      return true
    }
    const remoteAddress = `${plainIp(req.socket.remoteAddress)}:${req.socket.remotePort ?? 0}`
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
    acceptWs(this.wss, req, socket, head).then(
      (conn) => {
        if (this.closing !== undefined) {
          conn.destroy()
          return
        }
        const session = this.role.handleTransport(conn, { remoteAddress })
        const timer = setTimeout(() => {
          if (![...this.role.controls.values()].some((c) => c.remoteAddress === remoteAddress)) session.close()
        }, LOGIN_DEADLINE_MS)
        timer.unref()
        void session.closed.then(() => clearTimeout(timer))
      },
      (err: Error) => this.log.debug('demo WebSocket handshake refused', { error: err.message }),
    )
    return true
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const t of this.expiry.values()) clearTimeout(t)
      this.expiry.clear()
      await this.role.close()
      for (const s of this.sockets) s.destroy()
      this.wss.close()
    })()
    return this.closing
  }

  // --- tickets ----------------------------------------------------------------------------------

  private sign(id: string, expiresAt: number): string {
    return createHmac('sha256', this.key).update(`${id}.${expiresAt}`).digest('base64url')
  }

  private issue(): { ticket: string; t: Ticket } {
    const t = { id: randomBytes(5).toString('hex'), expiresAt: Date.now() + this.ttlMs }
    return { ticket: `${t.id}.${t.expiresAt}.${this.sign(t.id, t.expiresAt)}`, t }
  }

  /** The ticket of a login, if its signature holds (expiry is checked by the caller). */
  private ticketOf(login: Login): Ticket | undefined {
    const raw = login.metas?.demo_ticket
    const m = typeof raw === 'string' ? /^([0-9a-f]{10})\.(\d{1,15})\.([A-Za-z0-9_-]{43})$/.exec(raw) : null
    if (m === null) return undefined
    const [, id, exp, sig] = m as unknown as [string, string, string, string]
    const want = Buffer.from(this.sign(id, Number(exp)))
    const got = Buffer.from(sig)
    if (want.length !== got.length || !timingSafeEqual(want, got)) return undefined
    return { id, expiresAt: Number(exp) }
  }

  private authorize(login: Login): string | undefined {
    const t = this.ticketOf(login)
    if (t === undefined) return 'this endpoint only takes demo sessions (POST /_wsfrp/demo/session)'
    if (Date.now() >= t.expiresAt) return 'the demo session has expired'
    if (login.user !== `demo-${t.id}`) return `a demo session logs in as user demo-${t.id}`
    // A reconnect with its run id replaces its old control; anything else counts against the limit.
    const others = [...this.role.controls.values()].filter((c) => c.runId !== login.run_id).length
    if (others >= this.maxSessions) return 'the demo is busy: try again in a few minutes'
    return undefined
  }

  private onControl(event: 'login' | 'logout', control: ControlHandle): void {
    if (event === 'logout') {
      clearTimeout(this.expiry.get(control.runId))
      this.expiry.delete(control.runId)
      return
    }
    const t = this.ticketOf(control.login)
    if (t === undefined) return
    clearTimeout(this.expiry.get(control.runId))
    const timer = setTimeout(() => control.close('the demo session has expired'), Math.max(0, t.expiresAt - Date.now()))
    timer.unref()
    this.expiry.set(control.runId, timer)
  }

  /** The server's proxy manager, behind the demo's rules. */
  private restrict(inner: ProxyManager): ProxyManager {
    return {
      register: async (proxy, control) => {
        const t = this.ticketOf(control.login)
        if (t === undefined) throw new Error('not a demo session')
        const sub = `demo-${t.id}`
        if ((proxy.proxy_type ?? 'tcp') !== 'http') throw new Error('demo sessions may only publish http proxies')
        if (proxy.subdomain !== sub) throw new Error(`demo sessions may only use subdomain = "${sub}"`)
        if ((proxy.custom_domains ?? []).length > 0) throw new Error('demo sessions may not use customDomains')
        if (proxy.group) throw new Error('demo sessions may not use load-balancing groups')
        if (!proxy.proxy_name.startsWith(`${sub}.`)) throw new Error(`demo proxy names must start with "${sub}." (frp user ${sub})`)
        // proxyNames already holds this proxy while it registers.
        if (control.proxyNames.size > MAX_PROXIES_PER_SESSION) throw new Error(`a demo session may hold ${MAX_PROXIES_PER_SESSION} proxies`)
        return inner.register(proxy, control)
      },
      unregister: (name, control) => inner.unregister(name, control),
    }
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
    if (this.role.controls.size >= this.maxSessions) {
      json(503, { error: 'the demo is busy: try again in a few minutes' })
      return
    }
    const { ticket, t } = this.issue()
    const sub = `demo-${t.id}`
    const session: DemoSession = {
      wsPath: WS_PATH,
      token: this.token,
      user: sub,
      metas: { demo_ticket: ticket },
      subdomain: sub,
      publicURL: this.publicURL(req, sub),
      expiresAt: t.expiresAt,
    }
    this.log.info('demo session issued', { id: t.id, remote: plainIp(req.socket.remoteAddress) })
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
