import type { Conn } from '../conn.js'
import { clearTimer, setTimer, type Timer } from '../timers.js'
import { pipe } from '../conn.js'
import { WsfrpError } from '../errors.js'
import { noopLogger, type Logger } from '../log.js'
import { YamuxSession } from '../mux/session.js'
import type { YamuxOptions } from '../mux/config.js'
import { encodeMessage } from '../msg/codec.js'
import type { Message, NewProxy, StartWorkConn } from '../msg/types.js'
import type { CryptoProvider } from '../crypto/ports.js'
import { authKey, deriveKey } from '../crypto/key.js'
import { cryptoConn } from '../crypto/crypto-conn.js'
import { MessageChannel } from './channel.js'
import { nowSeconds, readMessageWithin } from './util.js'
import { TOKEN_MISMATCH } from './login-errors.js'

/**
 * The version we announce in Login. frps ≤ 0.51 refuses anything below 0.18.0 and compares
 * "X.Y.Z" numerically (frp-wire-protocol.md §7.5), so we speak as the frp release whose wire
 * protocol we implement, and name ourselves in `metas`.
 */
export const FRP_COMPAT_VERSION = '0.44.0'

export interface ClientProxy {
  /** Proxy name as configured (without the `user.` prefix frp adds on the wire). */
  name: string
  type: 'tcp' | 'http'
  /** NewProxy fields besides the name and type: remote_port, custom_domains, use_encryption, … */
  fields: Omit<NewProxy, 'type' | 'proxy_name' | 'proxy_type'>
}

export type ProxyStatus = 'running' | 'error' | 'closed'

export interface ClientRoleOptions {
  token: string
  crypto: CryptoProvider
  /** frp `user`: proxy names go on the wire as `user.name`. */
  user?: string
  /** The previous run id, on reconnect, so that the server replaces our old control. */
  runId?: string
  /** Work streams the server should keep ready. Default 1. */
  poolCount?: number
  metas?: Record<string, string>
  /** Reported in Login: `os`, `arch`, `hostname`. */
  platform?: { os?: string; arch?: string; hostname?: string }
  proxies: ClientProxy[]
  /** Connects to the local target of a work stream (a TCP socket in Node, a handler in a browser). */
  dialTarget(proxy: ClientProxy, start: StartWorkConn): Promise<Conn>
  /** Application heartbeat (Ping) interval in ms; -1 disables (yamux keep-alive does the job). Default -1. */
  heartbeatIntervalMs?: number
  /** Close the session when no Pong came for this long, in ms; -1 disables. Default -1. */
  heartbeatTimeoutMs?: number
  /** Also authenticate Ping/NewWorkConn (frp `auth.additionalScopes`). */
  additionalScopes?: readonly ('HeartBeats' | 'NewWorkConns')[]
  /** Deadline for LoginResp, in ms. Default 10,000 (frpc waits 10 s). */
  loginTimeoutMs?: number
  logger?: Logger
  yamux?: Partial<YamuxOptions>
  onProxyStatus?(name: string, status: ProxyStatus, detail: string): void
}

/**
 * The frpc role over one transport: login, proxy registration, and work streams opened on the
 * server's ReqWorkConn and joined to local targets. One instance per connection; reconnecting is
 * the caller's loop (it passes the previous run id back in).
 */
export class FrpClientRole {
  private readonly _mux: YamuxSession
  private readonly _log: Logger
  private readonly _key: Uint8Array
  private readonly _proxies = new Map<string, ClientProxy>()
  private _channel: MessageChannel | undefined
  private _runId = ''
  private _heartbeatTimer: Timer | undefined = undefined
  private _lastPong = 0
  private _closing = false
  /** Resolves when the session ends: undefined after a local close(), else the cause. */
  readonly closed: Promise<Error | undefined>

  private readonly _opts: ClientRoleOptions

  constructor(transport: Conn, opts: ClientRoleOptions) {
    this._opts = opts
    this._log = opts.logger ?? noopLogger
    this._key = deriveKey(opts.crypto, opts.token)
    for (const p of opts.proxies) this._proxies.set(p.name, p)
    this._mux = new YamuxSession(transport, {
      ...opts.yamux,
      logger: this._log,
      client: true,
      // frps never opens streams (frp-wire-protocol.md §4.3); refuse any that arrive.
      onStream: (s) => s.reset(),
    })
    this.closed = this._mux.closed.then((err) => {
      clearTimer(this._heartbeatTimer)
      if (this._closing) return undefined
      return err ?? new WsfrpError('ERR_CONN_CLOSED', 'the server closed the connection')
    })
  }

  /** The yamux session (for stats). */
  get session(): YamuxSession {
    return this._mux
  }

  /** Logs in and registers every proxy. Rejects with ERR_AUTH (token refused) or ERR_LOGIN_FAILED. */
  async login(): Promise<{ runId: string; serverVersion: string }> {
    const s = this._mux.open()
    const ts = nowSeconds()
    const p = this._opts.platform ?? {}
    s.write(
      encodeMessage({
        type: 'Login',
        version: FRP_COMPAT_VERSION,
        hostname: p.hostname,
        os: p.os,
        arch: p.arch,
        user: this._opts.user,
        privilege_key: authKey(this._opts.crypto, this._opts.token, ts),
        timestamp: ts,
        run_id: this._opts.runId,
        metas: this._opts.metas,
        pool_count: this._opts.poolCount ?? 1,
      }),
    )
    let resp: Message
    let conn: Conn
    try {
      ;({ msg: resp, conn } = await readMessageWithin(s, this._opts.loginTimeoutMs ?? 10_000, 'waiting for LoginResp'))
    } catch (err) {
      this.close()
      throw new WsfrpError('ERR_LOGIN_FAILED', `login failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    }
    if (resp.type !== 'LoginResp') {
      conn.destroy()
      this.close()
      throw new WsfrpError('ERR_LOGIN_FAILED', `login failed: the server answered ${resp.type} instead of LoginResp`)
    }
    if (resp.error) {
      conn.destroy()
      this.close()
      const code = resp.error === TOKEN_MISMATCH || /token|auth/i.test(resp.error) ? 'ERR_AUTH' : 'ERR_LOGIN_FAILED'
      throw new WsfrpError(code, resp.error)
    }
    this._runId = resp.run_id ?? ''
    this._log.info('logged in', { runId: this._runId, serverVersion: resp.version })
    this._channel = new MessageChannel(cryptoConn(conn, this._key, this._opts.crypto), {
      onMessage: (m) => this._onMessage(m),
      onClose: (err) => {
        if (!this._closing) this._log.warn('control stream closed', err ? { error: err.message } : undefined)
        this._mux.close(err)
      },
    })
    for (const proxy of this._proxies.values()) this._sendNewProxy(proxy)
    this._startHeartbeat()
    return { runId: this._runId, serverVersion: resp.version ?? '' }
  }

  addProxy(p: ClientProxy): void {
    this._proxies.set(p.name, p)
    if (this._channel) this._sendNewProxy(p)
  }

  removeProxy(name: string): void {
    if (!this._proxies.delete(name)) return
    this._channel?.send({ type: 'CloseProxy', proxy_name: this._wireName(name) })
    this._opts.onProxyStatus?.(name, 'closed', 'removed')
  }

  /** GoAway, then close the transport. */
  close(): void {
    if (this._closing) return
    this._closing = true
    clearTimer(this._heartbeatTimer)
    this._mux.close()
  }

  private _wireName(name: string): string {
    return this._opts.user ? `${this._opts.user}.${name}` : name
  }

  private _localName(wire: string): string {
    const prefix = this._opts.user ? `${this._opts.user}.` : ''
    return prefix && wire.startsWith(prefix) ? wire.slice(prefix.length) : wire
  }

  private _sendNewProxy(p: ClientProxy): void {
    this._channel!.send({ ...p.fields, type: 'NewProxy', proxy_name: this._wireName(p.name), proxy_type: p.type })
  }

  private _onMessage(m: Message): void {
    switch (m.type) {
      case 'ReqWorkConn':
        void this._openWorkConn()
        return
      case 'NewProxyResp': {
        const name = this._localName(m.proxy_name ?? '')
        if (m.error) {
          this._log.warn('proxy start error', { proxy: name, error: m.error })
          this._opts.onProxyStatus?.(name, 'error', m.error)
        } else {
          this._log.info('proxy started', { proxy: name, remote: m.remote_addr })
          this._opts.onProxyStatus?.(name, 'running', m.remote_addr ?? '')
        }
        return
      }
      case 'Pong':
        this._lastPong = Date.now()
        if (m.error) {
          this._log.warn('heartbeat refused by the server: closing', { error: m.error })
          this._mux.close(new WsfrpError('ERR_AUTH', m.error))
        }
        return
      default:
        this._log.debug('ignoring an unexpected control message', { type: m.type })
    }
  }

  private async _openWorkConn(): Promise<void> {
    let stream: Conn
    try {
      stream = this._mux.open()
    } catch (err) {
      this._log.debug('cannot open a work stream', { error: (err as Error).message })
      return
    }
    const scoped = this._opts.additionalScopes?.includes('NewWorkConns')
    const ts = nowSeconds()
    stream.write(
      encodeMessage({
        type: 'NewWorkConn',
        run_id: this._runId,
        ...(scoped ? { privilege_key: authKey(this._opts.crypto, this._opts.token, ts), timestamp: ts } : {}),
      }),
    )
    let start: Message
    let work: Conn
    try {
      // frpc waits without a deadline: a pooled work stream may sit idle for a long time.
      ;({ msg: start, conn: work } = await readMessageWithin(stream, 0, 'work stream'))
    } catch {
      return // session closed, or the server dropped a surplus stream
    }
    if (start.type !== 'StartWorkConn' || start.error) {
      if (start.type === 'StartWorkConn') this._log.warn('the server refused a work connection', { error: start.error })
      work.destroy()
      return
    }
    const name = this._localName(start.proxy_name ?? '')
    const proxy = this._proxies.get(name)
    if (!proxy) {
      this._log.warn('work connection for an unknown proxy', { proxy: name })
      work.destroy()
      return
    }
    if (proxy.fields.use_encryption) work = cryptoConn(work, this._key, this._opts.crypto)
    let target: Conn
    try {
      target = await this._opts.dialTarget(proxy, start)
    } catch (err) {
      this._log.warn('cannot reach the local service', { proxy: name, error: err instanceof Error ? err.message : String(err) })
      work.destroy()
      return
    }
    pipe(work, target).catch((err: Error) => this._log.debug('work connection ended with an error', { proxy: name, error: err.message }))
  }

  private _startHeartbeat(): void {
    const every = this._opts.heartbeatIntervalMs ?? -1
    if (every <= 0) return
    const timeout = this._opts.heartbeatTimeoutMs ?? -1
    this._lastPong = Date.now()
    const tick = (): void => {
      if (this._closing || !this._channel || this._channel.isClosed) return
      if (timeout > 0 && Date.now() - this._lastPong > timeout) {
        this._log.warn('heartbeat timeout: closing the session', { timeoutMs: timeout })
        this._mux.close(new WsfrpError('ERR_TIMEOUT', `no Pong for ${timeout} ms`))
        return
      }
      const ts = nowSeconds()
      const scoped = this._opts.additionalScopes?.includes('HeartBeats')
      this._channel.send({ type: 'Ping', ...(scoped ? { privilege_key: authKey(this._opts.crypto, this._opts.token, ts), timestamp: ts } : {}) })
      this._heartbeatTimer = setTimer(tick, every, { unref: true })
    }
    this._heartbeatTimer = setTimer(tick, every, { unref: true })
  }
}
