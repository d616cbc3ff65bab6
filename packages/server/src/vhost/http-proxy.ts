import * as http from 'node:http'
import type * as net from 'node:net'
import type { Duplex } from 'node:stream'
import { createHash, timingSafeEqual } from 'node:crypto'
import { WsfrpError, noopLogger, type ControlHandle, type Logger, type NewProxy, type ProxyManager } from '@wsfrp/core'
import { connDuplex } from '@wsfrp/node'
import { VhostRouter, normalizeRouteKey, type RouteGroup, type RouteKey } from './router.js'
import { DEFAULT_TRUSTED_PROXIES, TrustedProxies } from './trusted.js'
import { sendErrorPage, type VhostErrorCode } from './error-page.js'
import {
  basicCredentials,
  checkHeaderSet,
  clientAddress,
  downstreamHead,
  firstHeader,
  interimHead,
  upstreamHead,
  type ClientAddress,
  type HeaderSet,
} from './headers.js'

/** Defaults of {@link HttpVhostOptions}, and the header size limit server.ts should configure. */
export const VHOST_DEFAULTS = {
  /** frps `vhostHTTPTimeout`: 60 s from the end of the request to the response headers. */
  responseHeaderTimeoutMs: 60_000,
  /**
   * Idle kept-alive work streams per proxy. frp ≥ 0.70 keeps 5 (`MaxIdleConnsPerHost`), but Go hands a
   * freed connection to a request that is still waiting for a new one; Node's agent does not, so with
   * 5 a burst of 50 concurrent users churned through ~10× more work streams than with 64 (measured).
   * An idle one costs a yamux stream and an idle local connection at the client, for at most
   * `idleWorkConnTimeoutMs` (or the local service's own Keep-Alive timeout minus 1 s).
   */
  maxIdleWorkConnsPerProxy: 64,
  /** How long an idle kept-alive work stream is kept (frp `IdleConnTimeout`, 60 s). */
  idleWorkConnTimeoutMs: 60_000,
  /** Request head limit, for http.Server's `maxHeaderSize`; beyond it Node answers 431. 16 KiB. */
  maxHeaderBytes: 16 * 1024,
} as const

/** Options of {@link HttpVhost}. */
export interface HttpVhostOptions {
  /** Base domain for proxies' `subdomain` (frps `subDomainHost`). Default `""`: subdomains are refused. */
  subDomainHost?: string
  /**
   * The public port of vhost traffic, for NewProxyResp.remote_addr (`domain:port`, just `domain`
   * for 80). A function is asked at each registration (the port may be known only after listen).
   * Default: unknown, remote_addr lists bare domains.
   */
  vhostPort?: number | (() => number | undefined)
  /**
   * True for paths the server serves itself on every host (WebSocket paths such as `/~!frp` and
   * `transport.wsPaths`, the `/_wsfrp/` dashboard prefix): they never reach a proxy, and no proxy
   * may register them as a location. Default: nothing is reserved.
   */
  reserved?: (path: string) => boolean
  /**
   * Peers (IPs or CIDRs) whose X-Forwarded-For/-Proto/-Host, X-Real-IP and Forwarded headers are
   * believed and passed on; from any other peer they are replaced. Default
   * {@link DEFAULT_TRUSTED_PROXIES} (loopback only). `[]` trusts nobody.
   */
  trustedProxies?: readonly string[]
  /** Default {@link VHOST_DEFAULTS.responseHeaderTimeoutMs} (60,000 ms); 0 disables. */
  responseHeaderTimeoutMs?: number
  /** Default {@link VHOST_DEFAULTS.maxIdleWorkConnsPerProxy} (64). */
  maxIdleWorkConnsPerProxy?: number
  /** Default {@link VHOST_DEFAULTS.idleWorkConnTimeoutMs} (60,000 ms). */
  idleWorkConnTimeoutMs?: number
  logger?: Logger
}

/** Retries of an idempotent request without a body whose kept-alive work stream turned out dead. */
const MAX_STALE_RETRIES = 2

const SRC = Symbol('wsfrp.vhost.src')
interface SrcOptions {
  [SRC]?: { src_addr: string; src_port: number }
}

/** Errors of obtaining a work stream (client offline, no work conn in time) as opposed to errors on one. */
const workConnErrors = new WeakSet<object>()

/** One registered http proxy: its routes, settings and pool of kept-alive work streams. */
export class HttpProxy {
  readonly agent: WorkConnAgent
  /** Work streams started for this proxy (each one a StartWorkConn). */
  workConnsStarted = 0
  closed = false

  constructor(
    readonly name: string,
    readonly control: ControlHandle,
    readonly routes: readonly RouteKey[],
    readonly auth: { user: string; password: string } | undefined,
    readonly hostRewrite: string,
    readonly headers: HeaderSet,
    readonly responseHeaders: HeaderSet,
    opts: { maxFree: number; idleMs: number },
  ) {
    this.agent = new WorkConnAgent(this, opts)
  }
}

/**
 * A keep-alive agent whose "connections" are work streams: `createConnection` asks the client's
 * control for one (StartWorkConn carries the user's address) and wraps it with connDuplex. Node's
 * HTTP client then reuses a work stream for sequential requests, as frps' Go transport does.
 */
class WorkConnAgent extends http.Agent {
  constructor(
    private readonly proxy: HttpProxy,
    opts: { maxFree: number; idleMs: number },
  ) {
    // lifo: the most recently used stream goes first, so surplus ones age out.
    super({ keepAlive: true, maxFreeSockets: opts.maxFree, timeout: opts.idleMs, scheduling: 'lifo' })
  }

  override createConnection(options: http.ClientRequestArgs, cb?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const src = (options as SrcOptions)[SRC] ?? { src_addr: '', src_port: 0 }
    const proxy = this.proxy
    proxy.control.startWorkConn(proxy.name, src).then(
      (conn) => {
        proxy.workConnsStarted++
        // Not half-open: like a client socket, the stream ends and leaves the pool once the local
        // service has closed its side.
        cb?.(null, connDuplex(conn, { allowHalfOpen: false }))
      },
      (err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err))
        workConnErrors.add(e)
        cb?.(e, undefined as unknown as Duplex)
      },
    )
    return undefined
  }
}

/** What the request asks for: host, path for routing, path to forward. */
interface Target {
  host: string
  /** Path without the query, percent-decoded (what frps routes on: Go's URL.Path). */
  path: string
  rawPath: string
  /** Request-target written upstream (origin-form). */
  forward: string
  /** The request came in absolute-form (`GET http://host/path`): proxy auth headers apply. */
  proxyForm: boolean
}

function requestTarget(req: http.IncomingMessage): Target | undefined {
  const url = req.url ?? ''
  if (url.startsWith('/')) {
    const q = url.indexOf('?')
    const rawPath = q < 0 ? url : url.slice(0, q)
    return { host: req.headers.host ?? '', path: decodePath(rawPath), rawPath, forward: url, proxyForm: false }
  }
  if (url === '*') return { host: req.headers.host ?? '', path: '/', rawPath: '*', forward: '*', proxyForm: false }
  // absolute-form: its authority wins over Host (RFC 9112 §3.2.2).
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return undefined
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined
  const forward = (u.pathname || '/') + u.search
  return { host: u.host, path: decodePath(u.pathname || '/'), rawPath: u.pathname || '/', forward, proxyForm: true }
}

function decodePath(p: string): string {
  if (!p.includes('%')) return p
  try {
    return decodeURIComponent(p)
  } catch {
    return p
  }
}

function sameSecret(a: string, b: string): boolean {
  // Hash first: timingSafeEqual needs equal lengths, and the length must not leak either.
  const ha = createHash('sha256').update(a).digest()
  const hb = createHash('sha256').update(b).digest()
  return timingSafeEqual(ha, hb)
}

function hasBody(req: http.IncomingMessage): boolean {
  const te = req.headers['transfer-encoding']
  if (te !== undefined) return true
  const cl = req.headers['content-length']
  return cl !== undefined && cl !== '0'
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

/**
 * Writes bytes ahead of the response head, as `writeContinue()`, `writeProcessing()` and
 * `writeEarlyHints()` do: through `_writeRaw`, which also queues them while the response waits
 * for the socket (pipelining). The public `writeEarlyHints` cannot be used for a relay: it drops
 * hints without a `Link` field and refuses Link values that its own pattern does not know.
 */
function writeRaw(res: http.ServerResponse, text: string): void {
  ;(res as unknown as { _writeRaw(data: string, encoding: BufferEncoding): boolean })._writeRaw(text, 'latin1')
}

/**
 * The http vhost side of wsfrps: registers `proxy_type = "http"` proxies into a {@link VhostRouter}
 * and reverse-proxies matching requests over work streams of the owning client, like frps
 * (frp-wire-protocol.md §10.3): Basic auth, Host rewrite, request/response header sets,
 * X-Forwarded-*, hop-by-hop removal, keep-alive reuse of work streams, streaming both ways,
 * WebSocket (and any Upgrade) passthrough.
 *
 * Implements ProxyManager for http proxies only; combine it with the tcp manager through
 * CompositeProxyManager.
 */
export class HttpVhost implements ProxyManager {
  readonly router: VhostRouter<HttpProxy>
  private readonly byControl = new Map<ControlHandle, Map<string, HttpProxy>>()
  private readonly trusted: TrustedProxies
  private readonly reserved: (path: string) => boolean
  private readonly log: Logger
  private readonly headerTimeoutMs: number
  private readonly maxFree: number
  private readonly idleMs: number
  private readonly subDomainHost: string

  /** Throws `WsfrpError('ERR_CONFIG')` for an invalid trusted proxy entry or subDomainHost. */
  constructor(private readonly opts: HttpVhostOptions = {}) {
    this.reserved = opts.reserved ?? (() => false)
    this.router = new VhostRouter<HttpProxy>({ reserved: this.reserved })
    this.trusted = new TrustedProxies(opts.trustedProxies ?? DEFAULT_TRUSTED_PROXIES)
    this.log = opts.logger ?? noopLogger
    this.headerTimeoutMs = opts.responseHeaderTimeoutMs ?? VHOST_DEFAULTS.responseHeaderTimeoutMs
    this.maxFree = opts.maxIdleWorkConnsPerProxy ?? VHOST_DEFAULTS.maxIdleWorkConnsPerProxy
    this.idleMs = opts.idleWorkConnTimeoutMs ?? VHOST_DEFAULTS.idleWorkConnTimeoutMs
    this.subDomainHost = (opts.subDomainHost ?? '').trim().toLowerCase()
    if (this.subDomainHost !== '') {
      try {
        normalizeRouteKey({ domain: this.subDomainHost })
      } catch (err) {
        throw new WsfrpError('ERR_CONFIG', `subDomainHost "${opts.subDomainHost}" is not a valid domain: ${(err as Error).message}`)
      }
    }
  }

  /** The registered proxy `name` of `control`, if any. */
  proxy(name: string, control: ControlHandle): HttpProxy | undefined {
    return this.byControl.get(control)?.get(name)
  }

  /** Every registered http proxy. */
  *proxies(): IterableIterator<HttpProxy> {
    for (const m of this.byControl.values()) yield* m.values()
  }

  // ---- ProxyManager ----------------------------------------------------------------------------

  /**
   * Adds the routes of an http proxy (custom_domains and subdomain × locations, for
   * route_by_http_user). Resolves with remote_addr (`domain:port` per route, comma-separated, as frps).
   * Rejects with `WsfrpError('ERR_PROXY')` whose message goes to the client: route conflicts,
   * `group auth failed`, bad domains/locations/headers, subdomain without subDomainHost.
   */
  async register(def: NewProxy & { proxy_name: string }, control: ControlHandle): Promise<string> {
    const type = def.proxy_type || 'tcp'
    if (type !== 'http') throw new WsfrpError('ERR_PROXY', `proxy type [${type}] is not an http vhost proxy`)
    if (def.use_compression) throw new WsfrpError('ERR_PROXY', 'use_compression is not supported by this server')
    const name = def.proxy_name
    let perControl = this.byControl.get(control)
    if (perControl?.has(name)) throw new WsfrpError('ERR_PROXY', `proxy [${name}] is already in use`)
    const domains = this.domainsOf(def)
    const locations = Array.isArray(def.locations) && def.locations.length > 0 ? def.locations : ['']
    const httpUser = typeof def.route_by_http_user === 'string' ? def.route_by_http_user : ''
    const keys = new Map<string, RouteKey>()
    for (const domain of domains) {
      for (const location of locations) {
        if (typeof location !== 'string') throw new WsfrpError('ERR_PROXY', 'locations must be strings')
        const k = normalizeRouteKey({ domain, location, httpUser })
        keys.set(`${k.domain}\n${k.location}`, k)
      }
    }
    const headers = checkHeaderSet(def.headers, 'headers')
    const responseHeaders = checkHeaderSet(def.response_headers, 'response_headers')
    const hostRewrite = typeof def.host_header_rewrite === 'string' ? def.host_header_rewrite.trim() : ''
    if (hostRewrite !== '') {
      try {
        http.validateHeaderValue('host', hostRewrite)
      } catch {
        throw new WsfrpError('ERR_PROXY', `host_header_rewrite "${hostRewrite}" is not a valid Host value`)
      }
    }
    const auth = def.http_user || def.http_pwd ? { user: def.http_user ?? '', password: def.http_pwd ?? '' } : undefined
    const group: RouteGroup | undefined = def.group ? { name: def.group, key: def.group_key ?? '' } : undefined
    const proxy = new HttpProxy(name, control, [...keys.values()], auth, hostRewrite, headers, responseHeaders, {
      maxFree: this.maxFree,
      idleMs: this.idleMs,
    })
    const added: RouteKey[] = []
    try {
      for (const k of proxy.routes) added.push(this.router.add(k, proxy, group))
    } catch (err) {
      for (const k of added) this.router.remove(k, proxy)
      proxy.agent.destroy()
      throw err
    }
    if (perControl === undefined) {
      perControl = new Map()
      this.byControl.set(control, perControl)
    }
    perControl.set(name, proxy)
    const port = typeof this.opts.vhostPort === 'function' ? this.opts.vhostPort() : this.opts.vhostPort
    const addrs = new Set(proxy.routes.map((k) => (port === undefined || port === 80 ? k.domain : `${k.domain}:${port}`)))
    return [...addrs].join(',')
  }

  /** Removes the proxy's routes and closes its work streams (idle and in use). */
  unregister(proxyName: string, control: ControlHandle): void {
    const perControl = this.byControl.get(control)
    const proxy = perControl?.get(proxyName)
    if (proxy === undefined) return
    perControl!.delete(proxyName)
    if (perControl!.size === 0) this.byControl.delete(control)
    proxy.closed = true
    for (const k of proxy.routes) this.router.remove(k, proxy)
    proxy.agent.destroy()
  }

  /** Unregisters everything (server shutdown). */
  close(): void {
    for (const [control, m] of [...this.byControl]) for (const name of [...m.keys()]) this.unregister(name, control)
  }

  private domainsOf(def: NewProxy): string[] {
    const out: string[] = []
    const sdh = this.subDomainHost
    const custom = def.custom_domains ?? []
    if (!Array.isArray(custom)) throw new WsfrpError('ERR_PROXY', 'custom_domains must be a list of domains')
    for (const raw of custom) {
      if (typeof raw !== 'string') throw new WsfrpError('ERR_PROXY', 'custom_domains must be a list of domains')
      const d = raw.trim().toLowerCase()
      if (d === '') continue
      // frps refuses these too: a subdomain of subDomainHost is handed out through `subdomain`.
      if (sdh !== '' && d.endsWith(`.${sdh}`)) {
        throw new WsfrpError('ERR_PROXY', `custom domain [${raw}] should not belong to subDomainHost [${sdh}]`)
      }
      out.push(d)
    }
    const sub = typeof def.subdomain === 'string' ? def.subdomain.trim().toLowerCase() : ''
    if (sub !== '') {
      if (sdh === '') throw new WsfrpError('ERR_PROXY', 'subdomain is not supported: this server has no subDomainHost configured')
      if (sub.includes('.') || sub.includes('*')) throw new WsfrpError('ERR_PROXY', `'.' and '*' are not allowed in subdomain [${def.subdomain}]`)
      out.push(`${sub}.${sdh}`)
    }
    if (out.length === 0) throw new WsfrpError('ERR_PROXY', 'an http proxy needs custom_domains or subdomain')
    return out
  }

  // ---- requests --------------------------------------------------------------------------------

  /**
   * Serves `req` if a route matches its host and path: returns true and answers (proxied response
   * or an error page). Returns false without touching `res` when no route matches or the path is
   * reserved, so that the caller can serve its own page (landing page, {@link respondNoRoute}).
   * For the http.Server `'request'` event (a 100 Continue, if asked for, was already sent by Node).
   */
  handleRequest(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    return this.handle(req, res, false)
  }

  /**
   * Like {@link handleRequest}, for the http.Server `'checkContinue'` event: `Expect:
   * 100-continue` goes to the local service, and its 100 Continue is relayed to the user, so that a
   * request refused by the service (401, 413…) is never uploaded. When this returns false the caller
   * must call `res.writeContinue()` itself before serving the request.
   */
  handleCheckContinue(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    return this.handle(req, res, true)
  }

  /** Answers 404 with the `no-route` error page (for callers whose own fallback is a 404). */
  respondNoRoute(_req: http.IncomingMessage, res: http.ServerResponse): void {
    sendErrorPage(res, 404, 'no-route')
  }

  private route(req: http.IncomingMessage): { target: Target; proxy: HttpProxy } | undefined {
    const target = requestTarget(req)
    if (target === undefined || this.reserved(target.rawPath)) return undefined
    const creds = basicCredentials(target.proxyForm ? req.headers['proxy-authorization'] : req.headers.authorization)
    const m = this.router.match(target.host, target.path, creds?.user ?? '')
    return m === undefined ? undefined : { target, proxy: m.value }
  }

  /** Checks Basic auth; on failure answers 401 (407 for absolute-form requests) and returns false. */
  private authorize(req: http.IncomingMessage, res: http.ServerResponse, proxy: HttpProxy, target: Target): boolean {
    if (proxy.auth === undefined) return true
    const creds = basicCredentials(target.proxyForm ? req.headers['proxy-authorization'] : req.headers.authorization)
    if (creds !== undefined && sameSecret(creds.user, proxy.auth.user) && sameSecret(creds.password, proxy.auth.password)) return true
    // frps' realm (frp-wire-protocol.md §10.3).
    if (target.proxyForm) sendErrorPage(res, 407, 'unauthorized', { 'Proxy-Authenticate': 'Basic realm="Restricted"' })
    else sendErrorPage(res, 401, 'unauthorized', { 'WWW-Authenticate': 'Basic realm="Restricted"' })
    return false
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, checkContinue: boolean): boolean {
    const hit = this.route(req)
    if (hit === undefined) return false
    const { target, proxy } = hit
    if (!this.authorize(req, res, proxy, target)) return true
    const client = clientAddress(req, this.trusted)
    let headers: string[]
    try {
      headers = upstreamHead(req, {
        hostRewrite: proxy.hostRewrite,
        headers: proxy.headers,
        client,
        encrypted: (req.socket as { encrypted?: boolean }).encrypted === true,
        host: target.host,
        keepExpect: checkContinue && /^\s*100-continue\s*$/i.test(req.headers.expect ?? ''),
        upgrade: undefined,
      })
    } catch {
      sendErrorPage(res, 400, 'bad-request')
      return true
    }
    const body = hasBody(req)
    const retriable = !body && IDEMPOTENT.has(req.method ?? '')
    this.attempt(req, res, proxy, target, client, headers, body, retriable ? MAX_STALE_RETRIES : 0)
    return true
  }

  private attempt(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    proxy: HttpProxy,
    target: Target,
    client: ClientAddress,
    headers: string[],
    body: boolean,
    retriesLeft: number,
  ): void {
    let upReq: http.ClientRequest
    try {
      upReq = http.request({
        agent: proxy.agent,
        method: req.method,
        path: target.forward,
        headers,
        setHost: false,
        [SRC]: { src_addr: client.ip, src_port: client.ip === client.peer ? client.peerPort : 0 },
      } as http.RequestOptions & SrcOptions)
    } catch (err) {
      // Node's client refuses some bytes its server accepted (e.g. in the path): a bad request.
      this.log.debug('vhost: request cannot be forwarded', { proxy: proxy.name, error: (err as Error).message })
      sendErrorPage(res, 400, 'bad-request', { Connection: 'close' })
      return
    }
    let timer: ReturnType<typeof setTimeout> | undefined
    let timedOut = false
    let responded = false
    const stopTimer = (): void => {
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
    }
    const onUserGone = (): void => {
      // The user went away (or the response was cut): the work stream cannot be reused.
      if (!res.writableFinished) {
        upReq.destroy()
        return
      }
      if (body && !req.complete) {
        // Answered before the whole body went up (a refused `Expect: 100-continue`, a service that
        // answers early): the work stream is stuck mid-request, so it is closed rather than kept
        // waiting for bytes that may never come (Go's transport drops such a connection too). The
        // rest of the body, if the user sends it, is read and dropped so that a kept-alive user
        // connection stays in step; without a 100, Node closes that connection anyway.
        req.unpipe(upReq)
        upReq.destroy()
        req.resume()
      }
    }
    res.once('close', onUserGone)
    upReq.on('finish', () => {
      if (responded || this.headerTimeoutMs <= 0) return
      // frps' ResponseHeaderTimeout also starts once the request has been written.
      timer = setTimeout(() => {
        timedOut = true
        upReq.destroy(new WsfrpError('ERR_TIMEOUT', `no response headers within ${this.headerTimeoutMs} ms`))
      }, this.headerTimeoutMs)
    })
    upReq.on('continue', () => {
      stopTimer()
      if (!res.headersSent && !res.destroyed) res.writeContinue()
    })
    upReq.on('information', (info: http.InformationEvent) => {
      // Other interim responses (102 Processing, 103 Early Hints…) go to the user as they come,
      // except to HTTP/1.0 users, who must not get any (RFC 9110 §15.2). The response-header
      // timeout keeps running: like Go's ResponseHeaderTimeout, it waits for the final head.
      if (req.httpVersionMinor === 0 || res.headersSent || res.destroyed) return
      const head = interimHead(info.statusCode, info.statusMessage, info.rawHeaders)
      if (head !== undefined) writeRaw(res, head)
    })
    upReq.on('response', (upRes) => {
      responded = true
      stopTimer()
      this.relay(res, upRes, proxy)
    })
    upReq.on('error', (err) => {
      stopTimer()
      if (responded || res.headersSent) {
        res.destroy()
        return
      }
      res.off('close', onUserGone)
      if (res.destroyed) return
      if (retriesLeft > 0 && !timedOut && upReq.reusedSocket && !workConnErrors.has(err) && !proxy.closed) {
        // A kept-alive work stream whose local connection had just been closed: as Go's transport
        // does, an idempotent request without a body is safe to send again on another stream.
        this.log.debug('vhost: kept-alive work stream was dead, retrying', { proxy: proxy.name, error: err.message })
        this.attempt(req, res, proxy, target, client, headers, body, retriesLeft - 1)
        return
      }
      const [status, code]: [number, VhostErrorCode] = timedOut
        ? [504, 'upstream-timeout']
        : workConnErrors.has(err)
          ? [502, 'client-offline']
          : [502, 'upstream-refused']
      this.log.info('vhost: request failed', { proxy: proxy.name, host: target.host, path: target.rawPath, status, code, error: err.message })
      // A request body that was not read to its end would desynchronise a kept-alive connection.
      sendErrorPage(res, status, code, body && !req.complete ? { Connection: 'close' } : undefined)
    })
    if (body) req.pipe(upReq)
    else upReq.end()
  }

  /** Sends the local service's response to the user, streaming, trailers included. */
  private relay(res: http.ServerResponse, upRes: http.IncomingMessage, proxy: HttpProxy): void {
    if (res.destroyed) {
      upRes.destroy()
      return
    }
    const head = downstreamHead(upRes.rawHeaders, proxy.responseHeaders, false)
    try {
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, head)
    } catch (err) {
      this.log.warn('vhost: cannot relay the response head', { proxy: proxy.name, error: (err as Error).message })
      upRes.destroy()
      sendErrorPage(res, 502, 'upstream-refused')
      return
    }
    // Without a length the body is a stream (SSE, long poll, chunked): the user gets the head now
    // rather than with the first body bytes.
    if (upRes.headers['content-length'] === undefined) res.flushHeaders()
    upRes.pipe(res, { end: false })
    upRes.on('end', () => {
      if (upRes.rawTrailers.length > 0) {
        const pairs: [string, string][] = []
        for (let i = 0; i < upRes.rawTrailers.length; i += 2) pairs.push([upRes.rawTrailers[i]!, upRes.rawTrailers[i + 1]!])
        try {
          res.addTrailers(pairs)
        } catch {
          // a trailer Node will not send: dropped, the body is complete anyway
        }
      }
      res.end()
    })
    upRes.on('close', () => {
      // Cut short (the stream failed mid-body): the user must see a truncated response, not a complete one.
      if (!upRes.complete && !res.writableEnded) res.destroy()
    })
  }

  /**
   * Serves an Upgrade request (WebSocket) if a route matches: returns true and either joins the
   * user's socket to a work stream after the local service's 101, or answers on the socket (the
   * service's non-101 response, or an error page). Returns false without touching the socket
   * otherwise. For the http.Server `'upgrade'` event, after the server's own WebSocket paths.
   */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const hit = this.route(req)
    if (hit === undefined) return false
    const { target, proxy } = hit
    const sock = socket as net.Socket
    sock.on('error', (err) => this.log.debug('vhost: user socket error', { proxy: proxy.name, error: err.message }))
    // A ServerResponse on the raw socket gives error pages and non-101 answers the usual framing.
    const res = new http.ServerResponse(req)
    res.assignSocket(sock)
    res.shouldKeepAlive = false
    res.once('finish', () => sock.destroySoon())
    if (!this.authorize(req, res, proxy, target)) return true
    const client = clientAddress(req, this.trusted)
    let upReq: http.ClientRequest
    try {
      const headers = upstreamHead(req, {
        hostRewrite: proxy.hostRewrite,
        headers: proxy.headers,
        client,
        encrypted: (sock as { encrypted?: boolean }).encrypted === true,
        host: target.host,
        keepExpect: false,
        upgrade: req.headers.upgrade ?? '',
      })
      upReq = http.request({
        agent: proxy.agent,
        method: req.method,
        path: target.forward,
        headers,
        setHost: false,
        [SRC]: { src_addr: client.ip, src_port: client.ip === client.peer ? client.peerPort : 0 },
      } as http.RequestOptions & SrcOptions)
    } catch {
      sendErrorPage(res, 400, 'bad-request')
      return true
    }
    let timedOut = false
    let responded = false
    const timer =
      this.headerTimeoutMs > 0
        ? setTimeout(() => {
            timedOut = true
            upReq.destroy(new WsfrpError('ERR_TIMEOUT', `no response headers within ${this.headerTimeoutMs} ms`))
          }, this.headerTimeoutMs)
        : undefined
    sock.once('close', () => {
      if (!responded) upReq.destroy()
    })
    upReq.on('upgrade', (upRes, upSocket, upHead) => {
      responded = true
      clearTimeout(timer)
      res.detachSocket(sock)
      const fields = downstreamHead(upRes.rawHeaders, proxy.responseHeaders, true)
      let text = `HTTP/1.1 ${upRes.statusCode ?? 101} ${upRes.statusMessage ?? 'Switching Protocols'}\r\n`
      for (let i = 0; i < fields.length; i += 2) text += `${fields[i]!}: ${fields[i + 1]!}\r\n`
      sock.write(text + '\r\n')
      if (upHead.length > 0) sock.write(upHead)
      if (head.length > 0) upSocket.write(head)
      splice(sock, upSocket)
    })
    upReq.on('response', (upRes) => {
      responded = true
      clearTimeout(timer)
      this.relay(res, upRes, proxy)
    })
    upReq.on('error', (err) => {
      clearTimeout(timer)
      if (responded) {
        sock.destroy()
        return
      }
      const [status, code]: [number, VhostErrorCode] = timedOut
        ? [504, 'upstream-timeout']
        : workConnErrors.has(err)
          ? [502, 'client-offline']
          : [502, 'upstream-refused']
      this.log.info('vhost: upgrade failed', { proxy: proxy.name, host: target.host, path: target.rawPath, status, code, error: err.message })
      sendErrorPage(res, status, code)
    })
    upReq.end()
    return true
  }
}

/** Joins two duplexes both ways; an error on one tears down the other, a clean end is passed on. */
function splice(a: Duplex, b: Duplex): void {
  a.pipe(b)
  b.pipe(a)
  const wire = (x: Duplex, y: Duplex): void => {
    x.on('error', () => {}) // reported through 'close' below
    x.once('close', () => {
      const err = x.errored
      if (err) y.destroy(err)
      else if (!y.writableEnded) y.end()
    })
  }
  wire(a, b)
  wire(b, a)
}

