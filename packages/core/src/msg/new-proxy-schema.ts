/**
 * The NewProxy layout (schema.ts's table format), in a module of its own so that the browser
 * bundles can keep only the fields a browser client sends: packages/client-web/scripts/build.mjs
 * replaces this module with the same string filtered to those fields (same order), which a
 * browser never needs to decode since it only sends NewProxy. Node and the server keep every field.
 * A plain string that imports nothing, so that the swap cannot change anything else.
 *
 * Version notes: bandwidth_limit(_mode) v0.47+, annotations v0.55+, response_headers v0.58+,
 * allow_users v0.50+.
 */
export const NEW_PROXY_LAYOUT =
  'p proxy_name proxy_type use_encryption:b use_compression:b bandwidth_limit bandwidth_limit_mode group group_key metas:m annotations:m remote_port:i custom_domains:a subdomain locations:a http_user http_pwd host_header_rewrite headers:m response_headers:m route_by_http_user sk allow_users:a multiplexer'
