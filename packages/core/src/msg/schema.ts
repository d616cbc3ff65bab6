/**
 * Field layout of every frp message: JSON name, JSON kind, and the position in frp's Go struct.
 *
 * Go's encoding/json writes struct fields in declaration order, so the order here is frp's struct
 * order (`frp@v0.44.0:pkg/msg/msg.go`, `frp@v0.70.1:pkg/msg/msg.go`), with the fields that exist in
 * only one of the two versions slotted where that version declares them. Emitting in this order is
 * what makes our Login byte-identical to frpc's (wire doc §14, `login-tcp-ping` capture).
 *
 * The layouts are written as short strings and expanded once at load: this table ships in the
 * service-worker bundle, where nested array literals cost about twice the bytes.
 */
import { DETECT_BEHAVIOR_LAYOUT, NAT_HOLE_LAYOUTS, PORTS_RANGE_LAYOUT } from './nat-hole-schema.js'
import { NEW_PROXY_LAYOUT } from './new-proxy-schema.js'
import { UDP_ADDR_LAYOUT, VISITOR_LAYOUTS } from './visitor-schema.js'
import type { MessageType } from './types.js'

/**
 * How a field is represented in JSON and which values are valid:
 * `s` string, `b` bool, `i` Go `int` / `int64` (a JSON integer), `u` Go `uint16` (0 … 65535),
 * `m` Go `map[string]string` (encoding/json writes the keys sorted), `a` Go `[]string`,
 * or a nested Go struct (`_object`) or slice of structs (`_array`).
 */
export type FieldKind = 's' | 'b' | 'i' | 'u' | 'm' | 'a' | { readonly _object: Schema } | { readonly _array: Schema }

export interface FieldSpec {
  readonly _name: string
  readonly _kind: FieldKind
}

export interface Schema {
  readonly _fields: readonly FieldSpec[]
  /**
   * True when Go always writes every field (no `omitempty`), as for the untagged fields of
   * `net.UDPAddr`. Otherwise a zero value is left out, like Go's `omitempty`.
   */
  readonly _always: boolean
  /** Exact JSON name → field. */
  readonly _byName: ReadonlyMap<string, FieldSpec>
  /**
   * Lower-cased JSON name → field. Go's decoder prefers an exact key match but also accepts a
   * case-insensitive one (encoding/json `Unmarshal` docs); we approximate Go's Unicode case folding
   * with `toLowerCase()`, which agrees for every ASCII key and every name frp uses.
   */
  readonly _byLowerName: ReadonlyMap<string, FieldSpec>
}

/**
 * A struct from its field list: space-separated `name` or `name:k`, where `k` is a letter of
 * {@link FieldKind} (no suffix: string) or a capital letter naming an entry of `nested`.
 */
function schema(spec: string, nested: Readonly<Record<string, FieldKind>> = {}, always = false): Schema {
  const fields: FieldSpec[] = []
  const byName = new Map<string, FieldSpec>()
  const byLowerName = new Map<string, FieldSpec>()
  for (const item of spec.split(' ')) {
    if (item === '') continue
    const [name, k = 's'] = item.split(':') as [string, string?]
    const f: FieldSpec = { _name: name, _kind: nested[k] ?? (k as FieldKind) }
    fields.push(f)
    byName.set(name, f)
    byLowerName.set(name.toLowerCase(), f)
  }
  return { _fields: fields, _always: always, _byName: byName, _byLowerName: byLowerName }
}


const NESTED: Record<string, FieldKind> = {
  // ClientSpec inside Login (v0.53+).
  C: { _object: schema('type always_auth_pass:b') },
  // net.UDPAddr has no JSON tags: Go writes its exported field names and never omits them.
  U: { _object: schema(UDP_ADDR_LAYOUT, {}, true) },
  D: { _object: schema(DETECT_BEHAVIOR_LAYOUT, { P: { _array: schema(PORTS_RANGE_LAYOUT) } }) },
}

/**
 * Every message: its v1 type byte as a character (`frp@v0.44.0:pkg/msg/msg.go:19-61`,
 * `frp@v0.70.1:pkg/msg/msg.go:22-62`; these bytes are the wire format: never change one), then its
 * fields in frp struct order. Version notes:
 * - Login: client_id v0.67+, client_spec v0.53+. LoginResp: server_udp_port v0.44 … v0.48.
 * The NAT hole punching (xtcp) messages are in nat-hole-schema.ts, the visitor and UDP messages in
 * visitor-schema.ts, NewProxy's fields in new-proxy-schema.ts (all swapped in browser bundles).
 */
const LAYOUTS: Readonly<Record<string, string>> = {
  Login: 'o version hostname os arch user privilege_key timestamp:i run_id client_id metas:m client_spec:C pool_count:i',
  LoginResp: '1 version run_id server_udp_port:i error',
  NewProxy: NEW_PROXY_LAYOUT,
  NewProxyResp: '2 proxy_name remote_addr error',
  CloseProxy: 'c proxy_name',
  NewWorkConn: 'w run_id privilege_key timestamp:i',
  ReqWorkConn: 'r',
  StartWorkConn: 's proxy_name src_addr dst_addr src_port:u dst_port:u error',
  Ping: 'h privilege_key timestamp:i',
  Pong: '4 error',
  ...VISITOR_LAYOUTS,
  ...NAT_HOLE_LAYOUTS,
}

/**
 * The v1 type byte of every message. Typed as complete, but the browser bundles leave the NAT hole
 * messages out (see nat-hole-schema.ts): lookups of a type must tolerate a missing entry.
 */
export const TYPE_BYTES = {} as Record<MessageType, number>
/** The schema of every message type, in frp struct field order (same caveat as TYPE_BYTES). */
export const MESSAGE_SCHEMAS = {} as Readonly<Record<MessageType, Schema>>
for (const [type, layout] of Object.entries(LAYOUTS) as [MessageType, string][]) {
  TYPE_BYTES[type] = layout.charCodeAt(0)
  ;(MESSAGE_SCHEMAS as Record<MessageType, Schema>)[type] = schema(layout.slice(1), NESTED)
}
