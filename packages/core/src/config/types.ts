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

export interface WebServerConfig {
  /** Default `"127.0.0.1"`. */
  addr: string
  /** Dashboard/API port; 0 (default) disables it. */
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
   * listener with the WebSocket endpoint (unlike frp, where 0 disables vhost).
   */
  vhostHTTPPort: number
  /** Base domain for proxies' `subdomain`. `""` = subdomains are refused. */
  subDomainHost: string
  auth: AuthConfig
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
  proxies: ProxyConfig[]
}

/** The WebSocket path frp clients use; wsfrps always serves it. */
export const FRP_WS_PATH = '/~!frp'
