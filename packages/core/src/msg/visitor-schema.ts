/**
 * Layouts of the visitor (stcp/sudp/xtcp visitor) and UDP messages, in the format of schema.ts's
 * table. A separate module for the same reason as nat-hole-schema.ts: a browser client has no
 * visitors and no udp proxies, so it neither sends nor expects these, and
 * packages/client-web/scripts/build.mjs swaps this module for empty tables (the codec then rejects
 * these type bytes like any unknown one, `ERR_MSG_PROTOCOL`). Node and the server keep them.
 * Plain strings that import nothing, so that the swap cannot change anything else.
 *
 * NewVisitorConn: run_id v0.50+.
 */
/** Go's net.UDPAddr, which has no JSON tags: its exported field names, never omitted. */
export const UDP_ADDR_LAYOUT = 'IP Port:i Zone'

/** Type byte and fields of each message; these bytes are the wire format: never change one. `U` is a UDP address. */
export const VISITOR_LAYOUTS: Readonly<Record<string, string>> = {
  NewVisitorConn: 'v run_id proxy_name sign_key timestamp:i use_encryption:b use_compression:b',
  NewVisitorConnResp: '3 proxy_name error',
  UDPPacket: 'u c l:U r:U',
}
