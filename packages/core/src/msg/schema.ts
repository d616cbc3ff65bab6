/**
 * Field layout of every frp message: JSON name, JSON kind, and the position in frp's Go struct.
 *
 * Go's encoding/json writes struct fields in declaration order, so the order here is frp's struct
 * order (`frp@v0.44.0:pkg/msg/msg.go`, `frp@v0.70.1:pkg/msg/msg.go`), with the fields that exist in
 * only one of the two versions slotted where that version declares them. Emitting in this order is
 * what makes our Login byte-identical to frpc's (wire doc §14, `login-tcp-ping` capture).
 */
import type { MessageType } from './types.js'

/** How a field is represented in JSON and which values are valid. */
export type FieldKind =
  | 'string'
  | 'bool'
  /** Go `int` / `int64`: a JSON integer. */
  | 'int'
  /** Go `uint16`: a JSON integer 0 … 65535. */
  | 'uint16'
  /** Go `map[string]string`. encoding/json writes the keys sorted. */
  | 'stringMap'
  /** Go `[]string`. */
  | 'stringArray'
  /** A nested Go struct. */
  | { readonly object: Schema }
  /** A Go slice of structs. */
  | { readonly array: Schema }

export interface FieldSpec {
  readonly name: string
  readonly kind: FieldKind
  /**
   * True when Go always writes the field (no `omitempty`), as for the untagged fields of
   * `net.UDPAddr`. Otherwise a zero value is left out, like Go's `omitempty`.
   */
  readonly always?: boolean
}

export interface Schema {
  readonly fields: readonly FieldSpec[]
  /** Exact JSON name → field. */
  readonly byName: ReadonlyMap<string, FieldSpec>
  /**
   * Lower-cased JSON name → field. Go's decoder prefers an exact key match but also accepts a
   * case-insensitive one (encoding/json `Unmarshal` docs); we approximate Go's Unicode case folding
   * with `toLowerCase()`, which agrees for every ASCII key and every name frp uses.
   */
  readonly byLowerName: ReadonlyMap<string, FieldSpec>
}

function schema(fields: readonly (readonly [string, FieldKind] | readonly [string, FieldKind, 'always'])[]): Schema {
  const specs: FieldSpec[] = fields.map(([name, kind, always]) =>
    always === 'always' ? { name, kind, always: true } : { name, kind },
  )
  const byName = new Map<string, FieldSpec>()
  const byLowerName = new Map<string, FieldSpec>()
  for (const f of specs) {
    byName.set(f.name, f)
    byLowerName.set(f.name.toLowerCase(), f)
  }
  return { fields: specs, byName, byLowerName }
}

const EMPTY = schema([])

const CLIENT_SPEC = schema([
  ['type', 'string'],
  ['always_auth_pass', 'bool'],
])

// net.UDPAddr has no JSON tags: Go writes its exported field names and never omits them.
const UDP_ADDR = schema([
  ['IP', 'string', 'always'],
  ['Port', 'int', 'always'],
  ['Zone', 'string', 'always'],
])

const PORTS_RANGE = schema([
  ['from', 'int'],
  ['to', 'int'],
])

const DETECT_BEHAVIOR = schema([
  ['role', 'string'],
  ['mode', 'int'],
  ['ttl', 'int'],
  ['send_delay_ms', 'int'],
  ['read_timeout', 'int'],
  ['candidate_ports', { array: PORTS_RANGE }],
  ['send_random_ports', 'int'],
  ['listen_random_ports', 'int'],
])

/** The schema of every message type, in frp struct field order. */
export const MESSAGE_SCHEMAS: Readonly<Record<MessageType, Schema>> = {
  Login: schema([
    ['version', 'string'],
    ['hostname', 'string'],
    ['os', 'string'],
    ['arch', 'string'],
    ['user', 'string'],
    ['privilege_key', 'string'],
    ['timestamp', 'int'],
    ['run_id', 'string'],
    ['client_id', 'string'], // v0.67+
    ['metas', 'stringMap'],
    ['client_spec', { object: CLIENT_SPEC }], // v0.53+
    ['pool_count', 'int'],
  ]),
  LoginResp: schema([
    ['version', 'string'],
    ['run_id', 'string'],
    ['server_udp_port', 'int'], // v0.44 … v0.48
    ['error', 'string'],
  ]),
  NewProxy: schema([
    ['proxy_name', 'string'],
    ['proxy_type', 'string'],
    ['use_encryption', 'bool'],
    ['use_compression', 'bool'],
    ['bandwidth_limit', 'string'], // v0.47+
    ['bandwidth_limit_mode', 'string'], // v0.47+
    ['group', 'string'],
    ['group_key', 'string'],
    ['metas', 'stringMap'],
    ['annotations', 'stringMap'], // v0.55+
    ['remote_port', 'int'],
    ['custom_domains', 'stringArray'],
    ['subdomain', 'string'],
    ['locations', 'stringArray'],
    ['http_user', 'string'],
    ['http_pwd', 'string'],
    ['host_header_rewrite', 'string'],
    ['headers', 'stringMap'],
    ['response_headers', 'stringMap'], // v0.58+
    ['route_by_http_user', 'string'],
    ['sk', 'string'],
    ['allow_users', 'stringArray'], // v0.50+
    ['multiplexer', 'string'],
  ]),
  NewProxyResp: schema([
    ['proxy_name', 'string'],
    ['remote_addr', 'string'],
    ['error', 'string'],
  ]),
  CloseProxy: schema([['proxy_name', 'string']]),
  NewWorkConn: schema([
    ['run_id', 'string'],
    ['privilege_key', 'string'],
    ['timestamp', 'int'],
  ]),
  ReqWorkConn: EMPTY,
  StartWorkConn: schema([
    ['proxy_name', 'string'],
    ['src_addr', 'string'],
    ['dst_addr', 'string'],
    ['src_port', 'uint16'],
    ['dst_port', 'uint16'],
    ['error', 'string'],
  ]),
  NewVisitorConn: schema([
    ['run_id', 'string'], // v0.50+
    ['proxy_name', 'string'],
    ['sign_key', 'string'],
    ['timestamp', 'int'],
    ['use_encryption', 'bool'],
    ['use_compression', 'bool'],
  ]),
  NewVisitorConnResp: schema([
    ['proxy_name', 'string'],
    ['error', 'string'],
  ]),
  Ping: schema([
    ['privilege_key', 'string'],
    ['timestamp', 'int'],
  ]),
  Pong: schema([['error', 'string']]),
  UDPPacket: schema([
    ['c', 'string'],
    ['l', { object: UDP_ADDR }],
    ['r', { object: UDP_ADDR }],
  ]),
  NatHoleVisitor: schema([
    ['transaction_id', 'string'], // v0.70 (with pre_check, protocol, *_addrs)
    ['proxy_name', 'string'],
    ['pre_check', 'bool'],
    ['protocol', 'string'],
    ['sign_key', 'string'],
    ['timestamp', 'int'],
    ['mapped_addrs', 'stringArray'],
    ['assisted_addrs', 'stringArray'],
  ]),
  NatHoleClient: schema([
    ['transaction_id', 'string'],
    ['proxy_name', 'string'],
    ['sid', 'string'],
    ['mapped_addrs', 'stringArray'],
    ['assisted_addrs', 'stringArray'],
  ]),
  NatHoleResp: schema([
    ['transaction_id', 'string'], // v0.70
    ['sid', 'string'],
    ['visitor_addr', 'string'], // v0.44
    ['client_addr', 'string'], // v0.44
    ['protocol', 'string'], // v0.70
    ['candidate_addrs', 'stringArray'], // v0.70
    ['assisted_addrs', 'stringArray'], // v0.70
    ['detect_behavior', { object: DETECT_BEHAVIOR }], // v0.70
    ['error', 'string'],
  ]),
  NatHoleClientDetectOK: EMPTY,
  NatHoleSid: schema([
    ['transaction_id', 'string'],
    ['sid', 'string'],
    ['response', 'bool'],
    ['nonce', 'string'],
  ]),
  NatHoleReport: schema([
    ['sid', 'string'],
    ['success', 'bool'],
  ]),
}
