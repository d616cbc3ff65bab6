/**
 * Validated configuration shapes for wsfrps and wsfrpc. Key names follow frp ≥ 0.52 (TOML, camelCase)
 * so that an frp config file needs no renaming. Every field is filled in: defaults are applied by
 * the validators, and an empty string means "not set", as in frp.
 */

/** Log threshold, as in frp's `log.level`. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error'

export interface LogConfig {
  /** Default `"info"`. */
  level: LogLevel
  /** `"console"` (default) or a file path. */
  to: string
  /** Days to keep rotated log files. Default 3. Accepted for frp compatibility. */
  maxDays: number
  /** Disable colours on the console. Default false. */
  disablePrintColor: boolean
}

/** Messages that carry a fresh privilege key besides Login (frp's `auth.additionalScopes`). */
export type AuthScope = 'HeartBeats' | 'NewWorkConns'

export interface AuthConfig {
  /** Only `"token"` (frp's default) is supported. */
  method: 'token'
  /** Shared secret; `""` (default) is frp's "empty token", which every client with an empty token passes. */
  token: string
  /** Default `[]` (only Login is authenticated). */
  additionalScopes: AuthScope[]
}

/** An inclusive port range. frp's `{ single = N }` is normalised to `{ start: N, end: N }`. */
export interface PortRange {
  start: number
  end: number
}

export interface ServerTransportConfig {
  /** Upper bound for a client's `transport.poolCount`. Default 5. */
  maxPoolCount: number
  /** yamux keepalive ping interval, seconds. Default 30 (frp ≥ 0.58.1). */
  tcpMuxKeepaliveInterval: number
  /** Seconds without a client Ping before the control is closed; -1 (default) disables it. */
  heartbeatTimeout: number
  /** Extra WebSocket paths (each starting with "/") besides `/~!frp`, which is always served. Default `[]`. */
  wsPaths: string[]
  tls: {
    /** PEM certificate file for serving https/wss on the bind port. `""` = plain http. */
    certFile: string
    /** PEM private key file; set together with certFile. */
    keyFile: string
  }
}

/**
 * One tenant of the server (`[[auth.users]]`): a login whose privilege key matches this user's token
 * (instead of the shared `auth.token`) gets this user's rights. Every restriction applies to all
 * the user's clients together.
 */
export interface AuthUser {
  /** Unique name; shown in logs and used by the REST API to scope what the user sees. */
  name: string
  /** This user's secret. Non-empty, unique, and different from `auth.token`. */
  token: string
  /** Proxy types the user may register. Default: every type the server serves (`["tcp", "http"]`). */
  allowTypes: ProxyTypeName[]
  /** Ports the user's tcp proxies may bind, on top of the top-level `allowPorts`. `[]` (default) = no extra restriction. */
  allowPorts: PortRange[]
  /**
   * `subdomain` labels the user's http proxies may take: exact labels, or `"*"` for any. Set
   * together with `domains` (either one given turns the host check on; the other then defaults to
   * `[]`). Undefined (default) = any subdomain.
   */
  subdomains?: string[]
  /**
   * `customDomains` the user's http proxies may take: exact host names, `"*.suffix"` (any name
   * below `suffix`, wildcards below it included) or `"*"` (any). Undefined (default) = any.
   */
  domains?: string[]
  /** Proxies the user may hold at once, over all its clients. 0 (default) = no per-user limit. */
  maxProxies: number
  /** User connections open at once over all the user's proxies. 0 (default) = no per-user limit. */
  maxConnections: number
}

/** Proxy types a server can serve. */
export type ProxyTypeName = 'tcp' | 'http'

export interface ServerAuthConfig extends AuthConfig {
  /** Per-user tokens with restrictions. Default `[]`. */
  users: AuthUser[]
}

/**
 * wsfrp's own resource limits (`[limits]`). Durations in seconds, sizes in bytes. Each is listed
 * in docs/LIMITS.md with what happens past it.
 */
export interface LimitsConfig {
  /** Deadline for the first frp message of every yamux stream, seconds. Default 10 (frps connReadTimeout). */
  loginTimeout: number
  /** A WebSocket that has no logged-in control after this many seconds is closed. Default 30. */
  transportLoginTimeout: number
  /** WebSockets (handshakes included) without a logged-in client at once; beyond it upgrades get 503. 0 = unlimited. Default 1,000. */
  maxPendingTransports: number
  /** Logged-in clients at once; beyond it Login is refused. 0 = unlimited. Default 1,000. */
  maxClients: number
  /** Proxies one client may hold at once; beyond it NewProxy is refused. 0 = unlimited. Default 256. */
  maxProxiesPerClient: number
  /** yamux streams open at once in one client's session (both directions). Default 1,024. */
  maxStreamsPerSession: number
  /** yamux receive-window growth beyond 256 KiB per stream, summed over a session, bytes. Default 64 MiB. */
  sessionReceiveBudget: number
  /** Largest frp message body accepted or sent, bytes. Default 10,240 (frp's). */
  maxMessageSize: number
  /** Largest WebSocket message accepted from a client, bytes. Default 16 MiB. */
  maxWebSocketMessageSize: number
  /** Largest HTTP request head on the server's port (vhost requests and upgrades), bytes; beyond it 431. Default 16 KiB. */
  maxHTTPHeaderSize: number
  /** Seconds to receive a complete HTTP request head (upgrades included); then 408 and close. Default 60. */
  httpHeaderTimeout: number
  /** Seconds an idle keep-alive HTTP connection to the server's port is kept. Default 5 (Node's). */
  httpKeepAliveTimeout: number
  /** User connections per proxy waiting for a work connection at once; beyond it they are closed. Default 1,024 (64 refused bursts of 200). */
  maxPendingUserConnsPerProxy: number
  /** Failed logins from one address (IPv6: one /64) allowed in a burst before its logins are refused unchecked. Default 5. */
  loginFailures: number
  /** Seconds in which `loginFailures` failures are forgiven again (token bucket refill). Default 60. */
  loginFailureWindow: number
  /**
   * Failed Basic sign-ins to the dashboard, REST API and /metrics from one address (IPv6: one /64)
   * allowed in a burst before its sign-ins get 429 unchecked; refilled over `loginFailureWindow`.
   * 0 = off. Default 5.
   */
  webLoginFailures: number
}

/** `webServer`: the server's dashboard and API, or the client's admin API. */
export interface WebServerConfig {
  /** Default `"127.0.0.1"`. */
  addr: string
  /** Dashboard/API port (server) or admin API port (client); 0 (default): server = on its own port, client = off. */
  port: number
  /** Basic-auth user; `""` = no auth. */
  user: string
  /** Basic-auth password. */
  password: string
}

export interface ServerConfig {
  /** Address the one HTTP(S)/WebSocket listener binds. Default `"0.0.0.0"`. */
  bindAddr: string
  /** Port of that listener. Default 7000; 0 asks the OS for a free port (tests). */
  bindPort: number
  /** Address tcp proxies listen on. Default: `bindAddr`. */
  proxyBindAddr: string
  /**
   * Port that serves http vhost traffic. Default: `bindPort`, i.e. vhost requests share the one HTTP
   * listener with the WebSocket endpoint. Another port: a vhost-only listener on `proxyBindAddr`.
   * 0 (with a `bindPort` other than 0): no http vhost, http proxies are refused, as in frp.
   */
  vhostHTTPPort: number
  /** Base domain for proxies' `subdomain`. `""` = subdomains are refused. */
  subDomainHost: string
  auth: ServerAuthConfig
  /** Ports tcp proxies may use. `[]` (default) = any port. */
  allowPorts: PortRange[]
  /** Ports one client may hold at once; 0 (default) = unlimited. */
  maxPortsPerClient: number
  transport: ServerTransportConfig
  /** Seconds to wait for a work connection for a user connection. Default 10. */
  userConnTimeout: number
  log: LogConfig
  webServer: WebServerConfig
  /** Send detailed error texts to clients in NewProxyResp/LoginResp. Default true. */
  detailedErrorsToClient: boolean
  limits: LimitsConfig
}

/** `websocket` = `ws://` (plain yamux inside the WebSocket); `wss` = WebSocket over TLS. */
export type ClientProtocol = 'websocket' | 'wss'

export interface ClientTransportConfig {
  /** Default `"websocket"`. frp's tcp/kcp/quic are refused: wsfrp speaks only WebSocket. */
  protocol: ClientProtocol
  /** Work connections opened in advance. Default 1 (the server caps it at its maxPoolCount). */
  poolCount: number
  /** yamux keepalive ping interval, seconds. Default 30. */
  tcpMuxKeepaliveInterval: number
  /** Seconds between application Pings; -1 (default) disables them. */
  heartbeatInterval: number
  /** Seconds without a Pong before reconnecting; -1 (default) disables the check. */
  heartbeatTimeout: number
  /** `http://[user:pass@]host:port` (or https://) proxy for the WebSocket dial. `""` = direct. */
  proxyURL: string
  tls: {
    /**
     * frp's inner-TLS switch. wsfrp never runs TLS inside the WebSocket (it sends plain yamux, which
     * stock frps accepts unless `transport.tls.force`), so the value is recorded but has no effect
     * with `websocket`; use `wss` for encryption. Default false.
     */
    enable: boolean
    /** CA bundle (PEM) to verify the server certificate for `wss`. `""` = system CAs. */
    trustedCaFile: string
    /** TLS server name (SNI and verification) for `wss`. `""` = the URL's host. */
    serverName: string
  }
}

interface ProxyBaseConfig {
  /** Unique per client (frp prefixes it with `user.` on the wire when `user` is set). */
  name: string
  /** Default `"127.0.0.1"`. */
  localIP: string
  /** Port of the local service, 1..65535. */
  localPort: number
  transport: {
    /** AES-128-CFB on work connections (keyed with auth.token). Default false. */
    useEncryption: boolean
    /** snappy framing on work connections. Default false. */
    useCompression: boolean
  }
  loadBalancer: {
    /** Group name; `""` = no group. */
    group: string
    /** Secret shared by the group's members. */
    groupKey: string
  }
  /** Free-form string map sent to the server in NewProxy. */
  metadatas: Record<string, string>
}

export interface TcpProxyConfig extends ProxyBaseConfig {
  type: 'tcp'
  /** Server port; 0 (default) = the server picks one. */
  remotePort: number
}

export interface HttpProxyConfig extends ProxyBaseConfig {
  type: 'http'
  /** Host names routed to this proxy (`*.example.com` wildcards allowed). */
  customDomains: string[]
  /** Label prepended to the server's subDomainHost. `""` = none. */
  subdomain: string
  /** URL path prefixes; `[]` = every path. */
  locations: string[]
  /** Basic-auth user required from HTTP clients; `""` = no auth. */
  httpUser: string
  httpPassword: string
  /** Replaces the Host header sent to the local service; `""` = keep it. */
  hostHeaderRewrite: string
  requestHeaders: { set: Record<string, string> }
  responseHeaders: { set: Record<string, string> }
  /** Route only requests whose Basic-auth user is this name; `""` = any. */
  routeByHTTPUser: string
}

export type ProxyConfig = TcpProxyConfig | HttpProxyConfig
export type ProxyType = ProxyConfig['type']

export interface ClientConfig {
  /** Default `"127.0.0.1"`. */
  serverAddr: string
  /** Default 7000. */
  serverPort: number
  /**
   * `ws://host[:port][/path]` or `wss://…`; when set it wins over serverAddr/serverPort/protocol.
   * A URL without a path gets `/~!frp`. `""` (default) = built from serverAddr and serverPort.
   */
  serverURL: string
  /** frp user: proxies are registered as `user.name`. Default `""`. */
  user: string
  /** Exit when the first login fails (true, like frp) instead of retrying. */
  loginFailExit: boolean
  auth: AuthConfig
  transport: ClientTransportConfig
  log: LogConfig
  /** Free-form string map sent in Login. */
  metadatas: Record<string, string>
  /**
   * frpc's admin API (`wsfrpc reload`, `wsfrpc status`): `port` 0 (default) = no admin server;
   * `addr` defaults to `"127.0.0.1"`; Basic auth when `user` or `password` is set.
   */
  webServer: WebServerConfig
  proxies: ProxyConfig[]
}

/** The WebSocket path frp clients use; wsfrps always serves it. */
export const FRP_WS_PATH = '/~!frp'
