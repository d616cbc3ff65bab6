/**
 * wsfrpc as a library: one client = one configuration, one WebSocket at a time to the server, and a
 * reconnect loop around core's FrpClientRole (which does one login and its proxies per transport).
 */
import { readFile } from 'node:fs/promises'
import {
  FrpClientRole,
  WsfrpError,
  isWsfrpError,
  noopLogger,
  type ClientConfig,
  type ClientProxy,
  type Conn,
  type ConnSink,
  type LogFields,
  type Logger,
  type ProxyConfig,
  type ProxyStatus,
} from '@wsfrp/core'
import { connectTcp, dialWs, nodeCrypto, type DialWsOptions, type WsConn } from '@wsfrp/node'
import { backoffDelay, type BackoffOptions } from './backoff.js'
import { ConnectProxyAgent, proxyFromEnv, type ProxyAuthHook } from './proxy-agent.js'
import { planReload, type ReloadResult } from './reload.js'
import { describeRemote, originFor, redactUrl, remotePortOf, serverUrlFor, urlHost } from './url.js'

/** Reconnect timing; every value in milliseconds. */
export interface ReconnectOptions extends BackoffOptions {
  /**
   * A session that stayed logged in longer than this resets the backoff to `initialDelayMs`, so one
   * drop after a long healthy session is retried at once, while a server that accepts and then
   * drops every session still backs off. Default 60,000.
   */
  resetAfterMs?: number
}

/** Options of {@link createClient}. */
export interface CreateClientOptions {
  /** Where the client logs (one line per event, never a secret). Default: nothing is logged. */
  logger?: Logger
  /** Backoff between connection attempts. Default: 1 s doubling to 30 s, full jitter, reset after 60 s. */
  reconnect?: ReconnectOptions
  /** WebSocket opening handshake (TCP, TLS, HTTP upgrade), in ms. Default 10,000. */
  handshakeTimeoutMs?: number
  /** Deadline for the server's LoginResp, in ms. Default 10,000 (as frpc). */
  loginTimeoutMs?: number
  /** Connecting to a proxy's local service, in ms. Default 10,000 (as frpc). */
  localDialTimeoutMs?: number
  /**
   * Re-send NewProxy for a proxy the server refused (port taken, domain in use) after this many ms;
   * 0 disables. Default 30,000 (frpc retries a start error after 30 s, frp-wire-protocol.md §8.3).
   */
  proxyRetryMs?: number
  /** Graceful close (GoAway + WebSocket close) wait in `stop()` before the socket is cut, in ms. Default 3,000. */
  closeTimeoutMs?: number
  /** Extra headers for the WebSocket upgrade request (e.g. for a reverse proxy in front of the server). */
  headers?: Record<string, string>
  /**
   * Where the proxy variables are read when `transport.proxyURL` is empty: `https_proxy`/`HTTPS_PROXY`
   * (wss), `http_proxy`/`HTTP_PROXY` (ws), `all_proxy`/`ALL_PROXY`, and `no_proxy`/`NO_PROXY`.
   * Default `process.env`; pass `{}` to ignore the environment.
   */
  env?: Record<string, string | undefined>
  /**
   * Credentials for an http(s) proxy's CONNECT, asked before the first CONNECT and after each 407.
   * Default: Basic with the proxy URL's user and password. The hook is where NTLM or Negotiate can
   * be plugged in.
   */
  proxyAuth?: ProxyAuthHook
  /**
   * Log a line when a proxy comes up (`tcp proxy running: 127.0.0.1:22 ⇐ host:6000`). Default true.
   * The CLI turns it off on the console because it prints the same line itself.
   */
  logProxyReady?: boolean
}

/** Where the client is in its life. */
export type ClientState =
  /** Created, start() not called yet. */
  | 'idle'
  /** Dialing the server or waiting for the login answer. */
  | 'connecting'
  /** Logged in. */
  | 'online'
  /** Waiting out the backoff before the next attempt. */
  | 'waiting'
  /** stop() was called, or the first login failed with `loginFailExit`. */
  | 'stopped'

/** One proxy, as `status()` and the `'proxy'` event report it. */
export interface ProxyState {
  name: string
  type: 'tcp' | 'http'
  /** The local service, `localIP:localPort`. */
  local: string
  /**
   * `pending` = sent (or to be sent once logged in), no answer yet; `running` = the server accepted
   * it; `error` = the server refused it (see `error`); `closed` = removed.
   */
  status: 'pending' | ProxyStatus
  /** The server's refusal text while `status` is `error`, else `''`. */
  error: string
  /** NewProxyResp.remote_addr as the server sent it (`":6000"`, `"a.example.com"`), `''` until running. */
  remoteAddr: string
  /** Where users reach it: `host:6000` for tcp, `http://a.example.com` for http; `''` until running. */
  remote: string
  /** tcp: the server port actually bound (also when `remotePort` was 0). */
  remotePort?: number
}

/** A snapshot from {@link WsfrpClient.status}. */
export interface ClientStatus {
  state: ClientState
  /** The WebSocket URL, without credentials. */
  url: string
  /** The run id of the current (or last) login, `''` before the first. */
  runId: string
  /** LoginResp.version of the current (or last) login. */
  serverVersion: string
  /** Connection attempts that failed in a row (0 while online). */
  failures: number
  /** The last connection problem, `''` when none since the last login. */
  lastError: string
  proxies: ProxyState[]
}

/** Payload of the `'login'` event. */
export interface LoginInfo {
  /** Without credentials. */
  url: string
  runId: string
  serverVersion: string
  /** False for the first login of this client. */
  reconnect: boolean
}

/** Payload of the `'disconnect'` event (a logged-in session ended). */
export interface DisconnectInfo {
  url: string
  /** Why; undefined for a local stop(). */
  error: Error | undefined
  /** When the next attempt starts, in ms; undefined when the client is stopping. */
  retryInMs: number | undefined
}

/** Payload of the `'retry'` event (an attempt failed or a session ended; a new attempt is scheduled). */
export interface RetryInfo {
  /** What failed: the WebSocket dial, the login, or a logged-in session. */
  phase: 'dial' | 'login' | 'session'
  error: Error
  /** Backoff step (0 for the first retry after success). */
  attempt: number
  delayMs: number
}

/** Events of a {@link WsfrpClient} and their listener arguments. */
export interface ClientEvents {
  login: [info: LoginInfo]
  disconnect: [info: DisconnectInfo]
  proxy: [state: ProxyState]
  retry: [info: RetryInfo]
}

export type ClientEventName = keyof ClientEvents

/** A running wsfrpc client; see {@link createClient}. */
export interface WsfrpClient {
  /**
   * Connects and keeps reconnecting until stop(). Resolves after the first successful login (proxies
   * are registered then, their answers follow as `'proxy'` events). Rejects when
   * `loginFailExit` is true and the first attempt fails (dial or login: `ERR_AUTH`,
   * `ERR_LOGIN_FAILED`, `ERR_CONNECT`, `ERR_TIMEOUT`), on a configuration problem (`ERR_CONFIG`, e.g.
   * an unreadable CA file), or with `ERR_CONN_ABORTED` when stop() comes first. Calling it again
   * returns the same promise.
   */
  start(): Promise<void>
  /** Closes gracefully (GoAway + WebSocket close) and stops reconnecting. Idempotent. */
  stop(): Promise<void>
  /**
   * Applies the proxies of a new (validated) configuration to the running client without dropping
   * the others: new proxies are registered, missing ones closed (CloseProxy), changed ones closed
   * and registered again; connections through untouched proxies go on. Other settings (server,
   * token, user, transport, log) need a restart: they keep their running values and are listed in
   * `ignored`. Works in any state; while offline the changes apply at the next login.
   */
  reload(config: ClientConfig): ReloadResult
  status(): ClientStatus
  on<E extends ClientEventName>(event: E, listener: (...args: ClientEvents[E]) => void): this
  off<E extends ClientEventName>(event: E, listener: (...args: ClientEvents[E]) => void): this
}

/**
 * Creates a wsfrpc client for a validated configuration (`loadClientConfigFile`,
 * `validateClientConfig`). Nothing happens until `start()`.
 *
 * - URL: `serverURL` when set, else `ws://serverAddr:serverPort/~!frp` (`wss://` with
 *   `transport.protocol = "wss"`). An `Origin: http://host[:port]` header is always sent: frps
 *   answers 403 without one (frp-wire-protocol.md §2.1).
 * - wss: the server certificate IS verified, against the system CAs or
 *   `transport.tls.trustedCaFile`, for `transport.tls.serverName` or the URL host. This is a
 *   deliberate difference from frpc, which verifies nothing unless a CA file is given.
 * - Reconnects after any loss with exponential backoff and full jitter, reusing the run id so the
 *   server replaces the old session, and registers every proxy again (§8.5). With `loginFailExit`,
 *   a failed first attempt ends start() instead.
 * - `transport.useCompression` is not implemented: such proxies are registered without compression
 *   (both sides then agree) and a warning is logged.
 */
export function createClient(config: ClientConfig, opts: CreateClientOptions = {}): WsfrpClient {
  return new ClientImpl(config, opts)
}

interface ProxyEntry {
  cfg: ProxyConfig
  role: ClientProxy
  state: ProxyState
  log: Logger
  retryTimer: ReturnType<typeof setTimeout> | undefined
  /** Last error text logged at warn, so a refusal repeated every retry is logged once. */
  loggedError: string
}

type Attempt =
  | { kind: 'failed'; phase: 'dial' | 'login'; error: Error }
  | { kind: 'session'; error: Error | undefined; livedMs: number }
  | { kind: 'stopped' }

/** frpc reports Go's GOOS/GOARCH in Login; Node's names differ for a few. */
const GO_OS: Partial<Record<NodeJS.Platform, string>> = { win32: 'windows', sunos: 'solaris' }
const GO_ARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' }

class ClientImpl implements WsfrpClient {
  private readonly url: string
  private readonly shownUrl: string
  private readonly serverHost: string
  private readonly log: Logger
  private readonly proxies = new Map<string, ProxyEntry>()
  private readonly listeners = new Map<ClientEventName, Set<unknown>>()

  private state: ClientState = 'idle'
  private runId = ''
  private serverVersion = ''
  private failures = 0
  private lastError = ''
  private loggedIn = false

  private startPromise: Promise<void> | undefined
  private settleStart: ((err?: Error) => void) | undefined
  private stopPromise: Promise<void> | undefined
  private stopping = false
  private loopDone: Promise<void> = Promise.resolve()

  private role: FrpClientRole | undefined
  private transport: WsConn | undefined
  private transportClosed: Promise<void> = Promise.resolve()
  private dialAbort: AbortController | undefined
  private wake: (() => void) | undefined
  /** The configuration in force: the one given, with the proxies of the last reload(). */
  private current: ClientConfig

  constructor(
    private readonly cfg: ClientConfig,
    private readonly opts: CreateClientOptions,
  ) {
    this.url = serverUrlFor(cfg)
    this.shownUrl = redactUrl(this.url)
    this.serverHost = urlHost(this.url)
    this.log = opts.logger ?? noopLogger
    this.current = cfg
    for (const p of cfg.proxies) this.proxies.set(p.name, this.newEntry(p))
  }

  private newEntry(p: ProxyConfig): ProxyEntry {
    return {
      cfg: p,
      role: { name: p.name, type: p.type, fields: proxyFields(p) },
      state: { name: p.name, type: p.type, local: hostPort(p.localIP, p.localPort), status: 'pending', error: '', remoteAddr: '', remote: '' },
      log: this.log.child(`[${p.name}]`),
      retryTimer: undefined,
      loggedError: '',
    }
  }

  reload(config: ClientConfig): ReloadResult {
    const { next, ...result } = planReload(this.current, config)
    this.current = { ...this.current, proxies: next }
    const role = this.stopping ? undefined : this.role
    for (const name of [...result.removed, ...result.changed]) {
      const e = this.proxies.get(name)
      if (e === undefined) continue
      clearTimeout(e.retryTimer)
      e.retryTimer = undefined
      e.log.info(result.removed.includes(name) ? 'proxy removed by a reload' : 'proxy changed by a reload: registering it again')
      // The role sends CloseProxy and reports 'closed' (through onProxyStatus, so the entry must
      // still be there); offline there is nothing to tell the server.
      if (role !== undefined) role.removeProxy(name)
      else this.setProxy(e, { status: 'closed', error: '', remoteAddr: '', remote: '', remotePort: undefined })
      this.proxies.delete(name)
    }
    for (const p of next) {
      if (!result.added.includes(p.name) && !result.changed.includes(p.name)) continue
      const e = this.newEntry(p)
      this.proxies.set(p.name, e)
      if (result.added.includes(p.name)) e.log.info('proxy added by a reload')
      if (p.transport.useCompression) e.log.warn('transport.useCompression is not supported yet: this proxy is registered without compression')
      this.emit('proxy', { ...e.state })
      role?.addProxy(e.role)
    }
    if (result.ignored.length > 0) {
      this.log.warn(`reload: ${result.ignored.join(', ')} changed; that needs a restart of the client, the running values are kept`)
    }
    return result
  }

  start(): Promise<void> {
    if (this.startPromise !== undefined) return this.startPromise
    this.startPromise = new Promise<void>((resolve, reject) => {
      this.settleStart = (err) => {
        this.settleStart = undefined
        if (err === undefined) resolve()
        else reject(err)
      }
    })
    if (this.stopping) {
      this.settleStart?.(new WsfrpError('ERR_CONN_ABORTED', 'the client was stopped before it logged in'))
      return this.startPromise
    }
    this.loopDone = this.run().catch((err: unknown) => {
      // run() handles every expected failure; this is a bug, and must still not leave start() hanging.
      const e = asError(err)
      this.log.error('client loop failed', { error: e.message })
      this.settleStart?.(e)
      this.state = 'stopped'
    })
    return this.startPromise
  }

  stop(): Promise<void> {
    if (this.stopPromise !== undefined) return this.stopPromise
    this.stopping = true
    this.stopPromise = (async () => {
      this.dialAbort?.abort()
      this.wake?.()
      this.clearProxyTimers()
      const role = this.role
      if (role !== undefined) {
        // GoAway, then a WebSocket close frame after it; wait for the close handshake so that the
        // server sees a clean close rather than a cut connection, but not forever.
        role.close()
        const transport = this.transport
        const timeoutMs = this.opts.closeTimeoutMs ?? 3_000
        let timer: ReturnType<typeof setTimeout> | undefined
        const timedOut = await Promise.race([
          this.transportClosed.then(() => false),
          new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs))),
        ])
        clearTimeout(timer)
        if (timedOut) {
          this.log.debug('the server did not complete the WebSocket close: cutting the connection', { timeoutMs })
          transport?.destroy()
        }
      }
      await this.loopDone
      this.settleStart?.(new WsfrpError('ERR_CONN_ABORTED', 'the client was stopped before it logged in'))
      this.state = 'stopped'
    })()
    return this.stopPromise
  }

  status(): ClientStatus {
    return {
      state: this.state,
      url: this.shownUrl,
      runId: this.runId,
      serverVersion: this.serverVersion,
      failures: this.failures,
      lastError: this.lastError,
      proxies: [...this.proxies.values()].map((e) => ({ ...e.state })),
    }
  }

  on<E extends ClientEventName>(event: E, listener: (...args: ClientEvents[E]) => void): this {
    let set = this.listeners.get(event)
    if (set === undefined) this.listeners.set(event, (set = new Set()))
    set.add(listener)
    return this
  }

  off<E extends ClientEventName>(event: E, listener: (...args: ClientEvents[E]) => void): this {
    this.listeners.get(event)?.delete(listener)
    return this
  }

  private emit<E extends ClientEventName>(event: E, ...args: ClientEvents[E]): void {
    const set = this.listeners.get(event)
    if (set === undefined) return
    for (const l of [...set]) {
      try {
        ;(l as (...a: ClientEvents[E]) => void)(...args)
      } catch (err) {
        // A listener's bug must not break the reconnect loop.
        this.log.error(`a '${event}' listener threw`, { error: asError(err).message })
      }
    }
  }

  // ---- the reconnect loop ----------------------------------------------------------------------

  private async run(): Promise<void> {
    let dial: DialWsOptions
    try {
      dial = await this.dialOptions()
    } catch (err) {
      this.state = 'stopped'
      this.settleStart?.(asError(err))
      return
    }
    for (const e of this.proxies.values()) {
      if (e.cfg.transport.useCompression) {
        e.log.warn('transport.useCompression is not supported yet: this proxy is registered without compression')
      }
    }
    let attempt = 0
    /** The last failure logged at warn/error, so that a failure repeated on every retry is logged once. */
    let loggedFailure = ''
    while (!this.stopping) {
      this.state = 'connecting'
      const outcome = await this.attempt(dial)
      if (outcome.kind === 'stopped' || this.stopping) break

      let error: Error
      let phase: RetryInfo['phase']
      if (outcome.kind === 'failed') {
        error = outcome.error
        phase = outcome.phase
        this.failures++
        this.lastError = this.describe(phase, error)
        const fatal = isWsfrpError(error, 'ERR_CONFIG') || (!this.loggedIn && this.cfg.loginFailExit)
        if (fatal) {
          // The caller gets this through start(); logging it too would print it twice.
          this.log.debug('giving up', { error: this.lastError })
          this.state = 'stopped'
          this.settleStart?.(new WsfrpError(isWsfrpError(error) ? error.code : 'ERR_CONNECT', this.lastError, { cause: error }))
          return
        }
      } else {
        phase = 'session'
        error = outcome.error ?? new WsfrpError('ERR_CONN_CLOSED', 'the server closed the connection')
        this.lastError = this.describe(phase, error)
        loggedFailure = ''
        if (outcome.livedMs > (this.opts.reconnect?.resetAfterMs ?? 60_000)) attempt = 0
      }

      const delayMs = backoffDelay(attempt, this.opts.reconnect)
      const fields: LogFields = { retryInMs: delayMs }
      if (phase === 'session') {
        this.log.warn(this.lastError, fields)
        this.emit('disconnect', { url: this.shownUrl, error, retryInMs: delayMs })
      } else if (this.lastError !== loggedFailure) {
        loggedFailure = this.lastError
        if (isWsfrpError(error, 'ERR_AUTH')) this.log.error(this.lastError, fields)
        else this.log.warn(this.lastError, fields)
      } else {
        this.log.debug(this.lastError, { ...fields, failures: this.failures })
      }
      this.emit('retry', { phase, error, attempt, delayMs })
      attempt++
      this.state = 'waiting'
      await this.sleep(delayMs)
    }
  }

  /** One dial + login + session. */
  private async attempt(dial: DialWsOptions): Promise<Attempt> {
    const ac = new AbortController()
    this.dialAbort = ac
    let ws: WsConn
    try {
      ws = await dialWs(this.url, { ...dial, signal: ac.signal })
    } catch (err) {
      return this.stopping ? { kind: 'stopped' } : { kind: 'failed', phase: 'dial', error: asError(err) }
    } finally {
      this.dialAbort = undefined
    }
    if (this.stopping) {
      ws.destroy()
      return { kind: 'stopped' }
    }
    const watched = watchClose(ws)
    this.transport = ws
    this.transportClosed = watched.closed
    let role: FrpClientRole
    try {
      role = this.createRole(watched.conn)
    } catch (err) {
      // Only impossible option values get here (e.g. a keep-alive interval beyond 2^31 ms).
      ws.destroy()
      const e = asError(err)
      return { kind: 'failed', phase: 'login', error: isWsfrpError(e) ? e : new WsfrpError('ERR_CONFIG', e.message, { cause: e }) }
    }
    this.role = role
    for (const e of this.proxies.values()) this.setProxy(e, { status: 'pending', error: '', remoteAddr: '', remote: '', remotePort: undefined }, false)
    let info: { runId: string; serverVersion: string }
    try {
      info = await role.login()
    } catch (err) {
      this.role = undefined
      return this.stopping ? { kind: 'stopped' } : { kind: 'failed', phase: 'login', error: asError(err) }
    }
    const since = Date.now()
    const reconnect = this.loggedIn
    this.loggedIn = true
    this.runId = info.runId
    this.serverVersion = info.serverVersion
    this.failures = 0
    this.lastError = ''
    this.state = 'online'
    this.log.info(`logged in to ${this.shownUrl}`, { runId: info.runId, serverVersion: info.serverVersion || undefined, proxies: this.proxies.size })
    this.settleStart?.()
    this.emit('login', { url: this.shownUrl, runId: info.runId, serverVersion: info.serverVersion, reconnect })

    const cause = await role.closed
    this.role = undefined
    this.clearProxyTimers()
    // The server dropped every proxy with the session; they come back with the next login.
    for (const e of this.proxies.values()) {
      if (e.state.status !== 'closed') this.setProxy(e, { status: 'pending', error: '', remoteAddr: '', remote: '', remotePort: undefined }, false)
    }
    if (this.stopping) {
      this.emit('disconnect', { url: this.shownUrl, error: undefined, retryInMs: undefined })
      return { kind: 'stopped' }
    }
    return { kind: 'session', error: cause, livedMs: Date.now() - since }
  }

  /** The frpc role for one transport, with this client's configuration. */
  private createRole(conn: Conn): FrpClientRole {
    const role: FrpClientRole = new FrpClientRole(conn, {
      token: this.cfg.auth.token,
      crypto: nodeCrypto,
      user: this.cfg.user === '' ? undefined : this.cfg.user,
      runId: this.runId === '' ? undefined : this.runId,
      poolCount: this.cfg.transport.poolCount,
      metas: Object.keys(this.cfg.metadatas).length > 0 ? { ...this.cfg.metadatas } : undefined,
      platform: { os: GO_OS[process.platform] ?? process.platform, arch: GO_ARCH[process.arch] ?? process.arch },
      proxies: [...this.proxies.values()].map((e) => e.role),
      dialTarget: (p) => this.dialLocal(p),
      heartbeatIntervalMs: seconds(this.cfg.transport.heartbeatInterval),
      heartbeatTimeoutMs: seconds(this.cfg.transport.heartbeatTimeout),
      additionalScopes: this.cfg.auth.additionalScopes,
      loginTimeoutMs: this.opts.loginTimeoutMs ?? 10_000,
      logger: quietRoleLogger(this.log),
      // Below nginx's default 60 s proxy_read_timeout, so an idle tunnel behind it stays up. A short
      // interval asks for quick detection of a dead server: a ping may take at most one interval
      // (never more than yamux's 10 s) to come back.
      yamux: {
        keepAliveInterval: this.cfg.transport.tcpMuxKeepaliveInterval * 1000,
        pingTimeout: Math.min(10_000, this.cfg.transport.tcpMuxKeepaliveInterval * 1000),
      },
      onProxyStatus: (name, status, detail) => {
        if (this.role === role) this.onProxyStatus(role, name, status, detail)
      },
    })
    return role
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.wake = undefined
        resolve()
      }
      // Not unref'd: a CLI waiting to reconnect must stay alive.
      const timer = setTimeout(done, ms)
      this.wake = done
    })
  }

  private async dialOptions(): Promise<DialWsOptions> {
    const secure = this.url.startsWith('wss:')
    const tlsCfg = this.cfg.transport.tls
    const dial: DialWsOptions = {
      origin: originFor(this.url),
      handshakeTimeoutMs: this.opts.handshakeTimeoutMs ?? 10_000,
      // Our choice, unlike frpc (which skips verification without a CA file): verify by default.
      rejectUnauthorized: true,
    }
    if (this.opts.headers !== undefined) dial.headers = { ...this.opts.headers }
    if (secure && tlsCfg.serverName !== '') dial.servername = tlsCfg.serverName
    if (secure && tlsCfg.trustedCaFile !== '') {
      try {
        dial.ca = await readFile(tlsCfg.trustedCaFile)
      } catch (err) {
        throw new WsfrpError('ERR_CONFIG', `cannot read transport.tls.trustedCaFile ${tlsCfg.trustedCaFile}: ${asError(err).message}`, { cause: err })
      }
      // Node ignores a CA file without a PEM certificate; the dial would then fail with a puzzling
      // "self-signed certificate" instead of naming the file.
      if (!dial.ca.includes('-----BEGIN CERTIFICATE-----')) {
        throw new WsfrpError('ERR_CONFIG', `transport.tls.trustedCaFile ${tlsCfg.trustedCaFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`)
      }
    } else if (!secure && (tlsCfg.trustedCaFile !== '' || tlsCfg.serverName !== '')) {
      this.log.debug('transport.tls settings apply only to wss:// URLs; ignoring them', { url: this.shownUrl })
    }
    // transport.proxyURL wins; otherwise the usual environment variables, as curl and Go read them.
    let proxyUrl = this.cfg.transport.proxyURL
    let source = 'transport.proxyURL'
    if (proxyUrl === '') {
      const found = proxyFromEnv(this.url, this.opts.env ?? process.env)
      if (found !== undefined && 'bypass' in found) {
        const b = found.bypass
        this.log.info(`not using the proxy from ${b.source}: ${b.noProxy} matches ${urlHost(this.url)} (${b.entry})`)
      } else if (found !== undefined) {
        proxyUrl = found.proxy.url
        source = found.proxy.source
      }
    }
    if (proxyUrl !== '') {
      let agent: ConnectProxyAgent
      try {
        const o = { proxyUrl, secureTarget: secure, timeoutMs: dial.handshakeTimeoutMs, source }
        agent = new ConnectProxyAgent(this.opts.proxyAuth !== undefined ? { ...o, auth: this.opts.proxyAuth } : o)
      } catch (err) {
        throw new WsfrpError('ERR_CONFIG', asError(err).message, { cause: err })
      }
      dial.agent = agent
      this.log.info(`using proxy ${agent.label} (${source})`)
    }
    return dial
  }

  private async dialLocal(p: ClientProxy): Promise<Conn> {
    const e = this.proxies.get(p.name)
    if (e === undefined) throw new WsfrpError('ERR_PROXY', `unknown proxy ${p.name}`)
    // A refused local service ends this one work stream (the role logs it); the session goes on.
    return connectTcp(e.cfg.localIP, e.cfg.localPort, { timeoutMs: this.opts.localDialTimeoutMs ?? 10_000 })
  }

  // ---- proxies -------------------------------------------------------------------------------

  private onProxyStatus(role: FrpClientRole, name: string, status: ProxyStatus, detail: string): void {
    const e = this.proxies.get(name)
    if (e === undefined) {
      this.log.debug('status for a proxy we do not have', { proxy: name, status })
      return
    }
    if (status === 'running') {
      const remote = describeRemote(e.cfg.type, detail, this.serverHost)
      const remotePort = e.cfg.type === 'tcp' ? remotePortOf(detail) : undefined
      e.loggedError = ''
      if (this.opts.logProxyReady ?? true) e.log.info(readyLine(e.state, remote))
      this.setProxy(e, { status, error: '', remoteAddr: detail, remote, remotePort })
      return
    }
    if (status === 'error') {
      const retryMs = this.opts.proxyRetryMs ?? 30_000
      if (detail !== e.loggedError) {
        e.loggedError = detail
        e.log.warn(`${e.cfg.type} proxy start error: ${detail}`, retryMs > 0 ? { retryInMs: retryMs } : undefined)
      } else {
        e.log.debug(`${e.cfg.type} proxy start error: ${detail}`)
      }
      this.setProxy(e, { status, error: detail, remoteAddr: '', remote: '', remotePort: undefined })
      if (retryMs > 0) {
        clearTimeout(e.retryTimer)
        e.retryTimer = setTimeout(() => {
          e.retryTimer = undefined
          if (this.role !== role || this.stopping || e.state.status !== 'error') return
          e.log.debug('registering the proxy again')
          this.setProxy(e, { status: 'pending', error: '' }, false)
          role.addProxy(e.role)
        }, retryMs)
        // The session itself keeps the process alive; a pending retry must not.
        e.retryTimer.unref?.()
      }
      return
    }
    e.log.info(`${e.cfg.type} proxy closed${detail !== '' ? `: ${detail}` : ''}`)
    this.setProxy(e, { status, error: '', remoteAddr: '', remote: '', remotePort: undefined })
  }

  private setProxy(e: ProxyEntry, patch: Partial<ProxyState>, always = true): void {
    const before = e.state
    e.state = { ...before, ...patch }
    if (patch.remotePort === undefined && 'remotePort' in patch) delete e.state.remotePort
    const changed = (Object.keys(e.state) as (keyof ProxyState)[]).some((k) => e.state[k] !== before[k]) || 'remotePort' in before !== 'remotePort' in e.state
    if (always || changed) this.emit('proxy', { ...e.state })
  }

  private clearProxyTimers(): void {
    for (const e of this.proxies.values()) {
      clearTimeout(e.retryTimer)
      e.retryTimer = undefined
    }
  }

  /** One line for a failed attempt or a lost session, with the URL and without credentials. */
  private describe(phase: RetryInfo['phase'], err: Error): string {
    if (phase === 'session') return `disconnected from ${this.shownUrl}: ${this.scrub(err.message)}`
    if (phase === 'login') return `login to ${this.shownUrl} failed: ${this.scrub(err.message.replace(/^login failed: /, ''))}`
    // dialWs starts its messages with "WebSocket dial <url, credentials included> …": drop that.
    let reason = err.message
    const prefix = `WebSocket dial ${this.url} `
    if (reason.startsWith(prefix)) reason = reason.slice(prefix.length).replace(/^failed: /, '')
    // ws's wording for a non-101 answer; a 404 almost always means a wrong path.
    if (/^Unexpected server response: 404$/.test(reason)) reason += ' (wrong path? frps serves the WebSocket only at /~!frp)'
    const code = tlsErrorCode(err)
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') reason = `${reason.trimEnd()} (set transport.tls.serverName to a name the certificate holds)`
    else if (code !== undefined && UNTRUSTED_CERT.has(code)) reason += ' (trust its CA with transport.tls.trustedCaFile)'
    return `connect to ${this.shownUrl} failed: ${this.scrub(reason)}`
  }

  private scrub(msg: string): string {
    return this.url === this.shownUrl ? msg : msg.split(this.url).join(this.shownUrl)
  }
}

/** The line printed when a proxy is up: `tcp proxy running: 127.0.0.1:22 ⇐ host:6000`. */
export function readyLine(p: Pick<ProxyState, 'type' | 'local'>, remote: string): string {
  return `${p.type} proxy running: ${p.local} ⇐ ${remote}`
}

/** The NewProxy fields besides name and type, left out when empty (frpc's JSON uses omitempty). */
function proxyFields(p: ProxyConfig): ClientProxy['fields'] {
  const f: ClientProxy['fields'] = {}
  if (p.transport.useEncryption) f.use_encryption = true
  // use_compression is never sent: without snappy here, both sides must agree on "off".
  if (p.loadBalancer.group !== '') {
    f.group = p.loadBalancer.group
    f.group_key = p.loadBalancer.groupKey
  }
  if (Object.keys(p.metadatas).length > 0) f.metas = { ...p.metadatas }
  if (p.type === 'tcp') {
    if (p.remotePort > 0) f.remote_port = p.remotePort
    return f
  }
  if (p.customDomains.length > 0) f.custom_domains = [...p.customDomains]
  if (p.subdomain !== '') f.subdomain = p.subdomain
  if (p.locations.length > 0) f.locations = [...p.locations]
  if (p.httpUser !== '') f.http_user = p.httpUser
  if (p.httpPassword !== '') f.http_pwd = p.httpPassword
  if (p.hostHeaderRewrite !== '') f.host_header_rewrite = p.hostHeaderRewrite
  if (Object.keys(p.requestHeaders.set).length > 0) f.headers = { ...p.requestHeaders.set }
  if (Object.keys(p.responseHeaders.set).length > 0) f.response_headers = { ...p.responseHeaders.set }
  if (p.routeByHTTPUser !== '') f.route_by_http_user = p.routeByHTTPUser
  return f
}

/** The role logs logins and proxy results itself; we log those with more context, so its copies go to debug. */
function quietRoleLogger(base: Logger): Logger {
  return {
    debug: (m, f) => base.debug(m, f),
    info: (m, f) => base.debug(m, f),
    warn: (m, f) => (m === 'proxy start error' ? base.debug(m, f) : base.warn(m, f)),
    error: (m, f) => base.error(m, f),
    child: (prefix) => quietRoleLogger(base.child(prefix)),
  }
}

/** Passes a Conn through, and tells when it has closed (for a graceful stop). */
function watchClose(inner: WsConn): { conn: WsConn; closed: Promise<void> } {
  let done!: () => void
  const closed = new Promise<void>((r) => (done = r))
  const conn: WsConn = {
    get canPause() {
      return inner.canPause
    },
    start(sink: ConnSink) {
      inner.start({
        onData: (c) => sink.onData(c),
        onDrain: () => sink.onDrain(),
        onEnd: () => sink.onEnd(),
        onClose: (err) => {
          done()
          sink.onClose(err)
        },
      })
    },
    write: (c) => inner.write(c),
    writev: (cs) => inner.writev(cs),
    end: () => inner.end(),
    destroy: (err) => inner.destroy(err),
    pause: () => inner.pause(),
    resume: () => inner.resume(),
  }
  return { conn, closed }
}

function hostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`
}

/** Config seconds (-1 = off) to the role's milliseconds (-1 = off). */
function seconds(s: number): number {
  return s > 0 ? s * 1000 : -1
}

/** OpenSSL's codes for a certificate chain that does not lead to a trusted CA. */
const UNTRUSTED_CERT = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT'])

/** The `code` of a TLS failure somewhere in an error's cause chain. */
function tlsErrorCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code
    if (code !== undefined && (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || UNTRUSTED_CERT.has(code))) return code
  }
  return undefined
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}
