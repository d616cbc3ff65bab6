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
export interface FrpClientRole {
  /** Resolves when the session ends: undefined after a local close(), else the cause. */
  readonly closed: Promise<Error | undefined>
  /** The yamux session (for stats). */
  readonly session: YamuxSession
  /** Logs in and registers every proxy. Rejects with ERR_AUTH (token refused) or ERR_LOGIN_FAILED. */
  login(): Promise<{ runId: string; serverVersion: string }>
  addProxy(p: ClientProxy): void
  removeProxy(name: string): void
  /** GoAway, then close the transport. */
  close(): void
}

// A function that returns its object, so `new FrpClientRole(...)` keeps working for callers. A
// closure rather than a class because this ships in the browser's service-worker bundle, whose
// size is budgeted: locals minify to one letter where `this._member` does not.
export const FrpClientRole = function (transport: Conn, opts: ClientRoleOptions): FrpClientRole {
  const log = opts.logger ?? noopLogger
  const key = deriveKey(opts.crypto, opts.token)
  const proxies = new Map<string, ClientProxy>()
  for (const p of opts.proxies) proxies.set(p.name, p)
  let channel: MessageChannel | undefined
  let runId = ''
  let heartbeatTimer: Timer | undefined
  let lastPong = 0
  let closing = false
  const mux = new YamuxSession(transport, {
    ...opts.yamux,
    logger: log,
    client: true,
    // frps never opens streams (frp-wire-protocol.md §4.3); refuse any that arrive.
    onStream: (s) => s.reset(),
  })

  /** Login, Ping and NewWorkConn fields: privilege_key and timestamp. */
  const auth = (ts: number): { privilege_key: string; timestamp: number } => ({ privilege_key: authKey(opts.crypto, opts.token, ts), timestamp: ts })
  /** {@link auth} when `additionalScopes` lists `scope`, else nothing. */
  const scopedAuth = (scope: 'HeartBeats' | 'NewWorkConns'): object => (opts.additionalScopes?.includes(scope) ? auth(nowSeconds()) : {})
  const wireName = (name: string): string => (opts.user ? `${opts.user}.${name}` : name)
  const localName = (wire: string): string => {
    const prefix = opts.user ? `${opts.user}.` : ''
    return prefix && wire.startsWith(prefix) ? wire.slice(prefix.length) : wire
  }
  const sendNewProxy = (p: ClientProxy): void => {
    channel!.send({ ...p.fields, type: 'NewProxy', proxy_name: wireName(p.name), proxy_type: p.type })
  }
  const status = (name: string, st: ProxyStatus, detail: string): void => opts.onProxyStatus?.(name, st, detail)

  const onMessage = (m: Message): void => {
    switch (m.type) {
      case 'ReqWorkConn':
        void openWorkConn()
        return
      case 'NewProxyResp': {
        const name = localName(m.proxy_name ?? '')
        if (m.error) {
          log.warn('proxy start error', { proxy: name, error: m.error })
          status(name, 'error', m.error)
        } else {
          log.info('proxy started', { proxy: name, remote: m.remote_addr })
          status(name, 'running', m.remote_addr ?? '')
        }
        return
      }
      case 'Pong':
        lastPong = Date.now()
        if (m.error) {
          log.warn('heartbeat refused by the server: closing', { error: m.error })
          mux.close(new WsfrpError('ERR_AUTH', m.error))
        }
        return
      default:
        log.debug('ignoring an unexpected control message', { type: m.type })
    }
  }

  const openWorkConn = async (): Promise<void> => {
    let stream: Conn
    try {
      stream = mux.open()
    } catch (err) {
      log.debug('cannot open a work stream', { error: (err as Error).message })
      return
    }
    stream.write(encodeMessage({ type: 'NewWorkConn', run_id: runId, ...scopedAuth('NewWorkConns') }))
    let start: Message
    let work: Conn
    try {
      // frpc waits without a deadline: a pooled work stream may sit idle for a long time.
      ;({ msg: start, conn: work } = await readMessageWithin(stream, 0, 'work stream'))
    } catch {
      return // session closed, or the server dropped a surplus stream
    }
    if (start.type !== 'StartWorkConn' || start.error) {
      if (start.type === 'StartWorkConn') log.warn('the server refused a work connection', { error: start.error })
      work.destroy()
      return
    }
    const name = localName(start.proxy_name ?? '')
    const proxy = proxies.get(name)
    if (!proxy) {
      log.warn('work connection for an unknown proxy', { proxy: name })
      work.destroy()
      return
    }
    if (proxy.fields.use_encryption) work = cryptoConn(work, key, opts.crypto)
    let target: Conn
    try {
      target = await opts.dialTarget(proxy, start)
    } catch (err) {
      log.warn('cannot reach the local service', { proxy: name, error: err instanceof Error ? err.message : String(err) })
      work.destroy()
      return
    }
    pipe(work, target).catch((err: Error) => log.debug('work connection ended with an error', { proxy: name, error: err.message }))
  }

  const startHeartbeat = (): void => {
    const every = opts.heartbeatIntervalMs ?? -1
    if (every <= 0) return
    const timeout = opts.heartbeatTimeoutMs ?? -1
    lastPong = Date.now()
    const tick = (): void => {
      if (closing || !channel || channel.isClosed) return
      if (timeout > 0 && Date.now() - lastPong > timeout) {
        log.warn('heartbeat timeout: closing the session', { timeoutMs: timeout })
        mux.close(new WsfrpError('ERR_TIMEOUT', `no Pong for ${timeout} ms`))
        return
      }
      channel.send({ type: 'Ping', ...scopedAuth('HeartBeats') })
      heartbeatTimer = setTimer(tick, every, { unref: true })
    }
    heartbeatTimer = setTimer(tick, every, { unref: true })
  }

  const role: FrpClientRole = {
    closed: mux.closed.then((err) => {
      clearTimer(heartbeatTimer)
      if (closing) return undefined
      return err ?? new WsfrpError('ERR_CONN_CLOSED', 'the server closed the connection')
    }),
    session: mux,
    async login() {
      const s = mux.open()
      const p = opts.platform ?? {}
      s.write(
        encodeMessage({
          type: 'Login',
          version: FRP_COMPAT_VERSION,
          hostname: p.hostname,
          os: p.os,
          arch: p.arch,
          user: opts.user,
          ...auth(nowSeconds()),
          run_id: opts.runId,
          metas: opts.metas,
          pool_count: opts.poolCount ?? 1,
        }),
      )
      let resp: Message
      let conn: Conn
      try {
        ;({ msg: resp, conn } = await readMessageWithin(s, opts.loginTimeoutMs ?? 10_000, 'waiting for LoginResp'))
      } catch (err) {
        role.close()
        throw new WsfrpError('ERR_LOGIN_FAILED', `login failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
      }
      if (resp.type !== 'LoginResp' || resp.error) {
        conn.destroy()
        role.close()
        if (resp.type !== 'LoginResp') throw new WsfrpError('ERR_LOGIN_FAILED', `login failed: got ${resp.type}, not LoginResp`)
        const code = resp.error === TOKEN_MISMATCH || /token|auth/i.test(resp.error!) ? 'ERR_AUTH' : 'ERR_LOGIN_FAILED'
        throw new WsfrpError(code, resp.error!)
      }
      runId = resp.run_id ?? ''
      log.info('logged in', { runId, serverVersion: resp.version })
      channel = new MessageChannel(cryptoConn(conn, key, opts.crypto), {
        onMessage,
        onClose: (err) => {
          if (!closing) log.warn('control stream closed', err ? { error: err.message } : undefined)
          mux.close(err)
        },
      })
      for (const proxy of proxies.values()) sendNewProxy(proxy)
      startHeartbeat()
      return { runId, serverVersion: resp.version ?? '' }
    },
    addProxy(p) {
      proxies.set(p.name, p)
      if (channel) sendNewProxy(p)
    },
    removeProxy(name) {
      if (!proxies.delete(name)) return
      channel?.send({ type: 'CloseProxy', proxy_name: wireName(name) })
      status(name, 'closed', 'removed')
    },
    close() {
      if (closing) return
      closing = true
      clearTimer(heartbeatTimer)
      mux.close()
    },
  }
  return role
} as unknown as new (transport: Conn, opts: ClientRoleOptions) => FrpClientRole
