/**
 * wsfrps as a library: one HTTP(S) listener that upgrades `/~!frp` (and `transport.wsPaths`) to
 * WebSockets carrying frp's yamux session (frp-wire-protocol.md §2, §9), answers plain HTTP with a
 * health check and a landing page, and opens tcp proxies for logged-in clients (§10.1).
 */
import { EventEmitter } from 'node:events'
import { readFileSync } from 'node:fs'
import * as http from 'node:http'
import * as https from 'node:https'
import type { Duplex } from 'node:stream'
import { isIP } from 'node:net'
import type { WebSocketServer } from 'ws'
import {
  FrpServerRole,
  LoginThrottle,
  WsfrpError,
  plainAddress,
  serverWsPaths,
  validateServerConfig,
  type ControlHandle,
  type Logger,
  type ProxyManager,
  type ServerConfig,
  type YamuxOptions,
} from '@wsfrp/core'
import { acceptWs, createWsServer, nodeCrypto } from '@wsfrp/node'
import { Dashboard, type DashboardOptions } from './dashboard/index.js'
import { DEMO_PATH, Demo, type DemoOptions } from './demo.js'
import { renderLandingPage, safeHost } from './landing.js'
import { loggerFromConfig } from './logger.js'
import { ServerMetrics } from './metrics.js'
import { ProxyRouter } from './proxy-router.js'
import { TcpProxyManager, type TcpProxyEvent } from './tcp-proxy.js'
import { Tenants } from './tenants.js'
import { VERSION } from './version.js'
import { HttpVhost, answerClientError, refuseConnect, refuseUnsupportedUpgrade, refuseUnsupportedVersion, serveVhostOnly, upgradeInOrder } from './vhost/index.js'

/** A config where every field may be left out; missing ones get wsfrps's defaults (docs/CONFIG.md). */
export type ServerConfigInput = DeepPartial<ServerConfig>
type DeepPartial<T> = {
  // Arrays of tables (`auth.users`) take partial entries too; the validator fills their defaults.
  [K in keyof T]?: T[K] extends readonly (infer U)[] ? ([U] extends [object] ? DeepPartial<U>[] : T[K]) : T[K] extends object ? DeepPartial<T[K]> : T[K]
}

/**
 * A plain-HTTP request handler in the server's chain. Call `next()` to pass the request on (the last
 * step serves `/healthz` and the landing page). A thrown error or a rejected promise answers 500.
 */
export type RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse, next: () => void) => void | Promise<void>

/**
 * An upgrade handler for paths that are not frp WebSocket paths (those are always served first).
 * Call `next()` to pass it on; the last step answers 404 and closes the socket.
 */
export type UpgradeHandler = (req: http.IncomingMessage, socket: Duplex, head: Buffer, next: () => void) => void | Promise<void>

export interface CreateServerOptions {
  /** Default: a logger built from `config.log` (stdout or the file in `log.to`). */
  logger?: Logger
  /** User connections per tcp proxy that may wait for a work connection at once. Default `limits.maxPendingUserConnsPerProxy` (1,024). */
  maxPendingUserConns?: number
  /** Largest WebSocket message accepted from a client, in bytes. Default `limits.maxWebSocketMessageSize` (16 MiB). */
  maxPayload?: number
  /** Overrides for the yamux sessions (keepAliveInterval comes from `transport.tcpMuxKeepaliveInterval`). */
  yamux?: Partial<YamuxOptions>
  /**
   * A WebSocket that opened no frp control within this many ms is closed, so idle sockets cannot
   * pile up. Default `limits.transportLoginTimeout` × 1000 (30,000); 0 disables.
   */
  transportLoginTimeoutMs?: number
  /** The dashboard, REST API and /metrics (docs/DASHBOARD.md): their path prefix, or `enabled: false`. */
  dashboard?: DashboardOptions
  /**
   * The "Try it in your browser" demo (docs/BROWSER.md): `true` or its options. It needs a
   * `subDomainHost`; each demo session is a generated user that may only publish `demo-<id>` http proxies.
   */
  demo?: boolean | DemoOptions
}

/** Where the server listens. */
export interface ServerAddress {
  address: string
  port: number
}

/** Counts shown on the landing page. */
export interface ServerStats {
  /** Logged-in clients (frp controls). */
  clients: number
  /** Registered proxies. */
  proxies: number
  /** Open WebSocket transports. */
  transports: number
}

/** Events of {@link WsfrpServer}. */
export interface ServerEvents {
  /** A client logged in. */
  login: [control: ControlHandle]
  /** A client's control ended (its proxies are being closed). */
  logout: [control: ControlHandle]
  /** A tcp proxy's listener is bound. */
  'proxy-open': [proxy: TcpProxyEvent & { type: 'tcp' }]
  /** A tcp proxy's listener is closed: its port is free again. */
  'proxy-close': [proxy: TcpProxyEvent & { type: 'tcp' }]
  /** A WebSocket transport was accepted. */
  'transport-open': [info: { remoteAddress: string; path: string }]
  /** A WebSocket transport ended. */
  'transport-close': [info: { remoteAddress: string }]
}

/**
 * Where http vhosts (`type = "http"` proxies) are served: `shared` on the bind port (vhostHTTPPort
 * unset or equal to bindPort), `own` on a vhost-only listener, `off` for vhostHTTPPort = 0 (frps:
 * no http vhost, http proxies refused).
 */
export type VhostMode = 'shared' | 'own' | 'off'

function vhostModeOf(config: ServerConfig): VhostMode {
  if (config.vhostHTTPPort === config.bindPort) return 'shared'
  return config.vhostHTTPPort === 0 ? 'off' : 'own'
}

/** The proxy manager for http proxies when vhostHTTPPort = 0: refuses every one. */
const NO_HTTP_VHOST: ProxyManager = {
  register: () => Promise.reject(new WsfrpError('ERR_PROXY', 'type [http] is not supported: this server has no http vhost (vhostHTTPPort = 0)')),
  unregister: () => {},
}

/** Grace for WebSocket close handshakes on shutdown before the sockets are cut, in ms. */
const CLOSE_GRACE_MS = 2000

/**
 * Creates a wsfrps server. `config` is validated like a config file (defaults filled in).
 *
 * @throws ConfigError (`ERR_CONFIG`) when `config` is invalid.
 */
export function createServer(config: ServerConfigInput = {}, opts: CreateServerOptions = {}): WsfrpServer {
  return new WsfrpServer(validateServerConfig(normalizeConfigInput(config)), opts)
}

/**
 * Makes a validated config (or a partial one) acceptable to the validator again: a vhostHTTPPort
 * equal to bindPort is the default and is dropped, so that `bindPort = 0` (whose validated
 * vhostHTTPPort is 0, a value a file may not contain) round-trips.
 */
export function normalizeConfigInput(config: ServerConfigInput): ServerConfigInput {
  if (config.vhostHTTPPort === undefined || config.vhostHTTPPort !== (config.bindPort ?? 7000)) return config
  const copy = { ...config }
  delete copy.vhostHTTPPort
  return copy
}

function plainIp(addr: string | undefined): string {
  if (addr === undefined) return 'unknown'
  return plainAddress(addr)
}

/** The path of a request target, without the query. */
function pathOf(url: string | undefined): string {
  return (url ?? '/').split('?')[0] ?? '/'
}

/** Answers a raw upgrade socket with a plain HTTP status and closes it. */
/**
 * Options of the server's own http.Server: heads beyond `limits.maxHTTPHeaderSize` get 431; no
 * overall request timeout (Node's default of 300 s would cut long uploads and SSE streams; the
 * vhost keeps its own response-header timeout). The head timeout is set explicitly: with
 * `requestTimeout: 0` Node's default would be 0 too, and a trickled head (slowloris, upgrades
 * included) would hold its socket forever.
 */
function httpServerOptions(limits: ServerConfig['limits']): http.ServerOptions {
  const headersTimeout = limits.httpHeaderTimeout * 1000
  return {
    maxHeaderSize: limits.maxHTTPHeaderSize,
    requestTimeout: 0,
    headersTimeout,
    keepAliveTimeout: limits.httpKeepAliveTimeout * 1000,
    // How often Node looks for expired heads; Node's 30 s would let a short timeout run 30 s late.
    connectionsCheckingInterval: Math.max(250, Math.min(30_000, Math.floor(headersTimeout / 4))),
  }
}

/** True for a Host header that names this server itself rather than a proxied site. */
function isOwnHost(hostHeader: string | undefined, subDomainHost: string): boolean {
  if (hostHeader === undefined || hostHeader === '') return true
  const host = hostHeader.replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase()
  return host === 'localhost' || host === subDomainHost.toLowerCase() || isIP(host) !== 0
}

function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  if (socket.writable) {
    const body = `${text}\n`
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  }
  // end() flushes the answer; destroy() later if the peer never closes its side.
  const t = setTimeout(() => socket.destroy(), 1000)
  t.unref()
  socket.once('close', () => clearTimeout(t))
}

export class WsfrpServer extends EventEmitter<ServerEvents> {
  /** The validated configuration. */
  readonly config: ServerConfig
  /** The frp session layer (logged-in clients: `role.controls`). */
  readonly role: FrpServerRole
  /** Proxies of every type; add managers for more types with `proxies.setManager(type, m)`. */
  readonly proxies: ProxyRouter
  readonly tcp: TcpProxyManager
  /** Every WebSocket path served: `/~!frp` first, then `transport.wsPaths`. */
  readonly wsPaths: readonly string[]
  readonly log: Logger
  /** Traffic, connection and login-failure counters (read by the dashboard, the API and /metrics). */
  readonly metrics: ServerMetrics
  /** The dashboard, REST API and /metrics (docs/DASHBOARD.md). */
  readonly dashboard: Dashboard
  /** HTTP virtual hosts (`type = "http"` proxies), on the server's own port or on `vhostHTTPPort`. */
  readonly vhost: HttpVhost
  /** Where {@link vhost} is served (see {@link VhostMode}); {@link vhostAddress} tells the port. */
  readonly vhostMode: VhostMode
  /** The browser demo, when `CreateServerOptions.demo` is set. */
  readonly demo: Demo | undefined
  /** The users of `[[auth.users]]`: their restrictions and what they hold (`tenants.usage(name)`). */
  readonly tenants: Tenants
  private readonly wss: WebSocketServer
  private readonly pathSet: Set<string>
  private readonly handlers: RequestHandler[] = []
  private readonly upgradeHandlers: UpgradeHandler[] = []
  private readonly wsSockets = new Set<Duplex>()
  /** Open transports by remote address: whether a control logged in over it, and its login deadline. */
  private readonly transports = new Map<string, { loggedIn: boolean; timer: NodeJS.Timeout | undefined; release: () => void }>()
  /** WebSockets (handshakes included) over which no client has logged in yet (`limits.maxPendingTransports`). */
  private pendingTransports = 0
  private readonly transportLoginTimeoutMs: number
  private httpServer: http.Server | undefined
  /** The vhost-only listener when `vhostHTTPPort` is a port of its own. */
  private vhostServer: http.Server | undefined
  private ownServer = false
  private secure = false
  private detachFn: (() => void) | undefined
  private closing: Promise<void> | undefined

  constructor(config: ServerConfig, opts: CreateServerOptions = {}) {
    super()
    this.config = config
    this.log = opts.logger ?? loggerFromConfig(config.log)
    this.wsPaths = serverWsPaths(config)
    this.pathSet = new Set(this.wsPaths)
    const limits = config.limits
    this.transportLoginTimeoutMs = opts.transportLoginTimeoutMs ?? limits.transportLoginTimeout * 1000
    this.secure = config.transport.tls.certFile !== ''
    this.wss = createWsServer({ maxPayload: opts.maxPayload ?? limits.maxWebSocketMessageSize })
    this.proxies = new ProxyRouter({ logger: this.log, detailedErrors: config.detailedErrorsToClient })
    const tenants = new Tenants({ users: config.auth.users, subDomainHost: config.subDomainHost, detailedErrors: config.detailedErrorsToClient, logger: this.log })
    this.tenants = tenants
    this.tcp = new TcpProxyManager({
      proxyBindAddr: config.proxyBindAddr,
      allowPorts: config.allowPorts,
      maxPortsPerClient: config.maxPortsPerClient,
      maxPendingUserConns: opts.maxPendingUserConns ?? limits.maxPendingUserConnsPerProxy,
      allowPortsFor: (control) => tenants.allowPortsOf(control),
      logger: this.log,
      onOpen: (e) => this.fire('proxy-open', { ...e, type: 'tcp' }),
      onClose: (e) => this.fire('proxy-close', { ...e, type: 'tcp' }),
    })
    this.proxies.setManager('tcp', this.tcp)
    // HTTP vhosts share the one port by default (vhostHTTPPort = bindPort): a request whose Host has
    // a route goes to the tunnel; the WebSocket paths and the dashboard prefix are never shadowed.
    // On a port of their own nothing is reserved: every path of a routed host goes to its proxy.
    this.vhostMode = vhostModeOf(config)
    const shared = this.vhostMode === 'shared'
    this.vhost = new HttpVhost({
      subDomainHost: config.subDomainHost,
      vhostPort: () => this.vhostAddress()?.port ?? (this.vhostMode === 'off' ? undefined : config.vhostHTTPPort),
      reserved: shared ? (path) => this.pathSet.has(path) || path.startsWith(this.dashboard.path) || path === '/healthz' : undefined,
      logger: this.log,
    })
    this.proxies.setManager('http', this.vhostMode === 'off' ? NO_HTTP_VHOST : this.vhost)
    if (shared) {
      this.use((req, res, next) => {
        if (!this.vhost.handleRequest(req, res)) next()
      })
      this.useUpgrade((req, socket, head, next) => {
        if (!this.vhost.handleUpgrade(req, socket, head)) next()
      })
    }
    this.metrics = new ServerMetrics()
    const keepAliveMs = config.transport.tcpMuxKeepaliveInterval * 1000
    this.role = new FrpServerRole({
      token: config.auth.token,
      users: config.auth.users,
      crypto: nodeCrypto,
      // Every proxy type's work connections count their bytes (users' ones against their limits too).
      proxies: tenants.guard(this.metrics.countTraffic(this.proxies)),
      maxPoolCount: config.transport.maxPoolCount,
      userConnTimeoutMs: config.userConnTimeout * 1000,
      loginTimeoutMs: limits.loginTimeout * 1000,
      maxClients: limits.maxClients,
      maxProxiesPerClient: limits.maxProxiesPerClient,
      maxMessageSize: limits.maxMessageSize,
      loginThrottle: new LoginThrottle({ maxFailures: limits.loginFailures, windowMs: limits.loginFailureWindow * 1000 }),
      additionalScopes: config.auth.additionalScopes,
      logger: this.log,
      onLoginRefused: (r) => this.metrics.loginFailed(r.reason),
      yamux: {
        keepAliveInterval: keepAliveMs,
        // A short keep-alive asks for quick detection of a dead peer: a ping may take at most one
        // interval (never more than yamux's 10 s) to come back.
        pingTimeout: Math.min(10_000, keepAliveMs),
        maxStreams: limits.maxStreamsPerSession,
        sessionReceiveBudget: limits.sessionReceiveBudget,
        ...opts.yamux,
      },
      onControl: (event, control) => {
        if (event === 'login') {
          const t = this.transports.get(control.remoteAddress)
          if (t !== undefined) {
            t.loggedIn = true
            clearTimeout(t.timer)
            t.release()
          }
        }
        this.fire(event, control)
      },
    })
    this.dashboard = new Dashboard(this, opts.dashboard)
    if (opts.demo && this.vhostMode === 'off') throw new WsfrpError('ERR_CONFIG', 'the demo publishes http proxies: it needs http vhosts (vhostHTTPPort is 0)')
    // Demo sessions are generated users: the same role, path and tenant checks as configured ones.
    this.demo = opts.demo ? new Demo({ config, role: this.role, tenants, events: this, wsPath: this.wsPaths[0]!, log: this.log, secure: () => this.secure }, opts.demo === true ? {} : opts.demo) : undefined
    if (this.demo !== undefined) {
      const demo = this.demo
      // Only on the server's own names: never on a published site's origin.
      this.use((req, res, next) => {
        if (!isOwnHost(req.headers.host, config.subDomainHost) || !demo.handleRequest(req, res)) next()
      })
    }
  }

  /** Emits an event; a listener that throws is logged, never allowed to break the session code that fired it. */
  private fire<K extends keyof ServerEvents>(event: K, ...args: ServerEvents[K]): void {
    try {
      ;(this.emit as (e: K, ...a: ServerEvents[K]) => boolean)(event, ...args)
    } catch (err) {
      this.log.error('event listener failed', { event, error: err instanceof Error ? err.message : String(err) })
    }
  }

  /** Adds a plain-HTTP handler in front of the built-in ones (`/healthz`, landing page). In call order. */
  use(handler: RequestHandler): this {
    this.handlers.push(handler)
    return this
  }

  /** Adds an upgrade handler for non-frp paths (e.g. WebSockets of http vhost proxies). In call order. */
  useUpgrade(handler: UpgradeHandler): this {
    this.upgradeHandlers.push(handler)
    return this
  }

  /** Counts for status pages. */
  stats(): ServerStats {
    return { clients: this.role.controls.size, proxies: this.proxies.size, transports: this.role.sessionCount }
  }

  /** The bound address, once listening (or attached to a listening server). */
  address(): ServerAddress | undefined {
    const a = this.httpServer?.address()
    if (a === null || a === undefined || typeof a === 'string') return undefined
    return { address: a.address, port: a.port }
  }

  /**
   * Where http vhost requests are served, once listening: the bind port's address when they share
   * it, the vhost-only listener's when `vhostHTTPPort` is another port; undefined when vhosts are
   * off (vhostHTTPPort = 0) or before `listen()`. With `attach()` the app's server is the address.
   */
  vhostAddress(): ServerAddress | undefined {
    if (this.vhostMode === 'shared') return this.address()
    const a = this.vhostServer?.address()
    if (a === null || a === undefined || typeof a === 'string') return undefined
    return { address: a.address, port: a.port }
  }

  /** The URL clients dial (`ws://host:port/~!frp`), once listening. */
  url(): string | undefined {
    const a = this.address()
    if (a === undefined) return undefined
    const host = a.address.includes(':') ? `[${a.address}]` : a.address
    return `${this.secure ? 'wss' : 'ws'}://${host}:${a.port}${this.wsPaths[0]}`
  }

  /**
   * Starts the server's own listener on `bindAddr:bindPort` (HTTPS when `transport.tls.certFile` is
   * set). Resolves with the real address (port 0 → the port the OS chose).
   *
   * @throws WsfrpError `ERR_CONNECT` when the port cannot be bound; `ERR_CONFIG` for unreadable TLS files.
   */
  async listen(): Promise<ServerAddress> {
    if (this.httpServer !== undefined) throw new WsfrpError('ERR_CONFIG', 'the server is already listening or attached')
    if (this.closing !== undefined) throw new WsfrpError('ERR_CONN_CLOSED', 'the server is closed')
    const { bindAddr, bindPort } = this.config
    // Not HTTP/1.x (`HTTP/2.0` or HTTP/0.9 request lines, which Node's parser lets through): 505.
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      if (!refuseUnsupportedVersion(req, res)) this.handleRequest(req, res)
    }
    let server: http.Server
    if (this.secure) {
      const { certFile, keyFile } = this.config.transport.tls
      let cert: Buffer
      let key: Buffer
      try {
        cert = readFileSync(certFile)
        key = readFileSync(keyFile)
      } catch (err) {
        throw new WsfrpError('ERR_CONFIG', `cannot read the TLS certificate or key: ${(err as Error).message}`, { cause: err })
      }
      server = https.createServer({ cert, key, ...httpServerOptions(this.config.limits) }, onRequest)
    } else {
      server = http.createServer(httpServerOptions(this.config.limits), onRequest)
    }
    // 100-continue goes to the local service when a vhost route matches; 400/431 for bad requests.
    server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (refuseUnsupportedVersion(req, res)) return
      if (this.vhostMode !== 'shared' || !this.vhost.handleCheckContinue(req, res)) {
        res.writeContinue()
        this.handleRequest(req, res)
      }
    })
    server.on('clientError', answerClientError)
    // CONNECT is never tunnelled (405, vhost/listener.ts); without a listener Node drops the socket.
    server.on('connect', refuseConnect)
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      // An upgrade pipelined behind requests waits for their responses (vhost/listener.ts); a
      // reset meanwhile must not be an uncaught error (Node took its own listener off at 'upgrade').
      socket.on('error', () => {})
      upgradeInOrder(socket, () => {
        if (refuseUnsupportedUpgrade(req, socket)) return
        if (!this.handleUpgrade(req, socket, head)) this.runUpgradeChain(req, socket, head)
      })
    })
    this.httpServer = server
    this.ownServer = true
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        this.httpServer = undefined
        const why = err.code === 'EADDRINUSE' ? `port ${bindPort} is already in use` : err.message
        reject(new WsfrpError('ERR_CONNECT', `cannot listen on ${bindAddr}:${bindPort}: ${why}`, { cause: err }))
      }
      server.once('error', onError)
      server.listen(bindPort, bindAddr, () => {
        server.off('error', onError)
        resolve()
      })
    })
    server.on('error', (err) => this.log.error('listener error', { error: err.message }))
    const addr = this.address()!
    this.log.info('listening', { address: `${addr.address}:${addr.port}`, tls: this.secure, wsPaths: this.wsPaths.join(',') })
    try {
      if (this.vhostMode === 'own') await this.listenVhost()
      await this.dashboard.listen()
    } catch (err) {
      // Without its configured vhost port or dashboard the server does not start, as frps: give
      // the ports back.
      this.httpServer = undefined
      await this.closeVhostListener()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      throw err
    }
    this.log.info(this.dashboard.describe())
    return addr
  }

  /**
   * Starts the vhost-only listener of a `vhostHTTPPort` other than `bindPort`, on `proxyBindAddr`
   * as frps binds it (frp server/service.go). Plain HTTP even when the bind port has TLS: it is
   * frp's vhost *HTTP* port (https vhosts, `vhostHTTPSPort`, are not supported). No WebSocket
   * endpoint, landing page, health check or dashboard there: only routes and error pages.
   */
  private async listenVhost(): Promise<void> {
    const addr = this.config.proxyBindAddr
    const port = this.config.vhostHTTPPort
    const server = http.createServer(httpServerOptions(this.config.limits))
    serveVhostOnly(server, this.vhost)
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        const why = err.code === 'EADDRINUSE' ? `port ${port} is already in use` : err.message
        reject(new WsfrpError('ERR_CONNECT', `cannot listen for http vhosts (vhostHTTPPort) on ${addr}:${port}: ${why}`, { cause: err }))
      }
      server.once('error', onError)
      server.listen(port, addr, () => {
        server.off('error', onError)
        resolve()
      })
    })
    server.on('error', (err) => this.log.error('vhost listener error', { error: err.message }))
    this.vhostServer = server
    const a = this.vhostAddress()!
    this.log.info('http vhosts listening', { address: `${a.address}:${a.port}` })
  }

  /** Closes the vhost-only listener and its connections (in-flight requests are cut). */
  private async closeVhostListener(): Promise<void> {
    const server = this.vhostServer
    if (server === undefined) return
    this.vhostServer = undefined
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    server.closeAllConnections()
    await closed
  }

  /**
   * Serves the frp WebSocket paths on an existing server (one `$PORT` on a PaaS). Only upgrades on
   * those paths are taken; the app's routes and its other upgrades are left alone. Upgrade listeners
   * the app installed before this call are moved behind ours and only see other paths (a `ws`
   * server attached with `{ server }` would otherwise answer 400 to our path); install any later
   * WebSocket servers with `noServer`. Returns a function that undoes the attachment.
   */
  attach(httpServer: http.Server): () => void {
    if (this.httpServer !== undefined) throw new WsfrpError('ERR_CONFIG', 'the server is already listening or attached')
    const prior = httpServer.listeners('upgrade') as Array<(req: http.IncomingMessage, socket: Duplex, head: Buffer) => void>
    httpServer.removeAllListeners('upgrade')
    const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
      if (this.handleUpgrade(req, socket, head)) return
      if (prior.length > 0) {
        for (const l of prior) l.call(httpServer, req, socket, head)
      } else if (this.upgradeHandlers.length > 0 || httpServer.listenerCount('upgrade') === 1) {
        // Nobody else would answer: without us Node would have closed the socket.
        this.runUpgradeChain(req, socket, head)
      }
    }
    httpServer.on('upgrade', onUpgrade)
    this.httpServer = httpServer
    this.ownServer = false
    this.secure = httpServer instanceof https.Server
    this.detachFn = () => {
      httpServer.off('upgrade', onUpgrade)
      for (const l of prior) httpServer.on('upgrade', l)
      if (this.httpServer === httpServer) this.httpServer = undefined
      this.detachFn = undefined
    }
    this.log.info('attached to an existing HTTP server', { wsPaths: this.wsPaths.join(',') })
    return this.detachFn
  }

  /**
   * Takes an upgrade request if its path is an frp WebSocket path, and returns true; returns false
   * (and touches nothing) for any other path. For apps that route upgrades themselves.
   */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = pathOf(req.url)
    if (!this.pathSet.has(path)) return false
    this.acceptTransport(req, socket, head, path)
    return true
  }

  /** Runs a plain HTTP request through the handler chain (`use()`), then `/healthz` and the landing page. */
  handleRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    let i = 0
    const next = (): void => {
      const h = this.handlers[i++]
      if (h === undefined) {
        this.builtinRequest(req, res)
        return
      }
      try {
        const r = h(req, res, next)
        if (r !== undefined && typeof (r as Promise<void>).then === 'function') (r as Promise<void>).catch((err: unknown) => this.failRequest(req, res, err))
      } catch (err) {
        this.failRequest(req, res, err)
      }
    }
    next()
  }

  /**
   * GoAway to every client, closes every proxy and the listener (or detaches from an attached
   * server), and resolves when all of it is done. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose()
    return this.closing
  }

  private async doClose(): Promise<void> {
    this.log.info('shutting down', { clients: this.role.controls.size, proxies: this.proxies.size })
    const server = this.httpServer
    const serverClosed =
      server !== undefined && this.ownServer
        ? new Promise<void>((resolve) => server.close(() => resolve()))
        : Promise.resolve()
    this.detachFn?.()
    for (const t of this.transports.values()) clearTimeout(t.timer)
    await this.role.close()
    await this.tcp.close()
    this.vhost.close()
    await this.closeVhostListener()
    await this.dashboard.close()
    await this.demo?.close()
    this.metrics.close()
    // The sessions have sent GoAway and a WebSocket close; give the peers a moment to answer it.
    await Promise.all(
      [...this.wsSockets].map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.destroyed) return resolve()
            const t = setTimeout(() => s.destroy(), CLOSE_GRACE_MS)
            s.once('close', () => {
              clearTimeout(t)
              resolve()
            })
          }),
      ),
    )
    if (server !== undefined && this.ownServer) server.closeAllConnections()
    await serverClosed
    this.wss.close()
    this.log.info('server closed')
  }

  private builtinRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = pathOf(req.url)
    const head = req.method === 'HEAD'
    if (path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' })
      res.end(head ? undefined : 'ok\n')
      return
    }
    if (this.dashboard.handleShared(req, res)) return
    // No route and no handler took it: the server's own names (an IP, localhost, the subDomainHost
    // apex) get the landing page; any other host name is a vhost nobody registered: 404, like frps.
    if (!isOwnHost(req.headers.host, this.config.subDomainHost)) {
      this.vhost.respondNoRoute(req, res)
      return
    }
    if (this.pathSet.has(path)) {
      // A plain GET on the WebSocket path: say what is expected instead of showing the page.
      res.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', Upgrade: 'websocket', Connection: 'Upgrade' })
      res.end(head ? undefined : 'this path expects a WebSocket upgrade (frp transport.protocol = "websocket")\n')
      return
    }
    const forwardedProto = String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]?.trim()
    const secure = this.secure || forwardedProto === 'https'
    const stats = this.stats()
    const body = renderLandingPage({
      version: VERSION,
      host: safeHost(req.headers.host),
      secure,
      clients: stats.clients,
      proxies: stats.proxies,
      wsPath: this.wsPaths[0]!,
      demoPath: this.demo?.enabled ? DEMO_PATH : undefined,
    })
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'",
      'Content-Length': Buffer.byteLength(body),
    })
    res.end(head ? undefined : body)
  }

  private failRequest(req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void {
    this.log.error('request handler failed', { method: req.method, path: pathOf(req.url), error: err instanceof Error ? err.message : String(err) })
    if (!res.headersSent) {
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' })
      res.end('internal server error\n')
    } else {
      res.destroy()
    }
  }

  private runUpgradeChain(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {})
    let i = 0
    const next = (): void => {
      const h = this.upgradeHandlers[i++]
      if (h === undefined) {
        this.log.debug('upgrade on an unknown path refused', { path: pathOf(req.url), remote: plainIp(req.socket.remoteAddress) })
        refuseUpgrade(socket, 404, 'Not Found')
        return
      }
      try {
        const r = h(req, socket, head, next)
        if (r !== undefined && typeof (r as Promise<void>).then === 'function') (r as Promise<void>).catch((err: unknown) => this.failUpgrade(socket, err))
      } catch (err) {
        this.failUpgrade(socket, err)
      }
    }
    next()
  }

  private failUpgrade(socket: Duplex, err: unknown): void {
    this.log.error('upgrade handler failed', { error: err instanceof Error ? err.message : String(err) })
    refuseUpgrade(socket, 500, 'Internal Server Error')
  }

  private acceptTransport(req: http.IncomingMessage, socket: Duplex, head: Buffer, path: string): void {
    // Between the upgrade event and ws taking the socket, an error must not become an uncaught one.
    socket.on('error', (err) => this.log.debug('transport socket error', { error: err.message }))
    if (this.closing !== undefined) {
      refuseUpgrade(socket, 503, 'Service Unavailable')
      return
    }
    const remoteAddress = `${plainIp(req.socket.remoteAddress)}:${req.socket.remotePort ?? 0}`
    // Sockets nobody has logged in over cost memory without proving anything: bounded.
    const maxPending = this.config.limits.maxPendingTransports
    if (maxPending > 0 && this.pendingTransports >= maxPending) {
      this.log.warn('too many WebSockets waiting for a login: refusing an upgrade', { remote: remoteAddress, pending: this.pendingTransports })
      refuseUpgrade(socket, 503, 'Service Unavailable')
      return
    }
    this.pendingTransports++
    let pending = true
    const release = (): void => {
      if (!pending) return
      pending = false
      this.pendingTransports--
    }
    socket.once('close', release)
    this.wsSockets.add(socket)
    socket.once('close', () => this.wsSockets.delete(socket))
    // No Origin check: Node clients send none and browsers send theirs; the token is what
    // authenticates (frps answers 403 without an Origin, frp-wire-protocol.md §2.1).
    acceptWs(this.wss, req, socket, head).then(
      (conn) => {
        if (this.closing !== undefined) {
          conn.destroy()
          return
        }
        this.log.debug('transport opened', { remote: remoteAddress, path, origin: req.headers.origin })
        let session: ReturnType<FrpServerRole['handleTransport']>
        try {
          session = this.role.handleTransport(conn, { remoteAddress, ip: plainIp(req.socket.remoteAddress) })
          this.metrics.trackSession(remoteAddress, session)
        } catch (err) {
          this.log.error('cannot start a session on a WebSocket', { remote: remoteAddress, error: err instanceof Error ? err.message : String(err) })
          conn.destroy()
          return
        }
        const entry = { loggedIn: false, timer: undefined as NodeJS.Timeout | undefined, release }
        if (this.transportLoginTimeoutMs > 0) {
          entry.timer = setTimeout(() => {
            if (entry.loggedIn) return
            this.log.info('closing a WebSocket that sent no login', { remote: remoteAddress, timeoutMs: this.transportLoginTimeoutMs })
            session.close()
          }, this.transportLoginTimeoutMs)
          entry.timer.unref()
        }
        this.transports.set(remoteAddress, entry)
        this.fire('transport-open', { remoteAddress, path })
        void session.closed.then((err) => {
          clearTimeout(entry.timer)
          if (this.transports.get(remoteAddress) === entry) this.transports.delete(remoteAddress)
          this.log.debug('transport closed', { remote: remoteAddress, error: err?.message })
          this.fire('transport-close', { remoteAddress })
          // The session sent its close frame; a peer that never answers it would keep the socket
          // for ws's 30 s close timeout. Real clients answer at once.
          if (!socket.destroyed) {
            const cut = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS)
            cut.unref()
            socket.once('close', () => clearTimeout(cut))
          }
        })
      },
      (err: Error) => this.log.debug('WebSocket handshake refused', { remote: remoteAddress, error: err.message }),
    )
  }
}
