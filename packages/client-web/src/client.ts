/**
 * The browser client: frpc's role from the core over one WebSocket, with JavaScript handlers as the
 * local services, and a reconnect loop. Usable from a page, a worker or a service worker (no DOM
 * access; only WebSocket, streams, Request/Response, EventTarget and timers).
 */
import {
  FrpClientRole,
  WsfrpError,
  isWsfrpError,
  noopLogger,
  type ClientProxy,
  type Conn,
  type CryptoProvider,
  type Logger,
  type ProxyStatus,
  type StartWorkConn,
  type YamuxOptions,
} from '@wsfrp/core'
import { handlerTarget, type FetchHandler } from './handler-target.js'
import { streamTarget, type StreamHandler } from './stream-target.js'
import { dialWebSocket, type WebSocketConnOptions, type WebSocketConstructor } from './websocket-conn.js'
import { webCrypto } from './web-crypto.js'
import type { Http1Limits } from '@wsfrp/core'

/** The WebSocket path of frp's server (and wsfrps's default). */
const FRP_WS_PATH = '/~!frp'

interface ProxyBase {
  /** Unique per client (sent as `user.name` when `user` is set). */
  name: string
  /** AES-128-CFB on this proxy's work streams, keyed with the token. Default false. */
  useEncryption?: boolean
  /** Free-form strings sent to the server in NewProxy. */
  metadatas?: Record<string, string>
}

/** An http proxy served by a fetch-style handler (hono's `app.fetch` fits). */
export interface HttpProxy extends ProxyBase {
  type: 'http'
  /** Label prepended to the server's subdomain host. */
  subdomain?: string
  /** Host names routed to this proxy. */
  customDomains?: string[]
  /** URL path prefixes routed to this proxy; default every path. */
  locations?: string[]
  /** Replaces the Host header the handler sees (done by the server). */
  hostHeaderRewrite?: string
  /** Basic-auth credentials the server demands from HTTP clients. */
  httpUser?: string
  httpPassword?: string
  handler: FetchHandler
}

/** A tcp proxy served by a stream handler. */
export interface TcpProxy extends ProxyBase {
  type: 'tcp'
  /** Server port; 0 or absent = the server picks one. */
  remotePort?: number
  handler: StreamHandler
}

export type WebProxy = HttpProxy | TcpProxy

/** The connection's state: dialing or logging in, logged in, or down (between retries, or for good). */
export type ConnectionStatus = 'connecting' | 'online' | 'offline'

/** Reconnect policy: exponential backoff with jitter, reset after every successful login. */
export interface ReconnectOptions {
  /** First delay, in ms. Default 500. */
  initialDelayMs?: number
  /** Upper bound of the delay, in ms. Default 30,000. */
  maxDelayMs?: number
  /** Growth per failed attempt. Default 2. */
  factor?: number
  /** Fraction of each delay that is random (0 = none, 1 = "full jitter"). Default 0.5. */
  jitter?: number
}

/** Options of {@link connect}. */
export interface ConnectOptions {
  /**
   * `ws://`, `wss://`, `http://` or `https://` URL of the server; a URL without a path gets `/~!frp`.
   */
  serverURL: string
  /** frp `auth.token`. */
  token: string
  proxies?: WebProxy[]
  /** frp `user`: proxy names go on the wire as `user.name`. */
  user?: string
  /** Default: the global WebSocket in browsers, `ws` in Node (via `isomorphic-ws`). */
  WebSocket?: WebSocketConstructor
  /** Default: {@link webCrypto} (the core's own MD5/SHA-1/AES, since WebCrypto has neither MD5 nor AES-CFB). */
  crypto?: CryptoProvider
  logger?: Logger
  /** Reconnect after failures: true (default) with the defaults of {@link ReconnectOptions}, or false. */
  reconnect?: boolean | ReconnectOptions
  /** Work streams the server keeps ready. Default 1. */
  poolCount?: number
  /** Free-form strings sent in Login. */
  metas?: Record<string, string>
  /** Deadline for the WebSocket to open, in ms. Default 10,000. */
  connectTimeoutMs?: number
  /** Deadline for the login answer, in ms. Default 10,000. */
  loginTimeoutMs?: number
  /** Application Ping interval in ms; -1 (default) leaves liveness to yamux keep-alive. */
  heartbeatIntervalMs?: number
  /** Reconnect when no Pong came for this long, in ms; -1 (default) disables it. */
  heartbeatTimeoutMs?: number
  /** Limits and stream queue sizes of http handler targets. */
  http?: Http1Limits & { bodyHighWaterMark?: number }
  /** Queue size of tcp stream handlers' `readable`, in bytes. Default 64 KiB. */
  streamHighWaterMark?: number
  /** The WebSocket's send-buffer marks and drain polling. */
  websocket?: WebSocketConnOptions
  yamux?: Partial<YamuxOptions>
}

/** Fired on a {@link WsfrpClient} as `status` whenever the connection status changes. */
export class StatusEvent extends Event {
  constructor(
    readonly status: ConnectionStatus,
    /** Why the connection went offline, when it failed. */
    readonly error?: Error,
  ) {
    super('status')
  }
}

/** Fired on a {@link WsfrpClient} as `proxy` when the server accepts, refuses or closes a proxy. */
export class ProxyStatusEvent extends Event {
  constructor(
    readonly name: string,
    readonly status: ProxyStatus,
    /** The remote address on success, the server's error text on failure. */
    readonly detail: string,
  ) {
    super('proxy')
  }
}

/** The handle {@link connect} returns. Listen for `status` ({@link StatusEvent}) and `proxy` ({@link ProxyStatusEvent}). */
export interface WsfrpClient extends EventTarget {
  readonly status: ConnectionStatus
  /** The server-assigned run id of the current (or last) session; reused on reconnect. */
  readonly runId: string | undefined
  /** The last error that took the connection offline. */
  readonly lastError: Error | undefined
  /** Registers a proxy now (when online) and after every reconnect. Throws on a duplicate name. */
  addProxy(proxy: WebProxy): void
  /** Unregisters a proxy; returns false when there was none of that name. */
  removeProxy(name: string): boolean
  /** Names of the registered proxies. */
  proxyNames(): string[]
  /** Stops for good: closes the session, cancels a pending retry. Resolves when the loop has ended. */
  close(): Promise<void>
}

/**
 * Connects to a wsfrps (or frps ≥ 0.70) server and serves `proxies` with their handlers. Returns at
 * once; the first `status` event follows asynchronously, so listeners added right away see
 * `connecting`. On failure the client retries with backoff (see {@link ReconnectOptions}); a refused
 * token (`ERR_AUTH`) stops it, since retrying cannot help.
 *
 * A service worker can call this once and add or remove proxies as pages register handlers.
 */
export function connect(opts: ConnectOptions): WsfrpClient {
  return new Client(opts)
}

/** Normalises the server URL to ws(s) and adds the frp WebSocket path when none is given. */
export function websocketURL(serverURL: string): string {
  let u: URL
  try {
    u = new URL(serverURL)
  } catch {
    throw new WsfrpError('ERR_CONFIG', `serverURL is not a URL: ${serverURL}`)
  }
  if (u.protocol === 'http:') u.protocol = 'ws:'
  else if (u.protocol === 'https:') u.protocol = 'wss:'
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new WsfrpError('ERR_CONFIG', `serverURL must be ws(s):// or http(s)://, got ${u.protocol}`)
  if (u.pathname === '' || u.pathname === '/') u.pathname = FRP_WS_PATH
  // `new URL` percent-encodes nothing in "/~!frp", so the path stays byte-identical to frp's.
  return u.href
}

function toClientProxy(p: WebProxy): ClientProxy {
  const common = {
    use_encryption: p.useEncryption ? true : undefined,
    metas: p.metadatas,
  }
  if (p.type === 'http') {
    return {
      name: p.name,
      type: 'http',
      fields: {
        ...common,
        subdomain: p.subdomain,
        custom_domains: p.customDomains,
        locations: p.locations,
        host_header_rewrite: p.hostHeaderRewrite,
        http_user: p.httpUser,
        http_pwd: p.httpPassword,
      },
    }
  }
  return { name: p.name, type: 'tcp', fields: { ...common, remote_port: p.remotePort ?? 0 } }
}

function checkProxy(p: WebProxy): void {
  if (typeof p.name !== 'string' || p.name === '') throw new WsfrpError('ERR_CONFIG', 'a proxy needs a name')
  const type: string = p.type
  if (type !== 'http' && type !== 'tcp') throw new WsfrpError('ERR_CONFIG', `proxy ${p.name}: type must be "http" or "tcp"`)
  if (typeof p.handler !== 'function') throw new WsfrpError('ERR_CONFIG', `proxy ${p.name}: handler must be a function`)
  if (p.type === 'http' && !p.subdomain && !(p.customDomains && p.customDomains.length > 0)) {
    throw new WsfrpError('ERR_CONFIG', `proxy ${p.name}: an http proxy needs subdomain or customDomains`)
  }
}

class Client extends EventTarget implements WsfrpClient {
  private _status: ConnectionStatus = 'offline'
  private _runId: string | undefined
  private _lastError: Error | undefined
  private readonly _proxies = new Map<string, WebProxy>()
  private readonly _url: string
  private readonly _log: Logger
  private readonly _crypto: CryptoProvider
  private readonly _backoff: Required<ReconnectOptions> | undefined
  private _role: FrpClientRole | undefined
  private _closing = false
  private readonly _dialAbort = new AbortController()
  private _wake: (() => void) | undefined
  private readonly _done: Promise<void>

  private readonly _opts: ConnectOptions

  constructor(opts: ConnectOptions) {
    super()
    this._opts = opts
    this._url = websocketURL(opts.serverURL)
    this._log = opts.logger ?? noopLogger
    this._crypto = opts.crypto ?? webCrypto
    const r = opts.reconnect ?? true
    this._backoff =
      r === false
        ? undefined
        : {
            initialDelayMs: 500,
            maxDelayMs: 30_000,
            factor: 2,
            jitter: 0.5,
            ...(r === true ? {} : r),
          }
    for (const p of opts.proxies ?? []) this._addProxyEntry(p)
    this._done = Promise.resolve().then(() => this._loop())
  }

  get status(): ConnectionStatus {
    return this._status
  }

  get runId(): string | undefined {
    return this._runId
  }

  get lastError(): Error | undefined {
    return this._lastError
  }

  addProxy(proxy: WebProxy): void {
    this._addProxyEntry(proxy)
    this._role?.addProxy(toClientProxy(proxy))
  }

  removeProxy(name: string): boolean {
    if (!this._proxies.delete(name)) return false
    this._role?.removeProxy(name)
    return true
  }

  proxyNames(): string[] {
    return [...this._proxies.keys()]
  }

  close(): Promise<void> {
    if (!this._closing) {
      this._closing = true
      this._dialAbort.abort()
      this._role?.close()
      this._wake?.()
    }
    return this._done
  }

  private _addProxyEntry(p: WebProxy): void {
    checkProxy(p)
    if (this._proxies.has(p.name)) throw new WsfrpError('ERR_CONFIG', `proxy ${p.name} already exists`)
    this._proxies.set(p.name, p)
  }

  private _setStatus(status: ConnectionStatus, error?: Error): void {
    if (error !== undefined) this._lastError = error
    if (status === this._status) return
    this._status = status
    this.dispatchEvent(new StatusEvent(status, error))
  }

  private async _loop(): Promise<void> {
    let attempt = 0
    while (!this._closing) {
      this._setStatus('connecting')
      let err: Error | undefined
      try {
        err = await this._session(() => {
          attempt = 0
        })
      } catch (e) {
        err = e instanceof Error ? e : new Error(String(e))
      }
      this._role = undefined
      if (this._closing) break
      this._log.warn('disconnected', { error: err?.message })
      this._setStatus('offline', err)
      if (this._backoff === undefined || isWsfrpError(err, 'ERR_AUTH')) break
      const ms = this._delay(attempt++)
      this._log.info('reconnecting', { inMs: Math.round(ms) })
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this._wake = undefined
          resolve()
        }, ms)
        this._wake = () => {
          clearTimeout(t)
          this._wake = undefined
          resolve()
        }
      })
    }
    this._setStatus('offline')
  }

  /** One connection: dial, log in, serve until it ends. Resolves with the cause of the end. */
  private async _session(onLogin: () => void): Promise<Error | undefined> {
    const o = this._opts
    const transport = await dialWebSocket(this._url, {
      ...o.websocket,
      WebSocket: o.WebSocket,
      timeoutMs: o.connectTimeoutMs,
      signal: this._dialAbort.signal,
    })
    if (this._closing) {
      transport.destroy()
      return undefined
    }
    const role = new FrpClientRole(transport, {
      token: o.token,
      crypto: this._crypto,
      user: o.user,
      runId: this._runId,
      poolCount: o.poolCount,
      metas: o.metas,
      platform: { os: 'browser', arch: 'js' },
      proxies: [...this._proxies.values()].map(toClientProxy),
      dialTarget: (proxy, start) => this._dialTarget(proxy, start),
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      heartbeatTimeoutMs: o.heartbeatTimeoutMs,
      loginTimeoutMs: o.loginTimeoutMs,
      logger: this._log,
      yamux: o.yamux,
      onProxyStatus: (name, status, detail) => this.dispatchEvent(new ProxyStatusEvent(name, status, detail)),
    })
    this._role = role
    const { runId } = await role.login()
    if (this._closing) {
      role.close()
      return undefined
    }
    this._runId = runId
    onLogin()
    this._setStatus('online')
    return await role.closed
  }

  private _dialTarget(proxy: ClientProxy, start: StartWorkConn): Promise<Conn> {
    const p = this._proxies.get(proxy.name)
    if (p === undefined) return Promise.reject(new WsfrpError('ERR_PROXY', `proxy ${proxy.name} was removed`))
    const common = {
      proxyName: p.name,
      remoteAddr: start.src_addr,
      remotePort: start.src_port,
      logger: this._log,
    }
    if (p.type === 'http') return Promise.resolve(handlerTarget(p.handler, { ...this._opts.http, ...common }))
    return Promise.resolve(streamTarget(p.handler, { ...common, highWaterMark: this._opts.streamHighWaterMark }))
  }

  private _delay(attempt: number): number {
    const b = this._backoff!
    const base = Math.min(b.maxDelayMs, b.initialDelayMs * Math.pow(b.factor, attempt))
    const j = Math.min(1, Math.max(0, b.jitter))
    return base * (1 - j * Math.random())
  }
}
