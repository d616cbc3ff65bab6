/**
 * The server's observe surfaces: the dashboard page, the REST API (../api.ts), Prometheus `/metrics`
 * (../metrics.ts), served either under a prefix of the server's own port (default `/_wsfrp/`) or on
 * a listener of their own (`webServer.port`), and only to whom the exposure rule allows (./auth.ts,
 * docs/DASHBOARD.md).
 *
 * | path (under the prefix, or under `/` on the own listener) | answer |
 * |---|---|
 * | `` (the prefix itself) | the dashboard page |
 * | `app.js` | its script |
 * | `api/…` | the REST API |
 * | `metrics` | Prometheus text format |
 * | `healthz` | `200 ok` (own listener: without auth, like frps) |
 */
import { createHash } from 'node:crypto'
import * as http from 'node:http'
import { isIP } from 'node:net'
import type { Registry } from 'prom-client'
import { LoginThrottle, WsfrpError } from '@wsfrp/core'
import { handleApi, sendJson } from '../api.js'
import type { ServerAddress, WsfrpServer } from '../server.js'
import { VERSION } from '../version.js'
import { BASIC_CHALLENGE, BasicAuth, decideExposure, notLocalReason, parseBasic, type Exposure } from './auth.js'
import { PAGE_CSP, renderDashboardPage } from './page.js'
import { DASHBOARD_SCRIPT } from './ui-bundle.js'

export { decideExposure, isLoopbackAddress, isLoopbackHost, notLocalReason, parseBasic, BasicAuth, type Exposure, type ExposureInput } from './auth.js'
export { renderDashboardPage } from './page.js'

/** Options of the observe surfaces (`createServer(config, { dashboard })`). */
export interface DashboardOptions {
  /**
   * Where they live on the server's own port: starts and ends with `/`. Default `"/_wsfrp/"` (a
   * prefix no vhost site or frp path is likely to use). Ignored on the `webServer.port` listener,
   * which serves them at `/` (and under this prefix too).
   */
  path?: string
  /** False: never serve them, whatever the config says. Default true (the exposure rule decides). */
  enabled?: boolean
}

const DEFAULT_PATH = '/_wsfrp/'

/**
 * Who an admitted request is: the operator (`tenant` undefined: `webServer.user`/`password`, or a
 * local request in the local mode), or a user of `[[auth.users]]` that signed in with Basic
 * `name:token` and sees only its own clients and proxies.
 */
interface Viewer {
  readonly tenant: string | undefined
}
const OPERATOR: Viewer = { tenant: undefined }

/** The path of a request target, without the query. */
function pathOf(url: string | undefined): string {
  return (url ?? '/').split('?')[0] ?? '/'
}

function sendText(req: http.IncomingMessage, res: http.ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  const body = `${text}\n`
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...extra,
  })
  res.end(req.method === 'HEAD' ? undefined : body)
}

/** The dashboard, the REST API and /metrics of one {@link WsfrpServer}. Created by the server. */
export class Dashboard {
  /** The prefix on the server's own port (see {@link DashboardOptions.path}). */
  readonly path: string
  private readonly enabled: boolean
  private readonly auth: BasicAuth | undefined
  /**
   * Failed Basic sign-ins per address (`limits.webLoginFailures` over `limits.loginFailureWindow`).
   * A bucket of its own, not the frp login one: a dashboard behind a reverse proxy sees every
   * visitor at the proxy's address and may need it off while frp logins keep theirs.
   */
  private readonly signInThrottle: LoginThrottle
  private registry: Registry | undefined
  private listener: http.Server | undefined
  private listenerExposure: Exposure = { mode: 'off', reason: 'not listening' }
  private readonly page: string
  private readonly pageEtag: string
  private readonly scriptEtag: string

  constructor(
    private readonly server: WsfrpServer,
    opts: DashboardOptions = {},
  ) {
    const path = opts.path ?? DEFAULT_PATH
    if (!path.startsWith('/') || !path.endsWith('/') || path === '/' || /[?#\s]/.test(path)) {
      throw new WsfrpError('ERR_CONFIG', `dashboard path ${JSON.stringify(path)} must start and end with "/" and not be "/"`)
    }
    this.path = path
    this.enabled = opts.enabled ?? true
    const { user, password } = server.config.webServer
    this.auth = user !== '' || password !== '' ? new BasicAuth(user, password) : undefined
    const { webLoginFailures, loginFailureWindow } = server.config.limits
    this.signInThrottle = new LoginThrottle({ maxFailures: webLoginFailures, windowMs: loginFailureWindow * 1000 })
    this.page = renderDashboardPage(VERSION)
    this.pageEtag = etag(this.page)
    this.scriptEtag = etag(DASHBOARD_SCRIPT)
  }

  /** True when `webServer.port` asks for a listener of its own (set, and not the bind port). */
  get ownPort(): boolean {
    const { port } = this.server.config.webServer
    return port !== 0 && port !== this.server.config.bindPort
  }

  /** How the server's own port serves the surfaces now (off when they have a listener of their own). */
  sharedExposure(): Exposure {
    if (this.ownPort) return { mode: 'off', reason: `they are served on webServer.port ${this.server.config.webServer.port}` }
    const { user, password } = this.server.config.webServer
    return decideExposure({ listenAddress: this.server.address()?.address, user, password, enabled: this.enabled })
  }

  /** Where the `webServer.port` listener is bound, once listening. */
  address(): ServerAddress | undefined {
    const a = this.listener?.address()
    if (a === null || a === undefined || typeof a === 'string') return undefined
    return { address: a.address, port: a.port }
  }

  /**
   * Serves a request on the server's own port if its path is under {@link path}; returns false (and
   * touches nothing) otherwise, or when the surfaces are not on this port.
   */
  handleShared(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (this.ownPort) return false
    const path = pathOf(req.url)
    const bare = this.path.slice(0, -1)
    if (path !== bare && !path.startsWith(this.path)) return false
    const exposure = this.sharedExposure()
    if (exposure.mode === 'off') {
      // Say nothing about what is there: a public server without credentials shows no dashboard.
      sendText(req, res, 404, 'not found')
      return true
    }
    const viewer = this.admit(req, res, exposure)
    if (viewer === undefined) return true
    if (path === bare) {
      // The page loads its script and API with relative URLs: they need the trailing slash.
      sendText(req, res, 301, `moved to ${this.path}`, { Location: this.path })
      return true
    }
    this.route(req, res, path.slice(this.path.length), viewer)
    return true
  }

  /**
   * Starts the `webServer.port` listener on `webServer.addr` when the config asks for one; resolves
   * at once otherwise. The server's `listen()` calls it.
   *
   * @throws WsfrpError `ERR_CONFIG` when that listener would be public without `webServer.user` /
   *   `webServer.password` (wsfrps refuses where frps would serve); `ERR_CONNECT` when it cannot bind.
   */
  async listen(): Promise<ServerAddress | undefined> {
    if (!this.ownPort || !this.enabled || this.listener !== undefined) return this.address()
    const { addr, port, user, password } = this.server.config.webServer
    const refuse = (reason: string): WsfrpError =>
      new WsfrpError(
        'ERR_CONFIG',
        `the dashboard on ${addr}:${port} would be public without a password: set webServer.user and webServer.password, or bind webServer.addr to 127.0.0.1 (${reason})`,
      )
    // An address literal is judged before binding, so a refused public listener never exists.
    if (isIP(addr) !== 0) {
      const early = decideExposure({ listenAddress: addr, user, password, enabled: true })
      if (early.mode === 'off') throw refuse(early.reason)
    }
    const listener = http.createServer((req, res) => this.handleOwn(req, res))
    await new Promise<void>((resolve, reject) => {
      listener.once('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EADDRINUSE' ? `port ${port} is already in use` : err.message
        reject(new WsfrpError('ERR_CONNECT', `cannot listen on ${addr}:${port} (webServer): ${why}`, { cause: err }))
      })
      listener.listen(port, addr, () => {
        // Decided on the address really bound (webServer.addr may be a name), before any request is read.
        const bound = listener.address()
        const exposure = decideExposure({ listenAddress: typeof bound === 'object' && bound !== null ? bound.address : undefined, user, password, enabled: true })
        if (exposure.mode === 'off') {
          listener.close()
          reject(refuse(exposure.reason))
          return
        }
        this.listenerExposure = exposure
        resolve()
      })
    })
    listener.removeAllListeners('error')
    listener.on('error', (err) => this.server.log.error('dashboard listener error', { error: err.message }))
    this.listener = listener
    const a = this.address()!
    this.server.log.info('dashboard listening', { address: `${a.address}:${a.port}`, auth: this.listenerExposure.mode === 'basic' })
    return a
  }

  /** Closes the `webServer.port` listener (if any) and its connections. */
  async close(): Promise<void> {
    const l = this.listener
    if (l === undefined) return
    this.listener = undefined
    await new Promise<void>((resolve) => {
      l.close(() => resolve())
      l.closeAllConnections()
    })
  }

  /** A line for the startup log saying where the surfaces are and how they are protected. */
  describe(): string {
    if (this.ownPort) return `dashboard on webServer ${this.server.config.webServer.addr}:${this.server.config.webServer.port}`
    const e = this.sharedExposure()
    if (e.mode === 'off') return `dashboard not served: ${e.reason}`
    return `dashboard at ${this.path} (${e.mode === 'basic' ? 'Basic auth' : 'local requests only'})`
  }

  private handleOwn(req: http.IncomingMessage, res: http.ServerResponse): void {
    try {
      let path = pathOf(req.url)
      if (path === '/healthz') {
        sendText(req, res, 200, 'ok')
        return
      }
      const viewer = this.admit(req, res, this.listenerExposure)
      if (viewer === undefined) return
      // The same URLs work on both listeners: the prefix is optional here.
      if (path === this.path.slice(0, -1)) path = this.path
      if (path.startsWith(this.path)) path = `/${path.slice(this.path.length)}`
      this.route(req, res, path.slice(1), viewer)
    } catch (err) {
      this.server.log.error('dashboard request failed', { path: pathOf(req.url), error: err instanceof Error ? err.message : String(err) })
      if (!res.headersSent) sendText(req, res, 500, 'internal server error')
      else res.destroy()
    }
  }

  /**
   * Applies the exposure to a request and tells who it is; answers it (401/403/404) and returns
   * undefined when refused. Basic credentials of a `[[auth.users]]` user (`name:token`) admit it as
   * that user wherever the surfaces are served; the operator's credentials are checked first.
   */
  private admit(req: http.IncomingMessage, res: http.ServerResponse, exposure: Exposure): Viewer | undefined {
    if (exposure.mode === 'off') {
      sendText(req, res, 404, 'not found')
      return undefined
    }
    const authorization = req.headers.authorization
    // Only a request that presents credentials is throttled or counted: a browser's first request
    // carries none (it asks after the 401), and a local request needs none.
    const address = authorization !== undefined ? throttleAddress(req) : ''
    if (authorization !== undefined) {
      // Checked before the credentials, like frp logins: a throttled address learns nothing.
      const wait = this.signInThrottle.retryAfterMs(address)
      if (wait > 0) {
        sendText(req, res, 429, 'too many failed sign-ins, retry later', { 'Retry-After': String(Math.ceil(wait / 1000)) })
        return undefined
      }
    }
    if (exposure.mode === 'basic' && this.auth!.check(authorization)) return OPERATOR
    const cred = parseBasic(authorization)
    if (cred !== undefined && this.server.tenants.authenticate(cred.user, cred.password)) return { tenant: cred.user }
    if (exposure.mode === 'basic') {
      if (authorization !== undefined) this.signInThrottle.failed(address)
      sendText(req, res, 401, 'authentication required', { 'WWW-Authenticate': BASIC_CHALLENGE })
      return undefined
    }
    const why = notLocalReason(req)
    // A local request is the operator whatever it presented: a wrong tenant token gains it nothing.
    if (why === undefined) return OPERATOR
    if (authorization !== undefined) this.signInThrottle.failed(address)
    sendText(req, res, 403, `forbidden: ${why}; set webServer.user and webServer.password to reach the dashboard from elsewhere`)
    return undefined
  }

  /** Serves `sub` (the path below the prefix) to an admitted request. */
  private route(req: http.IncomingMessage, res: http.ServerResponse, sub: string, viewer: Viewer): void {
    if (sub.startsWith('api/')) {
      handleApi(this.server, sub.slice(4), req, res, viewer.tenant)
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendText(req, res, 405, 'method not allowed', { Allow: 'GET, HEAD' })
      return
    }
    switch (sub) {
      case '':
        this.sendStatic(req, res, this.page, this.pageEtag, 'text/html; charset=utf-8', {
          'Content-Security-Policy': PAGE_CSP,
          'X-Frame-Options': 'DENY',
          'Referrer-Policy': 'no-referrer',
        })
        return
      case 'app.js':
        this.sendStatic(req, res, DASHBOARD_SCRIPT, this.scriptEtag, 'text/javascript; charset=utf-8', {})
        return
      case 'metrics':
        // Prometheus series name every proxy of every user: the operator's alone.
        if (viewer.tenant !== undefined) sendText(req, res, 403, 'forbidden: /metrics is for the operator (webServer.user)')
        else void this.sendMetrics(req, res)
        return
      case 'healthz':
        sendText(req, res, 200, 'ok')
        return
      default:
        if (sub === 'api') handleApi(this.server, '', req, res, viewer.tenant)
        else sendText(req, res, 404, 'not found')
    }
  }

  private sendStatic(req: http.IncomingMessage, res: http.ServerResponse, body: string, tag: string, type: string, extra: Record<string, string>): void {
    // Revalidated on every load (no-cache), answered 304 while unchanged: a new version is seen at once.
    const headers = { 'Content-Type': type, 'Cache-Control': 'no-cache', ETag: tag, 'X-Content-Type-Options': 'nosniff', ...extra }
    if (req.headers['if-none-match'] === tag) {
      res.writeHead(304, headers)
      res.end()
      return
    }
    res.writeHead(200, { ...headers, 'Content-Length': Buffer.byteLength(body) })
    res.end(req.method === 'HEAD' ? undefined : body)
  }

  private async sendMetrics(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      this.registry ??= (await import('../metrics-registry.js')).createMetricsRegistry(this.server)
      const text = await this.registry.metrics()
      res.writeHead(200, {
        'Content-Type': this.registry.contentType,
        'Content-Length': Buffer.byteLength(text),
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
      })
      res.end(req.method === 'HEAD' ? undefined : text)
    } catch (err) {
      this.server.log.error('metrics collection failed', { error: err instanceof Error ? err.message : String(err) })
      if (!res.headersSent) sendJson(req, res, 500, { error: 'metrics collection failed' })
    }
  }
}

/** The throttle's key for a request: the peer's IP (throttleKey maps IPv4-mapped ones to IPv4). */
function throttleAddress(req: http.IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown'
}

function etag(body: string): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`
}
