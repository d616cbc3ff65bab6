/**
 * frp's v1 control messages as a TypeScript discriminated union.
 *
 * The `type` names are frp's Go struct names and every other property is the struct field's exact
 * JSON tag (snake_case), so a message prints the way frp logs it. The field set is the union of
 * frp v0.44.0 and v0.70.1 (`frp@v0.44.0:pkg/msg/msg.go`, `frp@v0.70.1:pkg/msg/msg.go`; summarised
 * in the wire doc §5.3). Every field is optional because frp tags all of them `omitempty`, so any
 * zero value ("" / 0 / false / empty list or map) is simply absent on the wire.
 *
 * Integers are JS numbers: exact up to 2^53, which covers ports, counts and Unix-second timestamps.
 */
import { TYPE_BYTES } from './schema.js'

/** `ClientSpec` inside Login (frp ≥ v0.53; only used by frp's internal SSH-tunnel gateway). */
export interface ClientSpec {
  type?: string
  always_auth_pass?: boolean
}

/** Go `*net.UDPAddr` as encoding/json writes it: Go field names, no tags, so never omitted. */
export interface UdpAddr {
  /** IP address as text (`net.IP.MarshalText`), `""` for a nil IP. */
  IP?: string
  Port?: number
  /** IPv6 zone, usually `""`. */
  Zone?: string
}

/** `PortsRange` inside NatHoleDetectBehavior (v0.70). */
export interface PortsRange {
  from?: number
  to?: number
}

/** `NatHoleDetectBehavior` inside NatHoleResp (v0.70). */
export interface NatHoleDetectBehavior {
  role?: string
  mode?: number
  ttl?: number
  send_delay_ms?: number
  /** Milliseconds, despite the tag name (frp field `ReadTimeoutMs`). */
  read_timeout?: number
  candidate_ports?: PortsRange[]
  send_random_ports?: number
  listen_random_ports?: number
}

/** frpc → frps, first message on the control stream (plaintext). */
export interface Login {
  type: 'Login'
  /** frpc version, `"X.Y.Z"`; frps ≤ 0.51 rejects anything below 0.18.0 (wire doc §7.5). */
  version?: string
  hostname?: string
  /** Go GOOS, e.g. `"linux"`. */
  os?: string
  /** Go GOARCH, e.g. `"amd64"`. */
  arch?: string
  user?: string
  /** Token auth: md5 hex of token + decimal timestamp (see `authKey`). OIDC: the access token. */
  privilege_key?: string
  /** Unix seconds. */
  timestamp?: number
  /** Empty on first login; the previous run id on reconnect. */
  run_id?: string
  /** v0.67+. */
  client_id?: string
  metas?: Record<string, string>
  /** v0.53+. */
  client_spec?: ClientSpec
  /** Work connections frps should ask for right after login (frpc default 1). */
  pool_count?: number
}

/** frps → frpc answer to Login (plaintext; a set `error` means the login failed). */
export interface LoginResp {
  type: 'LoginResp'
  version?: string
  run_id?: string
  /** v0.44 … v0.48 only: frps `bind_udp_port` for old xtcp. */
  server_udp_port?: number
  error?: string
}

/** frpc → frps: register a proxy. */
export interface NewProxy {
  type: 'NewProxy'
  proxy_name?: string
  /** `tcp`, `udp`, `http`, `https`, `tcpmux`, `stcp`, `sudp`, `xtcp`; empty means `tcp` to frps. */
  proxy_type?: string
  use_encryption?: boolean
  use_compression?: boolean
  /** v0.47+, e.g. `"1MB"`. */
  bandwidth_limit?: string
  /** v0.47+, `"client"` (default) or `"server"`. */
  bandwidth_limit_mode?: string
  group?: string
  group_key?: string
  metas?: Record<string, string>
  /** v0.55+. */
  annotations?: Record<string, string>
  /** tcp, udp. */
  remote_port?: number
  /** http, https, tcpmux. */
  custom_domains?: string[]
  subdomain?: string
  locations?: string[]
  http_user?: string
  http_pwd?: string
  host_header_rewrite?: string
  headers?: Record<string, string>
  /** v0.58+. */
  response_headers?: Record<string, string>
  route_by_http_user?: string
  /** stcp, sudp, xtcp secret key. */
  sk?: string
  /** v0.50+. */
  allow_users?: string[]
  /** tcpmux: `"httpconnect"`. */
  multiplexer?: string
}

/** frps → frpc answer to NewProxy. */
export interface NewProxyResp {
  type: 'NewProxyResp'
  proxy_name?: string
  remote_addr?: string
  error?: string
}

export interface CloseProxy {
  type: 'CloseProxy'
  proxy_name?: string
}

/** frpc → frps, first message on a work stream (plaintext). */
export interface NewWorkConn {
  type: 'NewWorkConn'
  run_id?: string
  privilege_key?: string
  /** Unix seconds. */
  timestamp?: number
}

/** frps → frpc on the control stream: open one more work connection. No fields. */
export interface ReqWorkConn {
  type: 'ReqWorkConn'
}

/** frps → frpc on a work stream; the bytes after it are the user connection. */
export interface StartWorkConn {
  type: 'StartWorkConn'
  proxy_name?: string
  src_addr?: string
  dst_addr?: string
  /** Go uint16. */
  src_port?: number
  /** Go uint16. */
  dst_port?: number
  error?: string
}

export interface NewVisitorConn {
  type: 'NewVisitorConn'
  /** v0.50+. */
  run_id?: string
  proxy_name?: string
  sign_key?: string
  /** Unix seconds. */
  timestamp?: number
  use_encryption?: boolean
  use_compression?: boolean
}

export interface NewVisitorConnResp {
  type: 'NewVisitorConnResp'
  proxy_name?: string
  error?: string
}

/** frpc → frps heartbeat. */
export interface Ping {
  type: 'Ping'
  privilege_key?: string
  /** Unix seconds. */
  timestamp?: number
}

export interface Pong {
  type: 'Pong'
  error?: string
}

export interface UDPPacket {
  type: 'UDPPacket'
  /** The datagram as standard base64 with padding (v0.44 string, v0.70 `[]byte`: same wire form). */
  c?: string
  l?: UdpAddr
  r?: UdpAddr
}

export interface NatHoleVisitor {
  type: 'NatHoleVisitor'
  transaction_id?: string
  proxy_name?: string
  pre_check?: boolean
  protocol?: string
  sign_key?: string
  timestamp?: number
  mapped_addrs?: string[]
  assisted_addrs?: string[]
}

export interface NatHoleClient {
  type: 'NatHoleClient'
  transaction_id?: string
  proxy_name?: string
  sid?: string
  mapped_addrs?: string[]
  assisted_addrs?: string[]
}

export interface NatHoleResp {
  type: 'NatHoleResp'
  transaction_id?: string
  sid?: string
  /** v0.44 only. */
  visitor_addr?: string
  /** v0.44 only. */
  client_addr?: string
  protocol?: string
  candidate_addrs?: string[]
  assisted_addrs?: string[]
  detect_behavior?: NatHoleDetectBehavior
  error?: string
}

/** v0.44 … v0.48 only (removed in v0.49.0): a v0.70 peer drops the connection on this type byte. */
export interface NatHoleClientDetectOK {
  type: 'NatHoleClientDetectOK'
}

export interface NatHoleSid {
  type: 'NatHoleSid'
  transaction_id?: string
  sid?: string
  response?: boolean
  nonce?: string
}

/** v0.49+ only: a v0.44 peer drops the connection on this type byte. */
export interface NatHoleReport {
  type: 'NatHoleReport'
  sid?: string
  success?: boolean
}

/** Every v1 frp message. Switch on `msg.type`. */
export type Message =
  | Login
  | LoginResp
  | NewProxy
  | NewProxyResp
  | CloseProxy
  | NewWorkConn
  | ReqWorkConn
  | StartWorkConn
  | NewVisitorConn
  | NewVisitorConnResp
  | Ping
  | Pong
  | UDPPacket
  | NatHoleVisitor
  | NatHoleClient
  | NatHoleResp
  | NatHoleClientDetectOK
  | NatHoleSid
  | NatHoleReport

/** The frp struct name of a message, e.g. `'Login'`. */
export type MessageType = Message['type']

/** The message interface for one type name: `MessageOf<'Login'>` is `Login`. */
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>

/**
 * The v1 type byte of every message (`frp@v0.44.0:pkg/msg/msg.go:19-61`,
 * `frp@v0.70.1:pkg/msg/msg.go:22-62`). These bytes are the wire format: never change one.
 * Login 'o', LoginResp '1', NewProxy 'p', NewProxyResp '2', CloseProxy 'c', NewWorkConn 'w',
 * ReqWorkConn 'r', StartWorkConn 's', NewVisitorConn 'v', NewVisitorConnResp '3', Ping 'h',
 * Pong '4', UDPPacket 'u', NatHoleVisitor 'i', NatHoleClient 'n', NatHoleResp 'm',
 * NatHoleClientDetectOK 'd' (v0.44 … v0.48), NatHoleSid '5', NatHoleReport '6' (v0.49+).
 * They are stored once, with each message's fields, in `schema.ts`.
 */
export const MESSAGE_TYPE_BYTES: Readonly<Record<MessageType, number>> = Object.freeze({ ...TYPE_BYTES })

const BYTE_TO_TYPE: (MessageType | undefined)[] = new Array<MessageType | undefined>(256).fill(undefined)
for (const [name, byte] of Object.entries(MESSAGE_TYPE_BYTES) as [MessageType, number][]) {
  BYTE_TO_TYPE[byte] = name
}

/** The message type for a v1 type byte, or `undefined` when frp defines none for it. */
export function messageTypeOf(typeByte: number): MessageType | undefined {
  return BYTE_TO_TYPE[typeByte]
}
