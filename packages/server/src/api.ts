/**
 * The REST API of the dashboard, shaped like frps's (JSON in camelCase, as frp ≥ 0.53 answers;
 * frp-wire-protocol.md §11.1), with a few wsfrp fields added. Every answer is built from a
 * whitelist: no token, password, privilege key, metas or proxy secret can reach it.
 *
 * | request | answer |
 * |---|---|
 * | `GET api/serverinfo` | {@link ServerInfo} |
 * | `GET api/proxy/:type` | `{ proxies: ProxyInfo[] }` (online proxies of that type) |
 * | `GET api/proxy/:type/:name` | {@link ProxyInfo}, or 404 |
 * | `GET api/traffic/:name` | `{ name, trafficIn: number[7], trafficOut: number[7] }` (index 0 = today), or 404 |
 * | `GET api/clients` | {@link ClientInfo}[] |
 *
 * Who asks decides what is seen (docs/DASHBOARD.md, "Users"): the operator (`viewer` undefined)
 * sees everything; a user of `[[auth.users]]` only its own clients, its own proxies and their
 * traffic, and server totals summed over those alone. Anything else of another user is a 404, the
 * same answer as a name nobody uses, so a user cannot even learn which names are taken.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ControlHandle, PortRange } from '@wsfrp/core'
import type { ProxyConf, ProxyStats } from './metrics.js'
import type { WsfrpServer } from './server.js'
import { visibleTo } from './tenants.js'
import { VERSION } from './version.js'

/** `GET /api/serverinfo`. The first block are frps's fields, then wsfrp's. */
export interface ServerInfo {
  version: string
  /** The port the server listens on (the real one when `bindPort` is 0). */
  bindPort: number
  vhostHTTPPort: number
  /** Not served by wsfrps: always 0 (kept for frp dashboards). */
  vhostHTTPSPort: number
  tcpmuxHTTPConnectPort: number
  kcpBindPort: number
  quicBindPort: number
  subdomainHost: string
  maxPoolCount: number
  maxPortsPerClient: number
  heartbeatTimeout: number
  /** `allowPorts` as frps prints it, e.g. `"2000-3000,3001"`; `""` = any port. */
  allowPortsStr: string
  /** Bytes from users towards clients since the server started, all proxies. */
  totalTrafficIn: number
  totalTrafficOut: number
  /** User connections open now. */
  curConns: number
  /** Clients logged in now. */
  clientCounts: number
  /** Online proxies by type; every type the server serves is listed, 0 included. */
  proxyTypeCount: Record<string, number>
  /** wsfrp: refused logins since the server started. */
  loginFailures: number
  /** wsfrp: open WebSocket transports. */
  transports: number
  /** wsfrp: open yamux streams, all transports. */
  yamuxStreams: number
  /**
   * wsfrp: the `[[auth.users]]` user this answer is scoped to (its totals count only its own
   * clients and proxies; `loginFailures` is then 0). Absent for the operator.
   */
  tenant?: string
}

/** A proxy in `GET /api/proxy/…` (frps's ProxyStatsInfo plus wsfrp's fields). */
export interface ProxyInfo {
  name: string
  conf: ProxyConf
  /** frp user of the client (left out when empty, as frps does). */
  user?: string
  clientID?: string
  todayTrafficIn: number
  todayTrafficOut: number
  curConns: number
  /** Local time, frps's `"01-02 15:04:05"` format. */
  lastStartTime: string
  /** Same format; `""` when it never closed. */
  lastCloseTime: string
  status: 'online' | 'offline'
  /** wsfrp: the proxy type. */
  type: string
  /** wsfrp: run id of the client holding it. */
  runID: string
  /** wsfrp: NewProxyResp.remote_addr (tcp `":<port>"`). */
  remoteAddr: string
  /** wsfrp: bytes since the server started (today's are in `todayTraffic*`). */
  trafficIn: number
  trafficOut: number
  /** wsfrp: the `[[auth.users]]` user whose client holds it (left out for the shared token). */
  tenant?: string
}

/** A client in `GET /api/clients` (frps ≥ 0.63's ClientInfoResp plus wsfrp's fields). */
export interface ClientInfo {
  /** `user.clientID` (or run id) — identifies the client. */
  key: string
  user: string
  clientID: string
  runID: string
  version: string
  hostname: string
  /** The WebSocket peer's IP (a reverse proxy's, when there is one). */
  clientIP: string
  /** Unix seconds. wsfrps does not remember earlier sessions: equal to `lastConnectedAt`. */
  firstConnectedAt: number
  lastConnectedAt: number
  online: true
  /** wsfrp: Go's GOOS/GOARCH as the client reported them. */
  os: string
  arch: string
  /** wsfrp: `ip:port` of the WebSocket peer. */
  remoteAddress: string
  /** wsfrp: open yamux streams of the client's transport (control, pooled and active work streams). */
  streams: number
  /** wsfrp: names of its proxies. */
  proxies: string[]
  /** wsfrp: the `[[auth.users]]` user it logged in as (left out for the shared token). */
  tenant?: string
}

/** frps's `"01-02 15:04:05"` (local time); `""` for 0. */
export function frpTime(ms: number): string {
  if (ms === 0) return ''
  const d = new Date(ms)
  const p = (n: number): string => String(n).padStart(2, '0')
  return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
}

/** `[{2000,3000},{3001,3001}]` → `"2000-3000,3001"`. */
export function allowPortsString(ranges: readonly PortRange[]): string {
  return ranges.map((r) => (r.start === r.end ? String(r.start) : `${r.start}-${r.end}`)).join(',')
}

/**
 * `GET api/serverinfo` for `viewer` (undefined = the operator). A user's totals are summed over its
 * own proxies and clients; refused logins belong to nobody (no user was authenticated), so a user
 * sees 0 there.
 */
export function serverInfo(server: WsfrpServer, viewer?: string): ServerInfo {
  const c = server.config
  const bindPort = server.address()?.port ?? c.bindPort
  const base = {
    version: VERSION,
    bindPort,
    // The default vhost port is the bind port (also when that is 0 and the OS chose one).
    vhostHTTPPort: c.vhostHTTPPort === c.bindPort ? bindPort : c.vhostHTTPPort,
    vhostHTTPSPort: 0,
    tcpmuxHTTPConnectPort: 0,
    kcpBindPort: 0,
    quicBindPort: 0,
    subdomainHost: c.subDomainHost,
    maxPoolCount: c.transport.maxPoolCount,
    maxPortsPerClient: c.maxPortsPerClient,
    heartbeatTimeout: c.transport.heartbeatTimeout,
    allowPortsStr: allowPortsString(c.allowPorts),
  }
  if (viewer === undefined) {
    const totals = server.metrics.totals()
    const sessions = server.metrics.sessionTotals()
    return {
      ...base,
      totalTrafficIn: totals.trafficIn,
      totalTrafficOut: totals.trafficOut,
      curConns: totals.curConns,
      clientCounts: server.role.controls.size,
      proxyTypeCount: proxyTypeCount(server, undefined),
      loginFailures: totals.loginFailures,
      transports: sessions.transports,
      yamuxStreams: sessions.streams,
    }
  }
  let trafficIn = 0
  let trafficOut = 0
  let curConns = 0
  for (const p of server.metrics.proxies('all')) {
    if (!visibleTo(viewer, p)) continue
    trafficIn += p.trafficIn
    trafficOut += p.trafficOut
    curConns += p.curConns
  }
  const own = visibleControls(server, viewer)
  // One transport per client: the user's transports are its clients' ones.
  const streams = own.reduce((n, ctl) => n + server.metrics.streamsOf(ctl.remoteAddress), 0)
  return {
    ...base,
    totalTrafficIn: trafficIn,
    totalTrafficOut: trafficOut,
    curConns,
    clientCounts: own.length,
    proxyTypeCount: proxyTypeCount(server, viewer),
    loginFailures: 0,
    transports: own.length,
    yamuxStreams: streams,
    tenant: viewer,
  }
}

function visibleControls(server: WsfrpServer, viewer: string | undefined): ControlHandle[] {
  return [...server.role.controls.values()].filter((ctl) => visibleTo(viewer, ctl))
}

/** Online proxies `viewer` may see (all of them for the operator). */
function visibleProxies(server: WsfrpServer, viewer: string | undefined): ProxyStats[] {
  return server.metrics.proxies('online').filter((p) => visibleTo(viewer, p))
}

function proxyTypeCount(server: WsfrpServer, viewer: string | undefined): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const t of server.proxies.types) counts[t] = 0
  for (const p of visibleProxies(server, viewer)) counts[p.type] = (counts[p.type] ?? 0) + 1
  return counts
}

export function proxyInfo(p: ProxyStats): ProxyInfo {
  return {
    name: p.name,
    conf: p.conf,
    ...(p.user !== '' ? { user: p.user } : {}),
    ...(p.clientId !== '' ? { clientID: p.clientId } : {}),
    todayTrafficIn: p.todayTrafficIn,
    todayTrafficOut: p.todayTrafficOut,
    curConns: p.curConns,
    lastStartTime: frpTime(p.lastStartTime),
    lastCloseTime: frpTime(p.lastCloseTime),
    status: p.status,
    type: p.type,
    runID: p.runId,
    remoteAddr: p.remoteAddr,
    trafficIn: p.trafficIn,
    trafficOut: p.trafficOut,
    ...(p.tenant !== undefined ? { tenant: p.tenant } : {}),
  }
}

function clientIP(remoteAddress: string): string {
  const i = remoteAddress.lastIndexOf(':')
  return i < 0 ? remoteAddress : remoteAddress.slice(0, i)
}

export function clientInfo(server: WsfrpServer, c: ControlHandle): ClientInfo {
  const l = c.login
  const user = l.user ?? ''
  const clientID = l.client_id ?? ''
  const since = Math.floor(c.since / 1000)
  return {
    key: user !== '' ? `${user}.${clientID || c.runId}` : clientID || c.runId,
    user,
    clientID,
    runID: c.runId,
    version: l.version ?? '',
    hostname: l.hostname ?? '',
    clientIP: clientIP(c.remoteAddress),
    firstConnectedAt: since,
    lastConnectedAt: since,
    online: true,
    os: l.os ?? '',
    arch: l.arch ?? '',
    remoteAddress: c.remoteAddress,
    streams: server.metrics.streamsOf(c.remoteAddress),
    proxies: [...c.proxyNames],
    ...(c.tenant !== undefined ? { tenant: c.tenant } : {}),
  }
}

/** Writes `body` as a JSON answer, never cached (a HEAD request gets the headers only). */
export function sendJson(req: IncomingMessage, res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...extra,
  })
  res.end(req.method === 'HEAD' ? undefined : text)
}

const notFound = (req: IncomingMessage, res: ServerResponse): void => sendJson(req, res, 404, { error: 'not found' })

/**
 * Answers one API request. `path` is what follows the API prefix, e.g. `"serverinfo"` or
 * `"proxy/tcp/web"` (percent-encoded as received). `viewer` is the `[[auth.users]]` user the
 * request authenticated as (its answers are scoped to it), undefined for the operator. Always
 * answers: unknown paths get a 404 JSON.
 */
export function handleApi(server: WsfrpServer, path: string, req: IncomingMessage, res: ServerResponse, viewer?: string): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendJson(req, res, 405, { error: 'method not allowed' }, { Allow: 'GET, HEAD' })
    return
  }
  let parts: string[]
  try {
    parts = path.split('/').map((s) => decodeURIComponent(s))
  } catch {
    sendJson(req, res, 400, { error: 'bad percent-encoding in the path' })
    return
  }
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop() // a trailing slash
  const [what, a, b, ...rest] = parts
  if (rest.length > 0) return notFound(req, res)
  switch (what) {
    case 'serverinfo':
      if (a !== undefined) return notFound(req, res)
      return sendJson(req, res, 200, serverInfo(server, viewer))
    case 'clients':
      if (a !== undefined) return notFound(req, res)
      return sendJson(req, res, 200, visibleControls(server, viewer).map((c) => clientInfo(server, c)))
    case 'proxy': {
      if (a === undefined || a === '') return notFound(req, res)
      const online = visibleProxies(server, viewer).filter((p) => p.type === a)
      if (b === undefined) return sendJson(req, res, 200, { proxies: online.map(proxyInfo) })
      const p = online.find((x) => x.name === b)
      return p === undefined ? notFound(req, res) : sendJson(req, res, 200, proxyInfo(p))
    }
    case 'traffic': {
      if (a === undefined || b !== undefined) return notFound(req, res)
      // Another user's name answers like an unknown one.
      const p = server.metrics.proxy(a)
      const t = p !== undefined && visibleTo(viewer, p) ? server.metrics.traffic(a) : undefined
      return t === undefined ? notFound(req, res) : sendJson(req, res, 200, { name: a, ...t })
    }
    default:
      return notFound(req, res)
  }
}
