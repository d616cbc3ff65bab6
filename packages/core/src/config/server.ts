import {
  Ctx,
  type KeyHints,
  type Table,
  checkInt,
  describeInt,
  describeValue,
  isTable,
  own,
  readBool,
  readInt,
  readString,
  readStringArray,
  readSubTable,
  reportUnknownKeys,
  requireInt,
} from './check.js'
import { checkHost, readAuth, readLog } from './common.js'
import { ConfigError, joinConfigPath } from './issues.js'
import {
  FRP_WS_PATH,
  type AuthUser,
  type LimitsConfig,
  type PortRange,
  type ProxyTypeName,
  type ServerAuthConfig,
  type ServerConfig,
  type ServerTransportConfig,
  type WebServerConfig,
} from './types.js'

const SERVER_KEYS = [
  'bindAddr',
  'bindPort',
  'proxyBindAddr',
  'vhostHTTPPort',
  'subDomainHost',
  'auth',
  'allowPorts',
  'maxPortsPerClient',
  'transport',
  'userConnTimeout',
  'log',
  'webServer',
  'detailedErrorsToClient',
  'limits',
] as const

const NOT_WS = 'wsfrp speaks only WebSocket'

const SERVER_HINTS: KeyHints = {
  legacy: {
    bind_addr: 'bindAddr',
    bind_port: 'bindPort',
    proxy_bind_addr: 'proxyBindAddr',
    vhost_http_port: 'vhostHTTPPort',
    subdomain_host: 'subDomainHost',
    token: 'auth.token',
    authentication_method: 'auth.method',
    authenticate_heartbeats: 'auth.additionalScopes',
    authenticate_new_work_conns: 'auth.additionalScopes',
    allow_ports: 'allowPorts',
    max_ports_per_client: 'maxPortsPerClient',
    max_pool_count: 'transport.maxPoolCount',
    tcp_mux_keepalive_interval: 'transport.tcpMuxKeepaliveInterval',
    heartbeat_timeout: 'transport.heartbeatTimeout',
    tls_cert_file: 'transport.tls.certFile',
    tls_key_file: 'transport.tls.keyFile',
    user_conn_timeout: 'userConnTimeout',
    log_level: 'log.level',
    log_file: 'log.to',
    log_max_days: 'log.maxDays',
    disable_log_color: 'log.disablePrintColor',
    dashboard_addr: 'webServer.addr',
    dashboard_port: 'webServer.port',
    dashboard_user: 'webServer.user',
    dashboard_pwd: 'webServer.password',
    detailed_errors_to_client: 'detailedErrorsToClient',
  },
  unsupported: {
    vhostHTTPSPort: 'https vhost proxies are not supported yet',
    tcpmuxHTTPConnectPort: 'tcpmux proxies are not supported yet',
    tcpmuxPassthrough: 'tcpmux proxies are not supported yet',
    kcpBindPort: NOT_WS,
    quicBindPort: NOT_WS,
    'transport.quic': NOT_WS,
    'transport.tcpMux': 'yamux is always on',
    'transport.tcpKeepalive': '',
    'transport.tls.force': '',
    'transport.tls.trustedCaFile': '',
    enablePrometheus: '',
    httpPlugins: '',
    sshTunnelGateway: '',
    custom404Page: '',
    vhostHTTPTimeout: '',
    udpPacketSize: 'udp proxies are not supported yet',
    natholeAnalysisDataReserveHours: '',
    'auth.oidc': '"oidc" auth is not supported yet',
    'auth.tokenSource': '',
    'webServer.tls': '',
    'webServer.pprofEnable': '',
    'webServer.assetsDir': '',
  },
}

function readPortRanges(ctx: Ctx, root: Table | undefined, path = 'allowPorts'): PortRange[] {
  const out: PortRange[] = []
  const v = root === undefined ? undefined : own(root, 'allowPorts')
  if (v === undefined) return out
  if (!Array.isArray(v)) {
    ctx.add(path, `must be an array of { start, end } or { single } tables, got ${describeValue(v)}`)
    return out
  }
  const port = { min: 1, max: 65535 }
  v.forEach((item: unknown, i) => {
    const p = joinConfigPath(path, i)
    if (!isTable(item)) {
      ctx.add(p, `must be a table like { start = 2000, end = 3000 } or { single = 3001 }, got ${describeValue(item)}`)
      return
    }
    reportUnknownKeys(ctx, item, p, 'allowPorts', ['start', 'end', 'single'], SERVER_HINTS)
    if (own(item, 'single') !== undefined) {
      if (own(item, 'start') !== undefined || own(item, 'end') !== undefined) {
        ctx.add(p, 'use either single or start/end, not both')
        return
      }
      const single = requireInt(ctx, item, 'single', p, port)
      if (single !== undefined) out.push({ start: single, end: single })
      return
    }
    const start = requireInt(ctx, item, 'start', p, port)
    const end = requireInt(ctx, item, 'end', p, port)
    if (start === undefined || end === undefined) return
    if (start > end) {
      ctx.add(p, `start (${start}) must not be greater than end (${end})`)
      return
    }
    out.push({ start, end })
  })
  return out
}

const USER_KEYS = ['name', 'token', 'allowTypes', 'allowPorts', 'subdomains', 'domains', 'maxProxies', 'maxConnections']
const PROXY_TYPES: readonly ProxyTypeName[] = ['tcp', 'http']
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

function checkUserName(s: string): string | undefined {
  return /^[A-Za-z0-9_.@-]{1,64}$/.test(s) ? undefined : 'must be 1 to 64 letters, digits or "_.@-"'
}

/** A `subdomains` entry: one DNS label, or "*" for any. */
function checkSubdomainPattern(s: string): string | undefined {
  return s === '*' || DNS_LABEL.test(s.toLowerCase()) ? undefined : 'must be one DNS label (no dots) or "*"'
}

/** A `domains` entry: a host name, "*.suffix", or "*". */
function checkDomainPattern(s: string): string | undefined {
  if (s === '*') return undefined
  const name = s.startsWith('*.') ? s.slice(2) : s
  const labels = name.toLowerCase().split('.')
  return name.length <= 253 && labels.every((l) => DNS_LABEL.test(l)) ? undefined : 'must be a host name, "*.suffix" or "*"'
}

/** Reads `[[auth.users]]`: per-user tokens and restrictions. */
function readUsers(ctx: Ctx, root: Table | undefined, sharedToken: string): AuthUser[] {
  const auth = root === undefined ? undefined : own(root, 'auth')
  const v = isTable(auth) ? own(auth, 'users') : undefined
  const out: AuthUser[] = []
  if (v === undefined) return out
  const path = 'auth.users'
  if (!Array.isArray(v)) {
    ctx.add(path, `must be an array of tables ([[auth.users]]), got ${describeValue(v)}`)
    return out
  }
  const names = new Set<string>()
  const tokens = new Set<string>()
  v.forEach((item: unknown, i) => {
    const p = joinConfigPath(path, i)
    if (!isTable(item)) {
      ctx.add(p, `must be a table with name and token, got ${describeValue(item)}`)
      return
    }
    reportUnknownKeys(ctx, item, p, 'auth.users', USER_KEYS, SERVER_HINTS)
    const before = ctx.issues.length
    if (own(item, 'name') === undefined) ctx.add(joinConfigPath(p, 'name'), 'is required')
    if (own(item, 'token') === undefined) ctx.add(joinConfigPath(p, 'token'), 'is required')
    const name = readString(ctx, item, 'name', p, '', { nonEmpty: true, check: checkUserName })
    const token = readString(ctx, item, 'token', p, '', { secret: true, nonEmpty: true })
    if (name !== '') {
      if (names.has(name)) ctx.add(joinConfigPath(p, 'name'), `"${name}" is listed twice`)
      names.add(name)
    }
    if (token !== '') {
      // The messages never show the token itself.
      if (tokens.has(token)) ctx.add(joinConfigPath(p, 'token'), 'is the same as another user\'s token')
      else if (token === sharedToken) ctx.add(joinConfigPath(p, 'token'), 'is the same as auth.token (which has full rights)')
      tokens.add(token)
    }
    let allowTypes: ProxyTypeName[] = [...PROXY_TYPES]
    if (own(item, 'allowTypes') !== undefined) {
      const raw = readStringArray(ctx, item, 'allowTypes', p, (t) => ((PROXY_TYPES as readonly string[]).includes(t) ? undefined : 'must be "tcp" or "http"'))
      const given = own(item, 'allowTypes')
      if (Array.isArray(given) && given.length === 0) ctx.add(joinConfigPath(p, 'allowTypes'), 'must list at least one proxy type (remove the user to allow nothing)')
      else allowTypes = [...new Set(raw)] as ProxyTypeName[]
    }
    const allowPorts = readPortRanges(ctx, item, joinConfigPath(p, 'allowPorts'))
    const hostsGiven = own(item, 'subdomains') !== undefined || own(item, 'domains') !== undefined
    const subdomains = readStringArray(ctx, item, 'subdomains', p, checkSubdomainPattern).map((x) => x.toLowerCase())
    const domains = readStringArray(ctx, item, 'domains', p, checkDomainPattern).map((x) => x.toLowerCase())
    const maxProxies = readInt(ctx, item, 'maxProxies', p, 0, { min: 0 })
    const maxConnections = readInt(ctx, item, 'maxConnections', p, 0, { min: 0 })
    if (ctx.issues.length > before) return
    out.push({ name, token, allowTypes, allowPorts, ...(hostsGiven ? { subdomains, domains } : {}), maxProxies, maxConnections })
  })
  return out
}

const LIMIT_KEYS = [
  'loginTimeout',
  'transportLoginTimeout',
  'maxPendingTransports',
  'maxClients',
  'maxProxiesPerClient',
  'maxStreamsPerSession',
  'sessionReceiveBudget',
  'maxMessageSize',
  'maxWebSocketMessageSize',
  'maxHTTPHeaderSize',
  'httpHeaderTimeout',
  'httpKeepAliveTimeout',
  'maxPendingUserConnsPerProxy',
  'loginFailures',
  'loginFailureWindow',
  'webLoginFailures',
]

const MiB = 1024 * 1024

/** Reads `[limits]` (docs/LIMITS.md). */
function readLimits(ctx: Ctx, root: Table | undefined, maxPoolCount: number): LimitsConfig {
  const t = readSubTable(ctx, root, 'limits', '', '', LIMIT_KEYS, SERVER_HINTS)
  const secs = { min: 1, unit: 'seconds' }
  const int31 = 0x7fffffff
  const limits: LimitsConfig = {
    loginTimeout: readInt(ctx, t, 'loginTimeout', 'limits', 10, { ...secs, max: 3600 }),
    transportLoginTimeout: readInt(ctx, t, 'transportLoginTimeout', 'limits', 30, { ...secs, max: 3600 }),
    maxPendingTransports: readInt(ctx, t, 'maxPendingTransports', 'limits', 1000, { min: 0, max: int31 }),
    maxClients: readInt(ctx, t, 'maxClients', 'limits', 1000, { min: 0, max: int31 }),
    maxProxiesPerClient: readInt(ctx, t, 'maxProxiesPerClient', 'limits', 256, { min: 0, max: int31 }),
    maxStreamsPerSession: readInt(ctx, t, 'maxStreamsPerSession', 'limits', 1024, { min: 2, max: int31 }),
    sessionReceiveBudget: readInt(ctx, t, 'sessionReceiveBudget', 'limits', 64 * MiB, { min: 0, max: Number.MAX_SAFE_INTEGER, unit: 'bytes' }),
    maxMessageSize: readInt(ctx, t, 'maxMessageSize', 'limits', 10_240, { min: 1024, max: MiB, unit: 'bytes' }),
    // frpc's yamux may put a whole grown stream window (6 MiB) in one WebSocket message.
    maxWebSocketMessageSize: readInt(ctx, t, 'maxWebSocketMessageSize', 'limits', 16 * MiB, { min: 8 * MiB, max: 1024 * MiB, unit: 'bytes' }),
    maxHTTPHeaderSize: readInt(ctx, t, 'maxHTTPHeaderSize', 'limits', 16 * 1024, { min: 1024, max: MiB, unit: 'bytes' }),
    httpHeaderTimeout: readInt(ctx, t, 'httpHeaderTimeout', 'limits', 60, { ...secs, max: 3600 }),
    httpKeepAliveTimeout: readInt(ctx, t, 'httpKeepAliveTimeout', 'limits', 5, { ...secs, max: 3600 }),
    maxPendingUserConnsPerProxy: readInt(ctx, t, 'maxPendingUserConnsPerProxy', 'limits', 1024, { min: 1, max: int31 }),
    loginFailures: readInt(ctx, t, 'loginFailures', 'limits', 5, { min: 0, max: 1_000_000 }),
    loginFailureWindow: readInt(ctx, t, 'loginFailureWindow', 'limits', 60, { ...secs, max: 86_400 }),
    webLoginFailures: readInt(ctx, t, 'webLoginFailures', 'limits', 5, { min: 0, max: 1_000_000 }),
  }
  if (t !== undefined && own(t, 'maxStreamsPerSession') !== undefined && limits.maxStreamsPerSession <= maxPoolCount) {
    ctx.add('limits.maxStreamsPerSession', `must be greater than transport.maxPoolCount (${maxPoolCount}): a session needs its control stream and its pool`)
  }
  return limits
}

function checkWsPath(s: string): string | undefined {
  if (!s.startsWith('/')) return 'must start with "/"'
  if (/[\s?#]/.test(s)) return 'must be a URL path without spaces, "?" or "#"'
  return undefined
}

const HOST = { nonEmpty: true, check: checkHost }

/**
 * `vhostHTTPPort`: unset or equal to `bindPort` → vhost traffic shares the one listener; another
 * port → a vhost-only listener on `proxyBindAddr`; 0 → no http vhost at all, as frps, which serves
 * http proxies only when `vhostHTTPPort > 0` and binds a separate one on `proxyBindAddr` (frp
 * server/service.go). 0 with `bindPort = 0` is "equal to bindPort" (a validated config with an
 * OS-chosen port must validate again): shared, not off.
 */
function readVhostPort(ctx: Ctx, root: Table | undefined, bindPort: number): number {
  const v = root === undefined ? undefined : own(root, 'vhostHTTPPort')
  if (v === undefined) return bindPort
  const range = { min: 0, max: 65535 }
  if (checkInt(v, range)) return v as number
  ctx.add('vhostHTTPPort', `must be ${describeInt(range)} (leave it unset to share bindPort; 0 turns http vhosts off), got ${describeValue(v)}`)
  return bindPort
}

function readTransport(ctx: Ctx, root: Table | undefined): ServerTransportConfig {
  const keys = ['maxPoolCount', 'tcpMuxKeepaliveInterval', 'heartbeatTimeout', 'wsPaths', 'tls']
  const t = readSubTable(ctx, root, 'transport', '', '', keys, SERVER_HINTS)
  const maxPoolCount = readInt(ctx, t, 'maxPoolCount', 'transport', 5, { min: 0 })
  const tcpMuxKeepaliveInterval = readInt(ctx, t, 'tcpMuxKeepaliveInterval', 'transport', 30, { min: 1, unit: 'seconds' })
  const heartbeatTimeout = readInt(ctx, t, 'heartbeatTimeout', 'transport', -1, { min: 1, minusOneDisables: true, unit: 'seconds' })
  const wsPaths: string[] = []
  readStringArray(ctx, t, 'wsPaths', 'transport', checkWsPath).forEach((p, i) => {
    if (p === FRP_WS_PATH) return // always served; listing it is harmless
    if (wsPaths.includes(p)) ctx.add(`transport.wsPaths[${i}]`, `"${p}" is listed twice`)
    else wsPaths.push(p)
  })
  const tlsT = readSubTable(ctx, t, 'tls', 'transport', 'transport', ['certFile', 'keyFile'], SERVER_HINTS)
  const certFile = readString(ctx, tlsT, 'certFile', 'transport.tls', '')
  const keyFile = readString(ctx, tlsT, 'keyFile', 'transport.tls', '')
  if (certFile !== '' && keyFile === '') ctx.add('transport.tls.keyFile', 'must be set when transport.tls.certFile is set')
  if (keyFile !== '' && certFile === '') ctx.add('transport.tls.certFile', 'must be set when transport.tls.keyFile is set')
  return { maxPoolCount, tcpMuxKeepaliveInterval, heartbeatTimeout, wsPaths, tls: { certFile, keyFile } }
}

function readWebServer(ctx: Ctx, root: Table | undefined): WebServerConfig {
  const t = readSubTable(ctx, root, 'webServer', '', '', ['addr', 'port', 'user', 'password'], SERVER_HINTS)
  return {
    addr: readString(ctx, t, 'addr', 'webServer', '127.0.0.1', HOST),
    port: readInt(ctx, t, 'port', 'webServer', 0, { min: 0, max: 65535 }),
    user: readString(ctx, t, 'user', 'webServer', ''),
    password: readString(ctx, t, 'password', 'webServer', '', { secret: true }),
  }
}

function readServerAuth(ctx: Ctx, root: Table | undefined): ServerAuthConfig {
  const auth = readAuth(ctx, root, SERVER_HINTS, ['users'])
  return { ...auth, users: readUsers(ctx, root, auth.token) }
}

/**
 * Checks a parsed wsfrps configuration (a TOML/JSON document already turned into plain objects)
 * and fills in defaults. `undefined` stands for an empty file.
 *
 * @throws ConfigError (`ERR_CONFIG`) listing every problem: wrong types or ranges, unknown keys
 *   (with a "did you mean" or legacy-INI hint), and settings wsfrp does not support.
 */
export function validateServerConfig(raw: unknown): ServerConfig {
  const ctx = new Ctx()
  let root: Table | undefined
  if (raw === undefined) root = {}
  else if (!isTable(raw)) ctx.add('', `a server config must be a table of settings, got ${describeValue(raw)}`)
  else {
    reportUnknownKeys(ctx, raw, '', '', SERVER_KEYS, SERVER_HINTS)
    root = raw
  }
  // Sections are read in the documented key order, so that issues come out in that order too.
  const bindAddr = readString(ctx, root, 'bindAddr', '', '0.0.0.0', HOST)
  const bindPort = readInt(ctx, root, 'bindPort', '', 7000, { min: 0, max: 65535 })
  const base: Omit<ServerConfig, 'limits'> = {
    bindAddr,
    bindPort,
    proxyBindAddr: readString(ctx, root, 'proxyBindAddr', '', bindAddr, HOST),
    vhostHTTPPort: readVhostPort(ctx, root, bindPort),
    subDomainHost: readString(ctx, root, 'subDomainHost', '', '', {
      check: (s) => (s === '' ? undefined : (checkHost(s) ?? (/^[.*]/.test(s) ? 'must not start with "." or "*"' : undefined))),
    }),
    auth: readServerAuth(ctx, root),
    allowPorts: readPortRanges(ctx, root),
    maxPortsPerClient: readInt(ctx, root, 'maxPortsPerClient', '', 0, { min: 0 }),
    transport: readTransport(ctx, root),
    userConnTimeout: readInt(ctx, root, 'userConnTimeout', '', 10, { min: 1, unit: 'seconds' }),
    log: readLog(ctx, root, SERVER_HINTS),
    webServer: readWebServer(ctx, root),
    detailedErrorsToClient: readBool(ctx, root, 'detailedErrorsToClient', '', true),
  }
  const cfg: ServerConfig = { ...base, limits: readLimits(ctx, root, base.transport.maxPoolCount) }
  if (ctx.issues.length > 0) throw new ConfigError(ctx.issues, { kind: 'server' })
  return cfg
}

/** A server config with every default (what an empty file gives). */
export function defaultServerConfig(): ServerConfig {
  return validateServerConfig({})
}

/** Every WebSocket path the server answers on: `/~!frp` first, then `transport.wsPaths`. */
export function serverWsPaths(cfg: ServerConfig): string[] {
  return [FRP_WS_PATH, ...cfg.transport.wsPaths]
}

/** True when `port` is inside `allowPorts` (an empty list allows every port). */
export function isPortAllowed(port: number, allowPorts: readonly PortRange[]): boolean {
  return allowPorts.length === 0 || allowPorts.some((r) => port >= r.start && port <= r.end)
}
