import { resolveServerURL, type ClientConfig } from '@wsfrp/core'

/**
 * The WebSocket URL wsfrpc dials: `serverURL` when set (any path; `/~!frp` when it had none),
 * otherwise `ws://serverAddr:serverPort/~!frp`, or `wss://…` with `transport.protocol = "wss"`.
 *
 * Unlike frpc, the `wss` URL keeps `serverPort` and the host stays `serverAddr` (frpc ≥ 0.51 drops
 * the port and puts `tls.serverName` in the URL, frp-wire-protocol.md §2.1); `tls.serverName` only
 * sets SNI and the name the certificate is checked against.
 */
export function serverUrlFor(cfg: ClientConfig): string {
  return resolveServerURL(cfg)
}

/** The URL without `user:password@`, for logs and messages. */
export function redactUrl(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/, '$1')
}

/**
 * The `Origin` header frpc sends: `http://<host[:port] of the URL>` (frp-wire-protocol.md §2.1,
 * also for wss). frps (x/net/websocket) answers 403 to an upgrade without one.
 */
export function originFor(url: string): string {
  return `http://${new URL(url).host}`
}

/** The host of the URL as it is written in an address (`[::1]` keeps its brackets). */
export function urlHost(url: string): string {
  try {
    return new URL(url).hostname
  } catch {
    return ''
  }
}

/**
 * Where users reach a proxy, from NewProxyResp.remote_addr: tcp answers `":<port>"` (frps leaves
 * the host out, frp-wire-protocol.md §8.3), so the server's host is put in front; http answers a
 * comma-joined `domain[:port]` list, shown as `http://` URLs.
 */
export function describeRemote(type: 'tcp' | 'http', remoteAddr: string, serverHost: string): string {
  if (type === 'http') {
    return remoteAddr
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map((s) => `http://${s}`)
      .join(', ')
  }
  if (remoteAddr.startsWith(':')) return `${serverHost}${remoteAddr}`
  return remoteAddr
}

/** The port in a tcp remote_addr (`":6000"`, `"0.0.0.0:6000"`, `"[::]:6000"`), or undefined. */
export function remotePortOf(remoteAddr: string): number | undefined {
  const m = /:(\d{1,5})$/.exec(remoteAddr.trim())
  if (m === null) return undefined
  const port = Number(m[1])
  return port >= 1 && port <= 65535 ? port : undefined
}
