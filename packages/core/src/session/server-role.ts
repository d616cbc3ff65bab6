import type { Conn } from '../conn.js'
import { clearTimer, setTimer, type Timer } from '../timers.js'
import { WsfrpError } from '../errors.js'
import { noopLogger, type Logger } from '../log.js'
import { YamuxSession } from '../mux/session.js'
import type { YamuxStream } from '../mux/stream.js'
import type { YamuxOptions } from '../mux/config.js'
import { encodeMessage } from '../msg/codec.js'
import type { Login, Message, NewProxy, NewWorkConn, StartWorkConn } from '../msg/types.js'
import type { CryptoProvider } from '../crypto/ports.js'
import { authKey, deriveKey } from '../crypto/key.js'
import { cryptoConn } from '../crypto/crypto-conn.js'
import { MessageChannel } from './channel.js'
import { constantTimeEqual, randomRunId, readMessageWithin, versionAtLeast } from './util.js'
import { TOKEN_MISMATCH } from './login-errors.js'
import { TOO_MANY_FAILED_LOGINS, type LoginThrottle } from './login-throttle.js'
import type { MessageCodecOptions } from '../msg/codec.js'

// Defined in login-errors.ts so the client role can use it without this module; still exported here.
export { TOKEN_MISMATCH }

/** The public side of proxies (TCP listeners, HTTP vhosts); implemented by the server package. */
export interface ProxyManager {
  /**
   * Creates the public side of a proxy. Resolves with NewProxyResp.remote_addr (tcp: ":<port>");
   * rejects with an Error whose message is sent to the client as NewProxyResp.error.
   */
  register(proxy: NewProxy & { proxy_name: string }, control: ControlHandle): Promise<string>
  /** Tears it down (CloseProxy, or the client's control ended). Must free its port at once. */
  unregister(proxyName: string, control: ControlHandle): void
}

/** One logged-in client, as the proxy side sees it. */
export interface ControlHandle {
  readonly runId: string
  readonly login: Login
  readonly remoteAddress: string
  readonly proxyNames: ReadonlySet<string>
  /** When the login happened (ms since the epoch). */
  readonly since: number
  /**
   * The `users` entry (server config `[[auth.users]]`) whose token this client logged in with;
   * undefined when it used the shared token (full rights). Not frp's `login.user`, which the
   * client chooses freely.
   */
  readonly tenant?: string
  /**
   * Takes a pooled work stream (asking the client for one if none is idle, waiting up to
   * `userConnTimeoutMs`), writes StartWorkConn, applies the proxy's use_encryption, and resolves with
   * a Conn that carries the user's bytes. Rejects with ERR_TIMEOUT or ERR_CONN_CLOSED.
   */
  startWorkConn(proxyName: string, info: Omit<StartWorkConn, 'type' | 'proxy_name'>): Promise<Conn>
  close(reason?: string): void
}

/** A per-user token: a login whose privilege key matches it belongs to `name` (a tenant). */
export interface LoginUser {
  readonly name: string
  readonly token: string
}

export interface ServerRoleOptions {
  /**
   * Shared auth token (frp `auth.token`), with full rights. When it is `""` and `users` is not
   * empty, the shared token is off and only users' tokens log in (an empty token would let anyone
   * in with full rights).
   */
  token: string
  /**
   * Per-user tokens. A login is checked against the shared token, then against the user its
   * `user` field names or, when it names none, against every user's token (each comparison in
   * constant time; all candidates are compared). Default none.
   */
  users?: readonly LoginUser[]
  /** Logged-in clients at once; a login beyond it is refused. 0 or undefined = unlimited. */
  maxClients?: number
  /** Proxies one client may hold at once; a NewProxy beyond it is refused. 0 or undefined = unlimited. */
  maxProxiesPerClient?: number
  /**
   * Failed-login rate limit per remote address. While an address is throttled its logins are
   * refused with {@link TOO_MANY_FAILED_LOGINS} without the token being checked. Default: none.
   */
  loginThrottle?: LoginThrottle
  /** Largest frp message body read or written, bytes. Default 10,240 (frp's). */
  maxMessageSize?: number
  crypto: CryptoProvider
  proxies: ProxyManager
  /** Cap on a client's pool_count (frps `transport.maxPoolCount`). Default 5. */
  maxPoolCount?: number
  /** How long a user connection waits for a work stream, in ms. Default 10,000 (frps userConnTimeout). */
  userConnTimeoutMs?: number
  /** Deadline for the first message of every stream, in ms. Default 10,000 (frps connReadTimeout). */
  loginTimeoutMs?: number
  /** frp `auth.additionalScopes`: also authenticate Ping and/or NewWorkConn. */
  additionalScopes?: readonly ('HeartBeats' | 'NewWorkConns')[]
  /** Sent as LoginResp.version. Default "0.44.0". */
  serverVersion?: string
  /**
   * Extra login check. Return an error text to refuse the login. Called after the token check
   * with the tenant the token belongs to (undefined for the shared token).
   */
  authorizeLogin?: (login: Login, remoteAddress: string, tenant: string | undefined) => string | undefined
  logger?: Logger
  /** yamux options for accepted sessions (server side is forced). */
  yamux?: Partial<YamuxOptions>
  /** Called on every login and logout (for logs and metrics). */
  onControl?: (event: 'login' | 'logout', control: ControlHandle) => void
  /**
   * Called for every refused login, after the refusal was logged and before its LoginResp is
   * written (for counters; it cannot change the outcome). A throwing callback is logged and ignored.
   */
  onLoginRefused?: (refusal: LoginRefusal) => void
}

/**
 * Why a login was refused: `throttled` (too many failures from the address, token not checked),
 * `version` (client older than 0.18.0), `token` (no token matched), `max-clients`
 * (`maxClients` reached), `policy` (`authorizeLogin` said no).
 */
export type LoginRefusalReason = 'throttled' | 'version' | 'token' | 'max-clients' | 'policy'

/** What {@link ServerRoleOptions.onLoginRefused} is told. No token or privilege key is in it. */
export interface LoginRefusal {
  reason: LoginRefusalReason
  /** The text sent to the client in LoginResp.error. */
  error: string
  /** `ip:port` of the transport. */
  remoteAddress: string
  /** The frp `user` the client sent (its own choice, not authenticated). */
  user: string | undefined
}

/** A token a login may match, with the key frp derives from it for the control stream and encryption. */
interface Credential {
  readonly tenant: string | undefined
  readonly token: string
  readonly key: Uint8Array
}

const MIN_CLIENT_VERSION: [number, number, number] = [0, 18, 0]
/** How long a refused login's transport stays open so that the answer reaches the client. */
const REFUSED_LINGER_MS = 1000

/**
 * The frps role: accepts yamux sessions, dispatches each stream on its first message (Login,
 * NewWorkConn, NewVisitorConn), keeps a registry of logged-in clients (controls) by run id, and
 * hands work streams to the proxy side. Runtime-agnostic: the server package supplies transports
 * and the ProxyManager.
 */
export class FrpServerRole {
  private readonly opts: Required<Pick<ServerRoleOptions, 'maxPoolCount' | 'userConnTimeoutMs' | 'loginTimeoutMs' | 'serverVersion'>> & ServerRoleOptions
  private readonly log: Logger
  private readonly registry = new Map<string, ServerControl>()
  private readonly sessions = new Set<YamuxSession>()
  /** @internal */ readonly key: Uint8Array
  /** The shared token's credential; undefined when it is off (empty token with users). */
  private readonly shared: Credential | undefined
  private readonly users = new Map<string, Credential>()
  private readonly codec: MessageCodecOptions

  constructor(opts: ServerRoleOptions) {
    this.opts = { maxPoolCount: 5, userConnTimeoutMs: 10_000, loginTimeoutMs: 10_000, serverVersion: '0.44.0', ...opts }
    this.log = opts.logger ?? noopLogger
    this.key = deriveKey(opts.crypto, opts.token)
    const users = opts.users ?? []
    this.shared = opts.token === '' && users.length > 0 ? undefined : { tenant: undefined, token: opts.token, key: this.key }
    for (const u of users) this.users.set(u.name, { tenant: u.name, token: u.token, key: deriveKey(opts.crypto, u.token) })
    this.codec = opts.maxMessageSize === undefined ? {} : { maxMessageSize: opts.maxMessageSize }
  }

  /** Logged-in clients by run id. */
  get controls(): ReadonlyMap<string, ControlHandle> {
    return this.registry
  }

  /**
   * Adds a per-user token at run time (the server's generated users, e.g. a browser-demo session),
   * checked like the `users` given at construction. Whether the shared token is on stays as it was
   * decided from those (a generated user never switches it off).
   *
   * @throws WsfrpError `ERR_CONFIG` when a user of that name exists or the token is empty.
   */
  addUser(user: LoginUser): void {
    if (this.users.has(user.name)) throw new WsfrpError('ERR_CONFIG', `user [${user.name}] already exists`)
    if (user.token === '') throw new WsfrpError('ERR_CONFIG', `user [${user.name}] needs a non-empty token`)
    this.users.set(user.name, { tenant: user.name, token: user.token, key: deriveKey(this.opts.crypto, user.token) })
  }

  /**
   * Removes a user added with {@link addUser} (or given at construction): its token logs in no
   * more. Its clients that are logged in stay; close them through {@link controls} if they must go.
   */
  removeUser(name: string): boolean {
    return this.users.delete(name)
  }

  /** Open transports (WebSocket sessions). */
  get sessionCount(): number {
    return this.sessions.size
  }

  /**
   * Serves one transport: yamux server side; every stream is dispatched on its first message.
   * `remoteAddress` (`ip:port`) names the peer in logs and controls; `ip`, when given, keys the
   * failed-login throttle (otherwise `remoteAddress` is parsed).
   */
  handleTransport(conn: Conn, info: { remoteAddress: string; ip?: string }): YamuxSession {
    const log = this.log.child(`[${info.remoteAddress}]`)
    const session: YamuxSession = new YamuxSession(conn, {
      ...this.opts.yamux,
      logger: log,
      client: false,
      onStream: (s) => this.onStream(s, info.remoteAddress, session, log),
    })
    this.sessions.add(session)
    if (info.ip !== undefined) sessionIps.set(session, info.ip)
    void session.closed.then((err) => {
      this.sessions.delete(session)
      log.debug('session closed', err ? { error: err.message } : undefined)
    })
    return session
  }

  /** GoAway to every session and closes every control. */
  async close(): Promise<void> {
    for (const c of [...this.registry.values()]) c.close('server is shutting down')
    const all = [...this.sessions]
    for (const s of all) s.close()
    await Promise.all(all.map((s) => s.closed))
  }

  private onStream(stream: YamuxStream, remoteAddress: string, session: YamuxSession, log: Logger): void {
    readMessageWithin(stream, this.opts.loginTimeoutMs, `stream ${stream.id}`, this.codec).then(
      ({ msg, conn }) => {
        switch (msg.type) {
          case 'Login':
            this.onLogin(msg, conn, remoteAddress, session, log)
            return
          case 'NewWorkConn':
            this.onNewWorkConn(msg, conn, log)
            return
          case 'NewVisitorConn':
            conn.write(encodeMessage({ type: 'NewVisitorConnResp', proxy_name: msg.proxy_name, error: 'visitor proxies (stcp, sudp, xtcp) are not supported by this server' }))
            conn.end()
            conn.start(drainSink(conn))
            return
          default:
            log.warn('unexpected first message on a stream: closing it', { stream: stream.id, type: msg.type })
            conn.destroy()
        }
      },
      (err: Error) => log.debug('stream dropped before its first message', { stream: stream.id, error: err.message }),
    )
  }

  private onLogin(msg: Login, conn: Conn, remoteAddress: string, session: YamuxSession, log: Logger): void {
    const refuse = (reason: LoginRefusalReason, error: string): void => {
      log.warn('login refused', { reason: error, user: msg.user, version: msg.version })
      try {
        this.opts.onLoginRefused?.({ reason, error, remoteAddress, user: msg.user })
      } catch (err) {
        log.error('onLoginRefused callback failed', { error: err instanceof Error ? err.message : String(err) })
      }
      conn.write(encodeMessage({ type: 'LoginResp', version: this.opts.serverVersion, error }))
      conn.end()
      conn.start(drainSink(conn))
      // A refused client has no business on this transport. It normally hangs up after reading the
      // answer; if it does not, the transport is closed a moment later (the answer goes out first).
      if (![...this.registry.values()].some((c) => c.onSession(session))) {
        setTimer(() => session.close(), REFUSED_LINGER_MS, { unref: true })
      }
    }
    // Checked before anything else: a throttled address learns nothing about its token.
    const throttle = this.opts.loginThrottle
    if (throttle?.blocked(addressOf(session, remoteAddress))) {
      refuse('throttled', TOO_MANY_FAILED_LOGINS)
      return
    }
    // frps ≤ 0.51 refuses clients older than 0.18.0 (frp-wire-protocol.md §7.5).
    if (!versionAtLeast(msg.version, MIN_CLIENT_VERSION)) {
      refuse('version', `version [${msg.version ?? ''}] is not compatible with this server: 0.18.0 or newer is required`)
      return
    }
    const cred = this.authenticate(msg)
    if (cred === undefined) {
      throttle?.failed(addressOf(session, remoteAddress))
      refuse('token', TOKEN_MISMATCH)
      return
    }
    let runId = msg.run_id ?? ''
    const old = runId ? this.registry.get(runId) : undefined
    const max = this.opts.maxClients ?? 0
    // A reconnecting client replaces its old control, so it does not count twice.
    if (max > 0 && this.registry.size - (old !== undefined ? 1 : 0) >= max) {
      refuse('max-clients', `too many clients: this server allows ${max} at once (limits.maxClients)`)
      return
    }
    const denied = this.opts.authorizeLogin?.(msg, remoteAddress, cred.tenant)
    if (denied) {
      refuse('policy', denied)
      return
    }
    if (old) {
      // A reconnecting client takes its run id back; the old control goes (frps does the same).
      log.info('client reconnected: replacing its previous control', { runId })
      old.close('replaced by a new login with the same run id')
    }
    if (!runId) {
      do runId = randomRunId()
      while (this.registry.has(runId))
    }
    conn.write(encodeMessage({ type: 'LoginResp', version: this.opts.serverVersion, run_id: runId }))
    const control = new ServerControl(this, runId, msg, remoteAddress, conn, session, log.child(`[${runId}]`), this.opts, cred, this.codec)
    this.registry.set(runId, control)
    control.log.info('client logged in', { version: msg.version, user: msg.user || undefined, tenant: cred.tenant, os: msg.os, arch: msg.arch, poolCount: msg.pool_count })
    this.opts.onControl?.('login', control)
    control.begin(Math.min(Math.max(msg.pool_count ?? 1, 0), this.opts.maxPoolCount))
  }

  private onNewWorkConn(msg: NewWorkConn, conn: Conn, log: Logger): void {
    const control = this.registry.get(msg.run_id ?? '')
    const reject = (error: string): void => {
      log.debug('work connection refused', { reason: error })
      conn.write(encodeMessage({ type: 'StartWorkConn', error }))
      conn.end()
      conn.start(drainSink(conn))
    }
    if (!control) {
      reject(`no client control found for run id [${msg.run_id ?? ''}]`)
      return
    }
    if (this.opts.additionalScopes?.includes('NewWorkConns')) {
      if (!keyMatches(this.opts.crypto, control.credential.token, msg.timestamp, msg.privilege_key)) {
        reject('authentication of the work connection failed')
        return
      }
    }
    control.addWorkConn(conn)
  }

  /**
   * The credential a login's privilege key matches: the shared token first, then the user that
   * `login.user` names, or else every user. Every candidate is compared (no early exit), each in
   * constant time, so the time taken does not tell which one matched.
   */
  private authenticate(msg: Login): Credential | undefined {
    const { crypto } = this.opts
    if (this.shared !== undefined && keyMatches(crypto, this.shared.token, msg.timestamp, msg.privilege_key)) return this.shared
    const named = msg.user ? this.users.get(msg.user) : undefined
    let match: Credential | undefined
    for (const c of named !== undefined ? [named] : this.users.values()) {
      if (keyMatches(crypto, c.token, msg.timestamp, msg.privilege_key) && match === undefined) match = c
    }
    return match
  }

  /** @internal */
  forget(control: ServerControl): void {
    if (this.registry.get(control.runId) === control) this.registry.delete(control.runId)
    this.opts.onControl?.('logout', control)
  }
}

/** True when `given` is frp's privilege key for `token` at `timestamp` (constant-time compare). */
function keyMatches(crypto: CryptoProvider, token: string, timestamp: number | undefined, given: string | undefined): boolean {
  const ts = timestamp ?? 0
  // authKey throws on a timestamp that is not a safe integer: a peer's bad input is just a mismatch.
  if (!Number.isSafeInteger(ts)) return false
  return constantTimeEqual(authKey(crypto, token, ts), typeof given === 'string' ? given : '')
}

/** The IP a session's transport came from (the throttle's key), else its `ip:port` text. */
const sessionIps = new WeakMap<YamuxSession, string>()
function addressOf(session: YamuxSession, remoteAddress: string): string {
  return sessionIps.get(session) ?? remoteAddress
}

/** A sink that discards everything; used for streams we only answer and close. */
function drainSink(conn: Conn): Parameters<Conn['start']>[0] {
  return { onData() {}, onDrain() {}, onEnd: () => conn.end(), onClose() {} }
}

interface Waiter {
  resolve: (c: Conn) => void
  reject: (e: Error) => void
  timer: Timer
}

/** Surplus idle work streams kept beyond the pool size before new ones are closed (frps: pool_count + 10). */
const POOL_SLACK = 10

class ServerControl implements ControlHandle {
  readonly proxyNames = new Set<string>()
  readonly since = Date.now()
  private readonly proxyDefs = new Map<string, NewProxy>()
  private readonly channel: MessageChannel
  private readonly idle: Conn[] = []
  private readonly waiters: Waiter[] = []
  private requested = 0
  private poolSize = 0
  private closed = false

  constructor(
    private readonly role: FrpServerRole,
    readonly runId: string,
    readonly login: Login,
    readonly remoteAddress: string,
    conn: Conn,
    private readonly session: YamuxSession,
    readonly log: Logger,
    private readonly opts: ServerRoleOptions & { userConnTimeoutMs: number },
    /** @internal The token this client logged in with (its work connections and encryption use it too). */
    readonly credential: Credential,
    codec: MessageCodecOptions,
  ) {
    // LoginResp went out in plaintext just before; from here both directions are AES-128-CFB with
    // a fresh IV each (frp-wire-protocol.md §6.2), keyed by the token the client logged in with.
    this.channel = new MessageChannel(
      cryptoConn(conn, credential.key, opts.crypto),
      {
        onMessage: (m) => this.onMessage(m),
        onClose: (err) => this.close(err ? `control stream failed: ${err.message}` : 'client closed the control stream'),
      },
      codec,
    )
    void session.closed.then(() => this.close('transport closed'))
  }

  get tenant(): string | undefined {
    return this.credential.tenant
  }

  onSession(s: YamuxSession): boolean {
    return this.session === s
  }

  begin(poolCount: number): void {
    this.poolSize = poolCount
    this.topUp()
  }

  private onMessage(m: Message): void {
    switch (m.type) {
      case 'NewProxy':
        void this.onNewProxy(m)
        return
      case 'CloseProxy': {
        const name = m.proxy_name ?? ''
        if (this.proxyNames.delete(name)) {
          this.proxyDefs.delete(name)
          this.opts.proxies.unregister(name, this)
          this.log.info('proxy closed by the client', { proxy: name })
        }
        return
      }
      case 'Ping': {
        if (this.opts.additionalScopes?.includes('HeartBeats')) {
          if (!keyMatches(this.opts.crypto, this.credential.token, m.timestamp, m.privilege_key)) {
            this.channel.send({ type: 'Pong', error: 'authentication of the heartbeat failed' })
            return
          }
        }
        this.channel.send({ type: 'Pong' })
        return
      }
      default:
        this.log.debug('ignoring an unexpected control message', { type: m.type })
    }
  }

  private async onNewProxy(m: NewProxy): Promise<void> {
    const name = m.proxy_name ?? ''
    const reply = (remote_addr: string | undefined, error: string | undefined): void => {
      this.channel.send({ type: 'NewProxyResp', proxy_name: name, remote_addr, error })
    }
    if (!name) {
      reply(undefined, 'proxy name is empty')
      return
    }
    if (this.proxyNames.has(name)) {
      reply(undefined, `proxy [${name}] is already in use`)
      return
    }
    const maxProxies = this.opts.maxProxiesPerClient ?? 0
    if (maxProxies > 0 && this.proxyNames.size >= maxProxies) {
      reply(undefined, `exceed the max proxies per client: this client already holds ${this.proxyNames.size} (limits.maxProxiesPerClient = ${maxProxies})`)
      return
    }
    const def = { ...m, proxy_name: name, proxy_type: m.proxy_type || 'tcp' }
    try {
      this.proxyNames.add(name)
      this.proxyDefs.set(name, def)
      const remote = await this.opts.proxies.register(def, this)
      if (this.closed) {
        this.opts.proxies.unregister(name, this)
        return
      }
      this.log.info('proxy registered', { proxy: name, type: def.proxy_type, remote })
      reply(remote, undefined)
    } catch (err) {
      this.proxyNames.delete(name)
      this.proxyDefs.delete(name)
      const text = err instanceof Error ? err.message : String(err)
      this.log.warn('proxy refused', { proxy: name, type: def.proxy_type, error: text })
      reply(undefined, text)
    }
  }

  /** Keeps idle + requested work streams at least at pool size + waiting users (no churn, no surplus). */
  private topUp(): void {
    while (!this.closed && this.idle.length + this.requested < this.poolSize + this.waiters.length) {
      this.requested++
      this.channel.send({ type: 'ReqWorkConn' })
    }
  }

  addWorkConn(conn: Conn): void {
    if (this.closed) {
      conn.destroy()
      return
    }
    if (this.requested > 0) this.requested--
    const w = this.waiters.shift()
    if (w) {
      clearTimer(w.timer)
      w.resolve(conn)
    } else if (this.idle.length < this.poolSize + POOL_SLACK) {
      this.idle.push(conn)
    } else {
      conn.destroy()
    }
    this.topUp()
  }

  private getWorkConn(): Promise<Conn> {
    if (this.closed) return Promise.reject(new WsfrpError('ERR_CONN_CLOSED', `client ${this.runId} is gone`))
    const c = this.idle.shift()
    if (c) {
      this.topUp()
      return Promise.resolve(c)
    }
    return new Promise<Conn>((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        timer: setTimer(() => {
          const i = this.waiters.indexOf(w)
          if (i >= 0) this.waiters.splice(i, 1)
          reject(new WsfrpError('ERR_TIMEOUT', `no work connection from client ${this.runId} within ${this.opts.userConnTimeoutMs} ms`))
        }, this.opts.userConnTimeoutMs),
      }
      this.waiters.push(w)
      this.topUp()
    })
  }

  async startWorkConn(proxyName: string, info: Omit<StartWorkConn, 'type' | 'proxy_name'>): Promise<Conn> {
    const def = this.proxyDefs.get(proxyName)
    if (!def) throw new WsfrpError('ERR_PROXY', `proxy [${proxyName}] is not registered by client ${this.runId}`)
    // A pooled stream may have died meanwhile (the client reset it); try a few like frps does.
    let lastErr: unknown
    for (let attempt = 0; attempt <= this.poolSize + 1; attempt++) {
      const work = await this.getWorkConn()
      try {
        work.write(encodeMessage({ type: 'StartWorkConn', proxy_name: proxyName, ...info }))
      } catch (err) {
        lastErr = err
        work.destroy()
        continue
      }
      return def.use_encryption ? cryptoConn(work, this.credential.key, this.opts.crypto) : work
    }
    throw new WsfrpError('ERR_CONN_CLOSED', `could not start a work connection for [${proxyName}]`, { cause: lastErr })
  }

  close(reason?: string): void {
    if (this.closed) return
    this.closed = true
    this.log.info('client control closed', { reason, proxies: this.proxyNames.size })
    for (const name of this.proxyNames) this.opts.proxies.unregister(name, this)
    this.proxyNames.clear()
    this.proxyDefs.clear()
    for (const c of this.idle.splice(0)) c.destroy()
    for (const w of this.waiters.splice(0)) {
      clearTimer(w.timer)
      w.reject(new WsfrpError('ERR_CONN_CLOSED', `client ${this.runId} went away: ${reason ?? 'closed'}`))
    }
    this.channel.destroy()
    this.role.forget(this)
    // One transport carries one client's control and its work streams: without the control it is useless.
    this.session.close()
  }
}
