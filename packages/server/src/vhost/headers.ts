import * as http from 'node:http'
import * as net from 'node:net'
import { WsfrpError } from '@wsfrp/core'
import { normalizeIp, type TrustedProxies } from './trusted.js'

/**
 * Header handling of the vhost proxy: what goes to the local service and what comes back. Headers
 * travel as Node's flat raw arrays (`[name, value, name, value, …]`) so that case, order and
 * repeated fields survive, as they do through frps (Go's ReverseProxy copies the header map).
 */

/** Hop-by-hop fields (RFC 9110 §7.6.1, plus the legacy ones Go's ReverseProxy also drops). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

/** Forwarding fields that only a trusted peer may pass on. */
const FORWARDING = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip', 'forwarded'])

/** Fields a proxy's `headers` / `response_headers` may not set: framing and connection management are ours. */
const NOT_SETTABLE = new Set([...HOP_BY_HOP, 'host', 'content-length'])

/** Methods for which Node's HTTP client would invent a chunked body; everything else gets `Content-Length: 0`. */
const NO_BODY_BY_DEFAULT = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'])

/** Checked name/value pairs from a proxy's `headers` or `response_headers` (frp: `Set` semantics). */
export type HeaderSet = readonly (readonly [string, string])[]

/**
 * Checks a header map from NewProxy. Throws `WsfrpError('ERR_PROXY')` for names or values Node
 * would refuse to send, and for fields that control framing or the connection.
 */
export function checkHeaderSet(map: Record<string, string> | undefined, what: string): HeaderSet {
  if (map === undefined || map === null) return []
  if (typeof map !== 'object') throw new WsfrpError('ERR_PROXY', `${what} must be a map of header names to values`)
  const out: [string, string][] = []
  for (const [name, value] of Object.entries(map)) {
    if (typeof value !== 'string') throw new WsfrpError('ERR_PROXY', `${what}: the value of "${name}" must be a string`)
    try {
      http.validateHeaderName(name)
      http.validateHeaderValue(name, value)
    } catch (err) {
      throw new WsfrpError('ERR_PROXY', `${what}: invalid header "${name}": ${(err as Error).message}`)
    }
    if (NOT_SETTABLE.has(name.toLowerCase())) throw new WsfrpError('ERR_PROXY', `${what}: "${name}" cannot be set (the server manages it)`)
    out.push([name, value])
  }
  return out
}

/** Field names listed in Connection headers (they are hop-by-hop too, RFC 9110 §7.6.1). */
function connectionTokens(raw: readonly string[]): Set<string> | undefined {
  let out: Set<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() !== 'connection') continue
    for (const t of raw[i + 1]!.split(',')) {
      const tok = t.trim().toLowerCase()
      if (tok !== '') (out ??= new Set()).add(tok)
    }
  }
  return out
}

/** Replaces every field named like one in `set` by its value (case-insensitive), keeping the rest. */
function applySet(raw: string[], set: HeaderSet): string[] {
  if (set.length === 0) return raw
  const names = new Set(set.map(([n]) => n.toLowerCase()))
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) if (!names.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!)
  for (const [n, v] of set) out.push(n, v)
  return out
}

/** Who sent the request, as far as can be believed. */
export interface ClientAddress {
  /** The TCP peer (normalised: no `::ffff:` prefix). */
  peer: string
  peerPort: number
  /** True when the peer is a trusted proxy. */
  trusted: boolean
  /**
   * The original client: the peer itself, or, behind trusted proxies, the right-most untrusted
   * address of `X-Forwarded-For` (or a trusted peer's `X-Real-IP` when it sent no X-Forwarded-For).
   */
  ip: string
}

/** Works out {@link ClientAddress} from the socket and (only for trusted peers) the forwarding headers. */
export function clientAddress(req: http.IncomingMessage, trusted: TrustedProxies): ClientAddress {
  const peer = normalizeIp(req.socket.remoteAddress)
  const peerPort = req.socket.remotePort ?? 0
  const isTrusted = trusted.has(peer)
  let ip = peer
  if (isTrusted) {
    const xff = joined(req.rawHeaders, 'x-forwarded-for')
    if (xff !== undefined) {
      const hops = xff.split(',').map((s) => normalizeIp(s))
      for (let i = hops.length - 1; i >= 0; i--) {
        const hop = hops[i]!
        if (net.isIP(hop) === 0) break
        ip = hop
        if (!trusted.has(hop)) break
      }
    } else {
      const real = normalizeIp(joined(req.rawHeaders, 'x-real-ip'))
      if (net.isIP(real) !== 0) ip = real
    }
  }
  return { peer, peerPort, trusted: isTrusted, ip }
}

/** All values of a field joined with ", " (undefined when absent). */
function joined(raw: readonly string[], lower: string): string | undefined {
  let out: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === lower) out = out === undefined ? raw[i + 1]! : `${out}, ${raw[i + 1]!}`
  }
  return out
}

/** First value of a field (undefined when absent). */
export function firstHeader(raw: readonly string[], lower: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === lower) return raw[i + 1]
  return undefined
}

export interface UpstreamHeadOptions {
  /** `host_header_rewrite`, or "" to keep the request's Host. */
  hostRewrite: string
  /** The proxy's `headers`, set last. */
  headers: HeaderSet
  client: ClientAddress
  /** The connection to the user is TLS (for X-Forwarded-Proto). */
  encrypted: boolean
  /** The request's Host as received (for X-Forwarded-Host); from an absolute-form URL if there was one. */
  host: string
  /** Keep `Expect: 100-continue`: the user has not been sent a 100 yet (checkContinue path). */
  keepExpect: boolean
  /** The value of `Upgrade` for an upgrade request, else undefined. */
  upgrade: string | undefined
}

/**
 * The header list written to the work stream: the request's own fields minus hop-by-hop ones, the
 * body framing re-stated (Node's client then chunks or counts the body itself), `Host` (rewritten if
 * configured) first, X-Forwarded-For/-Proto/-Host and X-Real-IP, and the proxy's `headers` last.
 */
export function upstreamHead(req: http.IncomingMessage, o: UpstreamHeadOptions): string[] {
  const raw = req.rawHeaders
  const conn = connectionTokens(raw)
  const out: string[] = ['Host', o.hostRewrite !== '' ? o.hostRewrite : o.host]
  let chunked = false
  let length = false
  let te = false
  let xfp: string | undefined
  let xfh: string | undefined
  let xff: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const value = raw[i + 1]!
    const lower = name.toLowerCase()
    if (lower === 'host') continue
    if (lower === 'transfer-encoding') {
      chunked = true // Node's parser accepts only a chunked last coding (else 400): the body is chunked
      continue
    }
    if (lower === 'te') {
      // The one TE value that is end-to-end in meaning: the user accepts trailers.
      if (/(?:^|,)\s*trailers\s*(?:;|,|$)/i.test(value)) te = true
      continue
    }
    if (HOP_BY_HOP.has(lower) || conn?.has(lower)) continue
    if (lower === 'expect' && !o.keepExpect) continue
    if (lower === 'content-length') length = true
    if (FORWARDING.has(lower)) {
      if (!o.client.trusted) continue
      if (lower === 'x-forwarded-for') {
        xff = xff === undefined ? value : `${xff}, ${value}`
        continue
      }
      if (lower === 'x-real-ip') continue
      if (lower === 'x-forwarded-proto') xfp ??= value
      else if (lower === 'x-forwarded-host') xfh ??= value
      else out.push(name, value) // a trusted Forwarded goes on as is
      continue
    }
    out.push(name, value)
  }
  if (chunked) out.push('Transfer-Encoding', 'chunked')
  else if (!length && o.upgrade === undefined && !NO_BODY_BY_DEFAULT.has(req.method ?? 'GET')) out.push('Content-Length', '0')
  if (te) out.push('TE', 'trailers')
  if (o.upgrade !== undefined) out.push('Connection', 'Upgrade', 'Upgrade', o.upgrade)
  out.push('X-Forwarded-For', xff === undefined ? o.client.peer : `${xff}, ${o.client.peer}`)
  out.push('X-Forwarded-Proto', xfp ?? (o.encrypted ? 'https' : 'http'))
  out.push('X-Forwarded-Host', xfh ?? o.host)
  out.push('X-Real-IP', o.client.ip)
  return applySet(out, o.headers)
}

/**
 * The header list sent back to the user: the local service's fields minus hop-by-hop ones (Node's
 * server frames the body again), `Trailer` kept when trailers are forwarded, then the proxy's
 * `response_headers`. For a 101 answer `Connection` and `Upgrade` stay.
 */
export function downstreamHead(rawHeaders: readonly string[], responseHeaders: HeaderSet, switching: boolean): string[] {
  const conn = connectionTokens(rawHeaders)
  const out: string[] = []
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    const lower = name.toLowerCase()
    if (switching && (lower === 'connection' || lower === 'upgrade')) {
      out.push(name, rawHeaders[i + 1]!)
      continue
    }
    if (lower !== 'trailer' && (HOP_BY_HOP.has(lower) || conn?.has(lower))) continue
    out.push(name, rawHeaders[i + 1]!)
  }
  return applySet(out, responseHeaders)
}

/**
 * The head of an interim (1xx) response of the local service, as relayed to the user: `HTTP/1.1`,
 * the status and reason, its fields minus hop-by-hop ones. Undefined for 100 (relayed through
 * Node's `'continue'`) and 101 (an upgrade), which have their own paths. Go's ReverseProxy (used by
 * frps ≥ 0.70, frp-wire-protocol.md §10.3) passes 1xx responses on the same way since Go 1.20
 * (`Got1xxResponse`). Fields Node would refuse to write are dropped rather than sent raw, and a
 * reason phrase with control characters becomes empty (RFC 9112 §4 allows an empty one).
 */
export function interimHead(status: number, reason: string | undefined, rawHeaders: readonly string[]): string | undefined {
  if (!Number.isInteger(status) || status < 102 || status > 199) return undefined
  const conn = connectionTokens(rawHeaders)
  const phrase = reason !== undefined && /^[\t\x20-\x7e]*$/.test(reason) ? reason : ''
  let head = `HTTP/1.1 ${status} ${phrase}\r\n`
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    const value = rawHeaders[i + 1]!
    const lower = name.toLowerCase()
    if (HOP_BY_HOP.has(lower) || conn?.has(lower)) continue
    try {
      http.validateHeaderName(name)
      http.validateHeaderValue(name, value)
    } catch {
      continue
    }
    head += `${name}: ${value}\r\n`
  }
  return `${head}\r\n`
}

/** Parses `Basic base64(user:password)`; undefined when absent or not Basic. */
export function basicCredentials(value: string | undefined): { user: string; password: string } | undefined {
  if (value === undefined) return undefined
  const m = /^\s*basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(value)
  if (m === null) return undefined
  const text = Buffer.from(m[1]!, 'base64').toString('utf8')
  const colon = text.indexOf(':')
  if (colon < 0) return undefined
  return { user: text.slice(0, colon), password: text.slice(colon + 1) }
}
