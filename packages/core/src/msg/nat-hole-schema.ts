/**
 * Layouts of frp's NAT hole punching (xtcp) messages, in the format of schema.ts's table.
 *
 * A separate module so that the browser bundles can leave them out: a browser client never sends
 * or receives these (it has no xtcp), and the service-worker bundle has a hard size budget.
 * packages/client-web/scripts/build.mjs replaces this module with empty tables, so there the
 * codec rejects these type bytes like any unknown one (`ERR_MSG_PROTOCOL`). Node and the server
 * keep them. Plain strings that import nothing, so that the swap cannot change anything else.
 *
 * Version notes (`frp@v0.44.0:pkg/msg/msg.go`, `frp@v0.70.1:pkg/msg/msg.go`):
 * - NatHoleVisitor: transaction_id, pre_check, protocol and *_addrs v0.70.
 * - NatHoleResp: transaction_id, protocol, candidate_addrs, assisted_addrs, detect_behavior v0.70;
 *   visitor_addr, client_addr v0.44.
 * - NatHoleClientDetectOK ('d') v0.44 … v0.48 only; NatHoleReport ('6') v0.49+ only.
 */
/** `NatHoleDetectBehavior` inside NatHoleResp (v0.70); `P` is its []PortsRange. */
export const DETECT_BEHAVIOR_LAYOUT = 'role mode:i ttl:i send_delay_ms:i read_timeout:i candidate_ports:P send_random_ports:i listen_random_ports:i'
/** `PortsRange`. */
export const PORTS_RANGE_LAYOUT = 'from:i to:i'

/**
 * Type byte and fields of each NAT hole message; these bytes are the wire format: never change
 * one. `D` is {@link DETECT_BEHAVIOR_LAYOUT}.
 */
export const NAT_HOLE_LAYOUTS: Readonly<Record<string, string>> = {
  NatHoleVisitor: 'i transaction_id proxy_name pre_check:b protocol sign_key timestamp:i mapped_addrs:a assisted_addrs:a',
  NatHoleClient: 'n transaction_id proxy_name sid mapped_addrs:a assisted_addrs:a',
  NatHoleResp: 'm transaction_id sid visitor_addr client_addr protocol candidate_addrs:a assisted_addrs:a detect_behavior:D error',
  NatHoleClientDetectOK: 'd',
  NatHoleSid: '5 transaction_id sid response:b nonce',
  NatHoleReport: '6 sid success:b',
}
