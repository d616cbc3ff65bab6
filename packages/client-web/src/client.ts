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
  // `declare` fields set in the constructor: no separate field definitions in the bundle.
  declare readonly status: ConnectionStatus
  /** Why the connection went offline, when it failed. */
  declare readonly error?: Error
  constructor(status: ConnectionStatus, error?: Error) {
    super('status')
    this.status = status
    this.error = error
  }
}

/** Fired on a {@link WsfrpClient} as `proxy` when the server accepts, refuses or closes a proxy. */
export class ProxyStatusEvent extends Event {
  declare readonly name: string
  declare readonly status: ProxyStatus
  /** The remote address on success, the server's error text on failure. */
  declare readonly detail: string
  constructor(name: string, status: ProxyStatus, detail: string) {
    super('proxy')
    this.name = name
    this.status = status
    this.detail = detail
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
  // Closures over one EventTarget rather than a class with `this._x` fields: this code ships in the
  // size-budgeted service-worker bundle, where a closure variable minifies to one letter.
  const url = websocketURL(opts.serverURL)
  const log = opts.logger ?? noopLogger
  const cryptoProvider = opts.crypto ?? webCrypto
  const r = opts.reconnect ?? true
  const backoff: Required<ReconnectOptions> | undefined =
    r === false
      ? undefined
      : {
          initialDelayMs: 500,
          maxDelayMs: 30_000,
          factor: 2,
          jitter: 0.5,
          ...(r === true ? {} : r),
        }
  const proxies = new Map<string, WebProxy>()
  const dialAbort = new AbortController()
  const target = new EventTarget()
  let status: ConnectionStatus = 'offline'
  let runId: string | undefined
  let lastError: Error | undefined
  let role: FrpClientRole | undefined
  let closing = false
  let wake: (() => void) | undefined

  const addEntry = (p: WebProxy): void => {
    checkProxy(p)
    if (proxies.has(p.name)) throw new WsfrpError('ERR_CONFIG', `proxy ${p.name} already exists`)
    proxies.set(p.name, p)
  }

  const setStatus = (s: ConnectionStatus, error?: Error): void => {
    if (error !== undefined) lastError = error
    if (s === status) return
    status = s
    target.dispatchEvent(new StatusEvent(s, error))
  }

  const dialTarget = (proxy: ClientProxy, start: StartWorkConn): Promise<Conn> => {
    const p = proxies.get(proxy.name)
    if (p === undefined) return Promise.reject(new WsfrpError('ERR_PROXY', `proxy ${proxy.name} was removed`))
    const common = {
      proxyName: p.name,
      remoteAddr: start.src_addr,
      remotePort: start.src_port,
      logger: log,
    }
    return Promise.resolve(
      p.type === 'http'
        ? handlerTarget(p.handler, { ...opts.http, ...common })
        : streamTarget(p.handler, { ...common, highWaterMark: opts.streamHighWaterMark }),
    )
  }

  /** One connection: dial, log in, serve until it ends. Resolves with the cause of the end. */
  const session = async (onLogin: () => void): Promise<Error | undefined> => {
    const transport = await dialWebSocket(url, {
      ...opts.websocket,
      WebSocket: opts.WebSocket,
      timeoutMs: opts.connectTimeoutMs,
      signal: dialAbort.signal,
    })
    if (closing) {
      transport.destroy()
      return undefined
    }
    const ro = new FrpClientRole(transport, {
      token: opts.token,
      crypto: cryptoProvider,
      user: opts.user,
      runId,
      poolCount: opts.poolCount,
      metas: opts.metas,
      platform: { os: 'browser', arch: 'js' },
      proxies: [...proxies.values()].map(toClientProxy),
      dialTarget,
      heartbeatIntervalMs: opts.heartbeatIntervalMs,
      heartbeatTimeoutMs: opts.heartbeatTimeoutMs,
      loginTimeoutMs: opts.loginTimeoutMs,
      logger: log,
      yamux: opts.yamux,
      onProxyStatus: (name, st, detail) => target.dispatchEvent(new ProxyStatusEvent(name, st, detail)),
    })
    role = ro
    const login = await ro.login()
    if (closing) {
      ro.close()
      return undefined
    }
    runId = login.runId
    onLogin()
    setStatus('online')
    return await ro.closed
  }

  const delay = (attempt: number): number => {
    const b = backoff!
    const base = Math.min(b.maxDelayMs, b.initialDelayMs * Math.pow(b.factor, attempt))
    const j = Math.min(1, Math.max(0, b.jitter))
    return base * (1 - j * Math.random())
  }

  const loop = async (): Promise<void> => {
    let attempt = 0
    while (!closing) {
      setStatus('connecting')
      let err: Error | undefined
      try {
        err = await session(() => {
          attempt = 0
        })
      } catch (e) {
        err = e instanceof Error ? e : new Error(String(e))
      }
      role = undefined
      if (closing) break
      log.warn('disconnected', { error: err?.message })
      setStatus('offline', err)
      if (backoff === undefined || isWsfrpError(err, 'ERR_AUTH')) break
      const ms = delay(attempt++)
      log.info('reconnecting', { inMs: Math.round(ms) })
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          wake = undefined
          resolve()
        }, ms)
        wake = () => {
          clearTimeout(t)
          wake = undefined
          resolve()
        }
      })
    }
    setStatus('offline')
  }

  for (const p of opts.proxies ?? []) addEntry(p)
  const done = Promise.resolve().then(loop)

  const api: Omit<WsfrpClient, keyof EventTarget> = {
    get status() {
      return status
    },
    get runId() {
      return runId
    },
    get lastError() {
      return lastError
    },
    addProxy(proxy) {
      addEntry(proxy)
      role?.addProxy(toClientProxy(proxy))
    },
    removeProxy(name) {
      if (!proxies.delete(name)) return false
      role?.removeProxy(name)
      return true
    },
    proxyNames: () => [...proxies.keys()],
    close() {
      if (!closing) {
        closing = true
        dialAbort.abort()
        role?.close()
        wake?.()
      }
      return done
    },
  }
  // Copied as descriptors, so the getters stay getters on the EventTarget.
  return Object.defineProperties(target, Object.getOwnPropertyDescriptors(api)) as EventTarget & typeof api
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

/** The core's proxy record for `p` (exported for a test: the browser bundle's NewProxy layout must hold these fields). */
export function toClientProxy(p: WebProxy): ClientProxy {
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
    throw new WsfrpError('ERR_CONFIG', `proxy ${p.name}: http needs subdomain or customDomains`)
  }
}
