/**
 * wsfrpc's admin API, shaped like frpc's (`webServer` in the client config): a small HTTP server
 * that `wsfrpc reload` and `wsfrpc status` talk to.
 *
 * | request | answer |
 * |---|---|
 * | `GET /api/status` | `{ [type]: AdminProxyStatus[] }`, frpc's shape (every type wsfrpc knows, `[]` included) |
 * | `GET` or `POST /api/reload` | reads the configuration file again and applies its proxies: `200` {@link ReloadResult}; `400` `{ error, problems }` when the file does not validate |
 * | `GET /healthz` | `200 ok`, without credentials (as frpc) |
 *
 * With `webServer.user` or `webServer.password` set every other request needs Basic auth with both
 * (compared in constant time: both sides are hashed first). Without them the listener must be bound
 * to a loopback address: anyone who reaches it may reload the client, so wsfrpc refuses to serve it
 * publicly without a password, where frpc would.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import * as http from 'node:http'
import { isIP } from 'node:net'
import { LoginThrottle, WsfrpError, noopLogger, type Logger, type WebServerConfig } from '@wsfrp/core'
import { isLoopbackAddress } from '@wsfrp/node'
import type { ProxyState, WsfrpClient } from './client.js'
import type { ReloadResult } from './reload.js'

/** One proxy in `GET /api/status`: frpc's ProxyStatusResp fields. */
export interface AdminProxyStatus {
  name: string
  type: string
  /** frpc's words: `"wait start"`, `"running"`, `"start error"`, `"closed"`. */
  status: string
  /** The server's refusal while `status` is `"start error"`, else `""`. */
  err: string
  /** `localIP:localPort`. */
  local_addr: string
  /** Always `""` (wsfrpc has no plugins). */
  plugin: string
  /** Where users reach it (`host:6000`, `http://a.example.com`); `""` until running. */
  remote_addr: string
}

/** What `GET /api/status` answers: proxies by type. */
export type AdminStatus = Record<string, AdminProxyStatus[]>

/** The outcome of a reload asked for through the API (or SIGHUP). */
export type ReloadOutcome = { ok: true; result: ReloadResult } | { ok: false; error: string; problems: string[] }

export interface AdminServerOptions {
  /** The validated `webServer` section (`port` must not be 0). */
  config: WebServerConfig
  client: Pick<WsfrpClient, 'status'>
  /** Reads the configuration file again and applies it (the CLI's SIGHUP path). */
  reload: () => Promise<ReloadOutcome>
  logger?: Logger
}

/** frpc's status words for wsfrpc's proxy states. */
const FRPC_STATUS: Record<ProxyState['status'], string> = { pending: 'wait start', running: 'running', error: 'start error', closed: 'closed' }
/** Types listed even when empty, as frpc lists every type it serves. */
const TYPES = ['tcp', 'http'] as const
/** Largest request body read on `POST /api/reload` (it is ignored: the file is what is reloaded). */
export const ADMIN_MAX_BODY = 64 * 1024

/** `GET /api/status` from a client's status. */
export function adminStatus(client: Pick<WsfrpClient, 'status'>): AdminStatus {
  const out: AdminStatus = {}
  for (const t of TYPES) out[t] = []
  for (const p of client.status().proxies) {
    ;(out[p.type] ??= []).push({
      name: p.name,
      type: p.type,
      status: FRPC_STATUS[p.status],
      err: p.error,
      local_addr: p.local,
      plugin: '',
      remote_addr: p.remote,
    })
  }
  return out
}

/** Failed admin API sign-ins one address may make in a burst; they are forgiven at this many a minute. */
export const ADMIN_SIGN_IN_FAILURES = 5

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest()

/** True when `authorization` is Basic with exactly `user` and `password` (constant time). */
function basicMatches(authorization: string | undefined, user: Buffer, password: Buffer): boolean {
  const m = authorization === undefined ? null : /^basic[ \t]+([A-Za-z0-9+/=._~-]+)[ \t]*$/i.exec(authorization)
  const decoded = m === null ? '' : Buffer.from(m[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  // Both compared even when the first differs, so the time does not say which one was wrong.
  const userOk = timingSafeEqual(sha256(colon < 0 ? '\u0000' : decoded.slice(0, colon)), user)
  const passwordOk = timingSafeEqual(sha256(colon < 0 ? '\u0000' : decoded.slice(colon + 1)), password)
  return colon >= 0 && userOk && passwordOk
}


function send(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? `${body}\n` : `${JSON.stringify(body)}\n`
  res.writeHead(status, {
    'Content-Type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...extra,
  })
  res.end(req.method === 'HEAD' ? undefined : text)
}

/** A running admin server; see {@link startAdminServer}. */
export interface AdminServer {
  /** Where it listens. */
  readonly address: { address: string; port: number }
  /** Stops listening and closes its connections. */
  close(): Promise<void>
}

/**
 * Starts the admin API on `webServer.addr:webServer.port`.
 *
 * @throws WsfrpError `ERR_CONFIG` when `port` is 0, or when the listener would not be loopback-only
 *   and no `user`/`password` is set; `ERR_CONNECT` when the port cannot be bound.
 */
export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const { addr, port, user, password } = opts.config
  const log = opts.logger ?? noopLogger
  if (port === 0) throw new WsfrpError('ERR_CONFIG', 'the admin API needs webServer.port')
  const withAuth = user !== '' || password !== ''
  const refuse = (bound: string): WsfrpError =>
    new WsfrpError('ERR_CONFIG', `the admin API on ${bound}:${port} would be public without a password: set webServer.user and webServer.password, or bind webServer.addr to 127.0.0.1`)
  // An address literal is judged before binding, so a refused public listener never exists.
  if (!withAuth && isIP(addr) !== 0 && !isLoopbackAddress(addr)) throw refuse(addr)
  const userHash = sha256(user)
  const passwordHash = sha256(password)
  /** Failed sign-ins per address: ADMIN_SIGN_IN_FAILURES per minute, then 429 (docs/LIMITS.md). */
  const signIns = new LoginThrottle({ maxFailures: ADMIN_SIGN_IN_FAILURES, windowMs: 60_000 })
  // One reload at a time, in the order asked (SIGHUP and the API share the CLI's queue through `reload`).
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/healthz') return send(req, res, 200, 'ok')
    if (withAuth) {
      const authorization = req.headers.authorization
      const peer = req.socket.remoteAddress ?? 'unknown'
      // Only requests that present credentials count, and a throttled address is answered before
      // its credentials are checked, so guessing gets nowhere (as for the dashboard of wsfrps).
      const wait = authorization === undefined ? 0 : signIns.retryAfterMs(peer)
      if (wait > 0) {
        req.resume()
        return send(req, res, 429, { error: 'too many failed sign-ins, retry later' }, { 'Retry-After': String(Math.ceil(wait / 1000)) })
      }
      if (!basicMatches(authorization, userHash, passwordHash)) {
        if (authorization !== undefined) signIns.failed(peer)
        req.resume()
        return send(req, res, 401, { error: 'authentication required' }, { 'WWW-Authenticate': 'Basic realm="wsfrpc admin", charset="UTF-8"' })
      }
    }
    const method = req.method ?? 'GET'
    if (path === '/api/status') {
      req.resume()
      if (method !== 'GET' && method !== 'HEAD') return send(req, res, 405, { error: 'method not allowed' }, { Allow: 'GET, HEAD' })
      return send(req, res, 200, adminStatus(opts.client))
    }
    if (path === '/api/reload') {
      // frpc answers GET; POST is accepted too, as a reload changes state. Its body is not used.
      if (method !== 'GET' && method !== 'POST') {
        req.resume()
        return send(req, res, 405, { error: 'method not allowed' }, { Allow: 'GET, POST' })
      }
      let seen = 0
      req.on('data', (c: Buffer) => {
        seen += c.length
        if (seen > ADMIN_MAX_BODY) req.destroy()
      })
      opts.reload().then(
        (r) => (r.ok ? send(req, res, 200, r.result) : send(req, res, 400, { error: r.error, problems: r.problems })),
        (err: unknown) => {
          log.error('admin API: reload failed', { error: err instanceof Error ? err.message : String(err) })
          send(req, res, 500, { error: 'reload failed (see the client log)' })
        },
      )
      return
    }
    req.resume()
    send(req, res, 404, { error: 'not found' })
  })
  // A slow or idle client of the admin API must not hold a socket for long.
  server.headersTimeout = 10_000
  server.requestTimeout = 30_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? `port ${port} is already in use` : err.message
      reject(new WsfrpError('ERR_CONNECT', `cannot listen on ${addr}:${port} (webServer, the admin API): ${why}`, { cause: err }))
    })
    server.listen(port, addr, () => resolve())
  })
  const a = server.address()
  const address = typeof a === 'object' && a !== null ? { address: a.address, port: a.port } : { address: addr, port }
  // Decided again on the address really bound (webServer.addr may be a host name).
  if (!withAuth && !isLoopbackAddress(address.address)) {
    await new Promise<void>((resolve) => server.close(() => resolve()))
    throw refuse(address.address)
  }
  server.removeAllListeners('error')
  server.on('error', (err) => log.error('admin API listener error', { error: err.message }))
  log.info(`admin API listening on ${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`, { auth: withAuth })
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/** Where `wsfrpc reload|status` connects for a `webServer` section: a wildcard address means this host. */
export function adminURL(config: WebServerConfig, path: string): string {
  let host = config.addr
  if (host === '0.0.0.0' || host === '') host = '127.0.0.1'
  else if (host === '::' || host === '[::]') host = '::1'
  if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`
  return `http://${host}:${config.port}${path}`
}

/**
 * Calls the admin API of a running wsfrpc (the `reload` and `status` subcommands). Resolves with the
 * status code and the parsed JSON body (undefined when the body is not JSON).
 *
 * @throws WsfrpError `ERR_CONNECT` when it cannot connect, `ERR_TIMEOUT` after `timeoutMs`.
 */
export function callAdmin(config: WebServerConfig, method: 'GET' | 'POST', path: string, timeoutMs = 30_000): Promise<{ status: number; body: unknown }> {
  const url = adminURL(config, path)
  const headers: Record<string, string> = {}
  if (config.user !== '' || config.password !== '') headers.Authorization = `Basic ${Buffer.from(`${config.user}:${config.password}`).toString('base64')}`
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let body: unknown
        try {
          body = JSON.parse(text)
        } catch {
          body = undefined
        }
        resolve({ status: res.statusCode ?? 0, body })
      })
      res.on('error', (err) => reject(new WsfrpError('ERR_CONNECT', `the admin API at ${url} failed: ${err.message}`, { cause: err })))
    })
    req.on('timeout', () => req.destroy(new WsfrpError('ERR_TIMEOUT', `the admin API at ${url} did not answer within ${timeoutMs} ms`)))
    req.on('error', (err) =>
      reject(isTimeout(err) ? err : new WsfrpError('ERR_CONNECT', `cannot reach the admin API at ${url} (is wsfrpc running with webServer.port = ${config.port}?): ${err.message}`, { cause: err })),
    )
    req.end()
  })
}

const isTimeout = (err: unknown): boolean => err instanceof WsfrpError && err.code === 'ERR_TIMEOUT'
