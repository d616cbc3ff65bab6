import {
  Ctx,
  type KeyHints,
  type Table,
  describeValue,
  isTable,
  own,
  quoteList,
  readBool,
  readEnum,
  readInt,
  readString,
  readStringArray,
  readStringMap,
  readSubTable,
  readTable,
  reportUnknownKeys,
  requireInt,
} from './check.js'
import { checkHost, checkPrintable, readAuth, readLog } from './common.js'
import { ConfigError, joinConfigPath } from './issues.js'
import {
  FRP_WS_PATH,
  type ClientConfig,
  type ClientProtocol,
  type ClientTransportConfig,
  type HttpProxyConfig,
  type ProxyConfig,
  type ProxyType,
  type TcpProxyConfig,
  type WebServerConfig,
} from './types.js'

const CLIENT_KEYS = [
  'serverAddr',
  'serverPort',
  'serverURL',
  'user',
  'loginFailExit',
  'auth',
  'transport',
  'log',
  'metadatas',
  'webServer',
  'proxies',
] as const

const NOT_WS = 'wsfrp speaks only WebSocket'

const CLIENT_HINTS: KeyHints = {
  legacy: {
    server_addr: 'serverAddr',
    server_port: 'serverPort',
    login_fail_exit: 'loginFailExit',
    token: 'auth.token',
    authentication_method: 'auth.method',
    authenticate_heartbeats: 'auth.additionalScopes',
    authenticate_new_work_conns: 'auth.additionalScopes',
    protocol: 'transport.protocol',
    pool_count: 'transport.poolCount',
    tcp_mux_keepalive_interval: 'transport.tcpMuxKeepaliveInterval',
    heartbeat_interval: 'transport.heartbeatInterval',
    heartbeat_timeout: 'transport.heartbeatTimeout',
    http_proxy: 'transport.proxyURL',
    tls_enable: 'transport.tls.enable',
    tls_trusted_ca_file: 'transport.tls.trustedCaFile',
    tls_server_name: 'transport.tls.serverName',
    log_level: 'log.level',
    log_file: 'log.to',
    log_max_days: 'log.maxDays',
    disable_log_color: 'log.disablePrintColor',
    admin_addr: 'webServer.addr',
    admin_port: 'webServer.port',
    admin_user: 'webServer.user',
    admin_pwd: 'webServer.password',
  },
  unsupported: {
    'transport.tcpMux': 'yamux is always on',
    'transport.quic': NOT_WS,
    'transport.dialServerTimeout': '',
    'transport.dialServerKeepalive': '',
    'transport.connectServerLocalIP': '',
    'transport.wireProtocol': 'wsfrp speaks frp wire protocol v1',
    'transport.tls.certFile': 'client certificates are not supported yet',
    'transport.tls.keyFile': 'client certificates are not supported yet',
    'transport.tls.disableCustomTLSFirstByte': 'wsfrp never sends TLS inside the WebSocket',
    'auth.oidc': '"oidc" auth is not supported yet',
    'auth.tokenSource': '',
    'webServer.tls': 'serve the admin API on a loopback address, or behind a TLS proxy',
    'webServer.assetsDir': 'wsfrpc has no admin web UI',
    'webServer.pprofEnable': '',
    start: '',
    includeConfigFiles: '',
    visitors: 'visitors (stcp/sudp/xtcp) are not supported yet',
    udpPacketSize: 'udp proxies are not supported yet',
    natHoleStunServer: 'xtcp is not supported',
    dnsServer: '',
    featureGates: '',
    store: '',
    virtualNet: '',
  },
}

const PROXY_HINTS: KeyHints = {
  legacy: {
    local_ip: 'localIP',
    local_port: 'localPort',
    remote_port: 'remotePort',
    custom_domains: 'customDomains',
    http_user: 'httpUser',
    http_pwd: 'httpPassword',
    host_header_rewrite: 'hostHeaderRewrite',
    route_by_http_user: 'routeByHTTPUser',
    group: 'loadBalancer.group',
    group_key: 'loadBalancer.groupKey',
    use_encryption: 'transport.useEncryption',
    use_compression: 'transport.useCompression',
  },
  unsupported: {
    plugin: 'plugins are not supported yet',
    healthCheck: 'health checks are not supported yet',
    annotations: '',
    enabled: '',
    multiplexer: 'tcpmux proxies are not supported yet',
    secretKey: 'stcp/sudp/xtcp proxies are not supported yet',
    allowUsers: 'stcp/sudp/xtcp proxies are not supported yet',
    'transport.bandwidthLimit': '',
    'transport.bandwidthLimitMode': '',
    'transport.proxyProtocolVersion': '',
  },
}

const PROXY_BASE_KEYS = ['name', 'type', 'localIP', 'localPort', 'transport', 'loadBalancer', 'metadatas']
const TCP_ONLY_KEYS = ['remotePort']
const HTTP_ONLY_KEYS = [
  'customDomains',
  'subdomain',
  'locations',
  'httpUser',
  'httpPassword',
  'hostHeaderRewrite',
  'requestHeaders',
  'responseHeaders',
  'routeByHTTPUser',
]
const PROXY_TYPES: readonly ProxyType[] = ['tcp', 'http']
const FRP_ONLY_PROXY_TYPES = ['udp', 'https', 'tcpmux', 'stcp', 'sudp', 'xtcp']

/** A host name routed by an http proxy: a DNS name, `*.suffix`, or the catch-all `*`. */
function checkDomain(s: string): string | undefined {
  if (s === '') return 'must not be empty'
  if (s.includes('://')) return 'must be a host name, not a URL'
  if (/[\s/?#@:]/.test(s)) return 'must be a host name (no port, path or spaces)'
  if (s !== '*' && s.slice(1).includes('*')) return 'may contain "*" only as a leading "*." wildcard'
  if (s.startsWith('*') && s !== '*' && !s.startsWith('*.')) return 'may contain "*" only as a leading "*." wildcard'
  return undefined
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const checkHeaderName = (k: string): string | undefined =>
  HEADER_NAME.test(k) ? undefined : 'is not a valid HTTP header name'
const checkHeaderValue = (v: string): string | undefined =>
  /[\r\n\0]/.test(v) ? 'must not contain CR, LF or NUL' : undefined

function readHeaders(ctx: Ctx, t: Table, key: string, path: string): Record<string, string> {
  const p = joinConfigPath(path, key)
  const h = readTable(ctx, own(t, key), p, key, ['set'], PROXY_HINTS)
  return readStringMap(ctx, h, 'set', p, checkHeaderName, checkHeaderValue)
}

function readProxy(ctx: Ctx, raw: unknown, index: number): ProxyConfig | undefined {
  const path = joinConfigPath('proxies', index)
  if (!isTable(raw)) {
    ctx.add(path, `must be a table ([[proxies]] entry), got ${describeValue(raw)}`)
    return undefined
  }
  const t = raw
  const at = (key: string): string => joinConfigPath(path, key)

  let name = ''
  if (own(t, 'name') === undefined) ctx.add(at('name'), 'is required: a unique proxy name')
  else name = readString(ctx, t, 'name', path, '', { nonEmpty: true, check: checkPrintable })

  const typeRaw = own(t, 'type')
  let type: ProxyType | undefined
  if (typeRaw === undefined) ctx.add(at('type'), `is required: ${quoteList(PROXY_TYPES)}`)
  else if (typeof typeRaw === 'string' && (PROXY_TYPES as readonly string[]).includes(typeRaw)) type = typeRaw as ProxyType
  else if (typeof typeRaw === 'string' && FRP_ONLY_PROXY_TYPES.includes(typeRaw)) {
    ctx.add(at('type'), `"${typeRaw}" proxies are not supported yet (wsfrp supports only "tcp" and "http")`)
  } else ctx.add(at('type'), `must be ${quoteList(PROXY_TYPES)}, got ${describeValue(typeRaw)}`)

  // With an unusable type, check keys against everything a proxy may have, so one mistake does not
  // turn into a list of bogus "unknown key" lines.
  const known =
    type === 'tcp'
      ? [...PROXY_BASE_KEYS, ...TCP_ONLY_KEYS]
      : type === 'http'
        ? [...PROXY_BASE_KEYS, ...HTTP_ONLY_KEYS]
        : [...PROXY_BASE_KEYS, ...TCP_ONLY_KEYS, ...HTTP_ONLY_KEYS]
  reportUnknownKeys(ctx, t, path, '', known, PROXY_HINTS, (key) => {
    if (type === 'tcp' && HTTP_ONLY_KEYS.includes(key)) return `unknown key "${key}" for a tcp proxy (it applies to http proxies)`
    if (type === 'http' && TCP_ONLY_KEYS.includes(key)) return `unknown key "${key}" for an http proxy (it applies to tcp proxies)`
    return undefined
  })

  const localIP = readString(ctx, t, 'localIP', path, '127.0.0.1', { nonEmpty: true, check: checkHost })
  const localPort = requireInt(ctx, t, 'localPort', path, { min: 1, max: 65535 }) ?? 0
  const remotePort = type === 'tcp' ? readInt(ctx, t, 'remotePort', path, 0, { min: 0, max: 65535 }) : 0
  const http = type === 'http' ? readHttpFields(ctx, t, path) : undefined

  const lbPath = at('loadBalancer')
  const lbT = readTable(ctx, own(t, 'loadBalancer'), lbPath, 'loadBalancer', ['group', 'groupKey'], PROXY_HINTS)
  const loadBalancer = {
    group: readString(ctx, lbT, 'group', lbPath, '', { check: checkPrintable }),
    groupKey: readString(ctx, lbT, 'groupKey', lbPath, '', { secret: true }),
  }
  const trPath = at('transport')
  const trT = readTable(ctx, own(t, 'transport'), trPath, 'transport', ['useEncryption', 'useCompression'], PROXY_HINTS)
  const transport = {
    useEncryption: readBool(ctx, trT, 'useEncryption', trPath, false),
    useCompression: readBool(ctx, trT, 'useCompression', trPath, false),
  }
  const metadatas = readStringMap(ctx, t, 'metadatas', path)

  const base = { name, localIP, localPort, transport, loadBalancer, metadatas }
  if (type === 'tcp') {
    const p: TcpProxyConfig = { ...base, type, remotePort }
    return p
  }
  if (type === 'http' && http !== undefined) {
    const p: HttpProxyConfig = { ...base, type, ...http }
    return p
  }
  return undefined
}

type HttpFields = Omit<HttpProxyConfig, 'type' | 'name' | 'localIP' | 'localPort' | 'transport' | 'loadBalancer' | 'metadatas'>

function readHttpFields(ctx: Ctx, t: Table, path: string): HttpFields {
  const f: HttpFields = {
    customDomains: readStringArray(ctx, t, 'customDomains', path, checkDomain),
    subdomain: readString(ctx, t, 'subdomain', path, '', {
      check: (s) => (s === '' || /^[A-Za-z0-9_-]+$/.test(s) ? undefined : 'must be one DNS label (no "." or "*")'),
    }),
    locations: readStringArray(ctx, t, 'locations', path, (s) => (s.startsWith('/') ? undefined : 'must start with "/"')),
    // Basic auth joins user and password with ":", so a user name cannot contain one.
    httpUser: readString(ctx, t, 'httpUser', path, '', { check: (s) => (s.includes(':') ? 'must not contain ":"' : undefined) }),
    httpPassword: readString(ctx, t, 'httpPassword', path, '', { secret: true }),
    hostHeaderRewrite: readString(ctx, t, 'hostHeaderRewrite', path, '', { check: (s) => (s === '' ? undefined : checkHost(s)) }),
    requestHeaders: { set: readHeaders(ctx, t, 'requestHeaders', path) },
    responseHeaders: { set: readHeaders(ctx, t, 'responseHeaders', path) },
    routeByHTTPUser: readString(ctx, t, 'routeByHTTPUser', path, ''),
  }
  // Judge by what was written: an invalid entry is already reported and must not add this line too.
  const rawDomains = own(t, 'customDomains')
  const rawSub = own(t, 'subdomain')
  const noDomains = rawDomains === undefined || (Array.isArray(rawDomains) && rawDomains.length === 0)
  if (noDomains && (rawSub === undefined || rawSub === '')) ctx.add(path, 'an http proxy needs customDomains or subdomain')
  return f
}

interface ParsedURL {
  scheme: string
  userinfo: string
  host: string
  port: number | undefined
  rest: string
}

/** Splits `scheme://[userinfo@]host[:port][rest]` without the URL class, which the core cannot rely on. */
function splitURL(s: string): ParsedURL | string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(s)
  if (m === null) return 'must be a URL like scheme://host:port'
  const [, scheme = '', authority = '', rest = ''] = m
  if (/\s/.test(s)) return 'must not contain spaces'
  const at = authority.lastIndexOf('@')
  const userinfo = at >= 0 ? authority.slice(0, at) : ''
  const hostport = at >= 0 ? authority.slice(at + 1) : authority
  const hm = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::(\d*))?$/.exec(hostport)
  if (hm === null) return 'has an invalid host or port'
  const [, host = '', portStr] = hm
  let port: number | undefined
  if (portStr !== undefined) {
    port = Number(portStr)
    if (portStr === '' || !Number.isInteger(port) || port < 1 || port > 65535) return 'has an invalid port (1 to 65535)'
  }
  return { scheme: scheme.toLowerCase(), userinfo, host, port, rest }
}

function normalizeServerURL(s: string): { url: string } | { problem: string } {
  const u = splitURL(s)
  if (typeof u === 'string') return { problem: `${u} (ws://host:port/path or wss://host/path)` }
  if (u.scheme !== 'ws' && u.scheme !== 'wss') return { problem: 'must start with ws:// or wss://' }
  if (u.rest !== '' && !u.rest.startsWith('/')) return { problem: 'must have a path starting with "/"' }
  if (u.rest.includes('#')) return { problem: 'must not have a #fragment' }
  const auth = u.userinfo === '' ? '' : `${u.userinfo}@`
  const port = u.port === undefined ? '' : `:${u.port}`
  return { url: `${u.scheme}://${auth}${u.host}${port}${u.rest === '' ? FRP_WS_PATH : u.rest}` }
}

function checkProxyURL(s: string): string | undefined {
  const u = splitURL(s)
  if (typeof u === 'string') return `${u} (http://[user:password@]host:port)`
  if (u.scheme === 'ntlm') return `must be an http://, https://, socks5:// or socks5h:// proxy ("${u.scheme}" is not supported yet)`
  if (!['http', 'https', 'socks5', 'socks5h'].includes(u.scheme)) return 'must be an http://, https://, socks5:// or socks5h:// proxy URL'
  if (u.rest !== '' && u.rest !== '/') return 'must not have a path'
  return undefined
}

function readServerURL(ctx: Ctx, root: Table | undefined): string {
  const raw = readString(ctx, root, 'serverURL', '', '')
  if (raw === '') return ''
  const n = normalizeServerURL(raw)
  if ('url' in n) return n.url
  // The URL may carry credentials; the message shows where they were, not what they were.
  ctx.add('serverURL', `${n.problem}, got ${describeValue(raw.replace(/\/\/[^/@]*@/, '//<credentials>@'))}`)
  return ''
}

function readTransport(ctx: Ctx, root: Table | undefined): ClientTransportConfig {
  const keys = ['protocol', 'poolCount', 'tcpMuxKeepaliveInterval', 'heartbeatInterval', 'heartbeatTimeout', 'proxyURL', 'tls']
  const t = readSubTable(ctx, root, 'transport', '', '', keys, CLIENT_HINTS)
  const notWs = (p: string): string => `"${p}" is not available: wsfrp speaks only WebSocket (use "websocket" or "wss")`
  const protocol = readEnum<ClientProtocol>(ctx, t, 'protocol', 'transport', 'websocket', ['websocket', 'wss'], {
    tcp: notWs('tcp'),
    kcp: notWs('kcp'),
    quic: notWs('quic'),
  })
  const poolCount = readInt(ctx, t, 'poolCount', 'transport', 1, { min: 0 })
  const tcpMuxKeepaliveInterval = readInt(ctx, t, 'tcpMuxKeepaliveInterval', 'transport', 30, { min: 1, unit: 'seconds' })
  const heartbeatInterval = readInt(ctx, t, 'heartbeatInterval', 'transport', -1, { min: 1, minusOneDisables: true, unit: 'seconds' })
  const heartbeatTimeout = readInt(ctx, t, 'heartbeatTimeout', 'transport', -1, { min: 1, minusOneDisables: true, unit: 'seconds' })
  if (heartbeatInterval > 0 && heartbeatTimeout > 0 && heartbeatTimeout < heartbeatInterval) {
    const msg = `must not be less than transport.heartbeatInterval (${heartbeatInterval}), got ${heartbeatTimeout}`
    ctx.add('transport.heartbeatTimeout', msg)
  }
  const proxyURL = readString(ctx, t, 'proxyURL', 'transport', '', {
    check: (s) => (s === '' ? undefined : checkProxyURL(s)),
    secret: true,
  })
  const tlsT = readSubTable(ctx, t, 'tls', 'transport', 'transport', ['enable', 'trustedCaFile', 'serverName'], CLIENT_HINTS)
  return {
    protocol,
    poolCount,
    tcpMuxKeepaliveInterval,
    heartbeatInterval,
    heartbeatTimeout,
    proxyURL,
    tls: {
      enable: readBool(ctx, tlsT, 'enable', 'transport.tls', false),
      trustedCaFile: readString(ctx, tlsT, 'trustedCaFile', 'transport.tls', ''),
      serverName: readString(ctx, tlsT, 'serverName', 'transport.tls', '', { check: (s) => (s === '' ? undefined : checkHost(s)) }),
    },
  }
}

/**
 * `webServer`: frpc's admin API (`GET /api/status`, `GET|POST /api/reload`). Off unless `port` is
 * set; Basic auth when `user` or `password` is set.
 */
function readWebServer(ctx: Ctx, root: Table | undefined): WebServerConfig {
  const t = readSubTable(ctx, root, 'webServer', '', '', ['addr', 'port', 'user', 'password'], CLIENT_HINTS)
  return {
    addr: readString(ctx, t, 'addr', 'webServer', '127.0.0.1', { nonEmpty: true, check: checkHost }),
    port: readInt(ctx, t, 'port', 'webServer', 0, { min: 0, max: 65535 }),
    // Basic auth joins user and password with ":", so a user name cannot contain one.
    user: readString(ctx, t, 'user', 'webServer', '', { check: (s) => checkPrintable(s) ?? (s.includes(':') ? 'must not contain ":"' : undefined) }),
    password: readString(ctx, t, 'password', 'webServer', '', { secret: true }),
  }
}

function readProxies(ctx: Ctx, root: Table | undefined): ProxyConfig[] {
  const proxies: ProxyConfig[] = []
  const raw = root === undefined ? undefined : own(root, 'proxies')
  if (raw === undefined) return proxies
  if (!Array.isArray(raw)) {
    ctx.add('proxies', `must be an array of tables ([[proxies]]), got ${describeValue(raw)}`)
    return proxies
  }
  const firstIndex = new Map<string, number>()
  raw.forEach((item: unknown, i) => {
    const p = readProxy(ctx, item, i)
    const name = isTable(item) ? own(item, 'name') : undefined
    if (typeof name === 'string' && name !== '') {
      const first = firstIndex.get(name)
      const dup = `duplicate proxy name ${JSON.stringify(name)} (also used by proxies[${first ?? 0}])`
      if (first !== undefined) ctx.add(`proxies[${i}].name`, dup)
      else firstIndex.set(name, i)
    }
    if (p !== undefined) proxies.push(p)
  })
  return proxies
}

/**
 * Checks a parsed wsfrpc configuration and fills in defaults. `undefined` stands for an empty file.
 *
 * @throws ConfigError (`ERR_CONFIG`) listing every problem, including unknown keys (with hints),
 *   duplicate proxy names, unsupported proxy types and non-WebSocket transports.
 */
export function validateClientConfig(raw: unknown): ClientConfig {
  const ctx = new Ctx()
  let root: Table | undefined
  if (raw === undefined) root = {}
  else if (!isTable(raw)) ctx.add('', `a client config must be a table of settings, got ${describeValue(raw)}`)
  else {
    root = raw
    reportUnknownKeys(ctx, raw, '', '', CLIENT_KEYS, CLIENT_HINTS, (key) => {
      // A quoted legacy INI proxy section ([ssh] with type/local_port) parses as a stray table.
      const v = own(raw, key)
      if (isTable(v) && (own(v, 'type') !== undefined || own(v, 'local_port') !== undefined)) {
        return `unknown key "${key}": looks like a legacy INI proxy section; frp >= 0.52 TOML uses [[proxies]] with name = "${key}"`
      }
      return undefined
    })
  }

  // Sections are read in the documented key order, so that issues come out in that order too.
  const cfg: ClientConfig = {
    serverAddr: readString(ctx, root, 'serverAddr', '', '127.0.0.1', {
      nonEmpty: true,
      check: (s) => (s.includes('://') ? 'must be a host name or IP address; put ws:// and wss:// URLs in serverURL' : checkHost(s)),
    }),
    serverPort: readInt(ctx, root, 'serverPort', '', 7000, { min: 1, max: 65535 }),
    serverURL: readServerURL(ctx, root),
    user: readString(ctx, root, 'user', '', '', {
      check: (s) => checkPrintable(s) ?? (s.includes('.') ? 'must not contain "." (frp joins user and proxy name with ".")' : undefined),
    }),
    loginFailExit: readBool(ctx, root, 'loginFailExit', '', true),
    auth: readAuth(ctx, root, CLIENT_HINTS),
    transport: readTransport(ctx, root),
    log: readLog(ctx, root, CLIENT_HINTS),
    metadatas: readStringMap(ctx, root, 'metadatas', ''),
    webServer: readWebServer(ctx, root),
    proxies: readProxies(ctx, root),
  }
  if (ctx.issues.length > 0) throw new ConfigError(ctx.issues, { kind: 'client' })
  return cfg
}

/** A client config with every default and no proxies (what an empty file gives). */
export function defaultClientConfig(): ClientConfig {
  return validateClientConfig({})
}

/**
 * The WebSocket URL the client dials: `serverURL` when set, otherwise
 * `ws://serverAddr:serverPort/~!frp` (`wss://` with `transport.protocol = "wss"`).
 */
export function resolveServerURL(cfg: ClientConfig): string {
  if (cfg.serverURL !== '') return cfg.serverURL
  const scheme = cfg.transport.protocol === 'wss' ? 'wss' : 'ws'
  const host = cfg.serverAddr.includes(':') && !cfg.serverAddr.startsWith('[') ? `[${cfg.serverAddr}]` : cfg.serverAddr
  return `${scheme}://${host}:${cfg.serverPort}${FRP_WS_PATH}`
}
