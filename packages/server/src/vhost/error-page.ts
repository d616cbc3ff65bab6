import type * as http from 'node:http'
import type { Duplex } from 'node:stream'

/**
 * The value of the `X-Wsfrp-Error` header on every error answer of the vhost proxy, stable across
 * versions so that monitoring and tests can tell failures apart without parsing HTML.
 */
export type VhostErrorCode =
  /** 404: no proxy serves this host and path. */
  | 'no-route'
  /** 401/407: the proxy requires Basic auth (`http_user`/`http_pwd`) and the credentials are missing or wrong. */
  | 'unauthorized'
  /** 502: the client that registered the host is gone, or gave no work connection in time. */
  | 'client-offline'
  /** 502: the work connection closed or failed before a response (the local service refused or reset). */
  | 'upstream-refused'
  /** 504: no response headers within `responseHeaderTimeoutMs`. */
  | 'upstream-timeout'
  /** 400: the request cannot be parsed or forwarded. */
  | 'bad-request'
  /** 431: the request head is larger than the server's `maxHeaderSize`. */
  | 'header-too-large'
  /** 405: a `CONNECT` request; the vhost never opens tunnels to arbitrary targets. */
  | 'method-not-allowed'
  /** 505: not HTTP/1.x (an HTTP/2 prior-knowledge preface, `HTTP/2.0`, HTTP/0.9 or an unparsable version). */
  | 'version-not-supported'

/** The header that carries a {@link VhostErrorCode}. */
export const ERROR_HEADER = 'X-Wsfrp-Error'

const TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
}

const EXPLAIN: Record<VhostErrorCode, string> = {
  'no-route': 'No tunnel serves this host name and path.',
  unauthorized: 'This tunnel requires a user name and password.',
  'client-offline': 'The tunnel for this host name is offline: its client is not connected.',
  'upstream-refused': 'The tunnel client could not get an answer from its local service.',
  'upstream-timeout': 'The local service behind this tunnel did not answer in time.',
  'bad-request': 'The request could not be understood.',
  'header-too-large': 'The request headers are too large.',
  'method-not-allowed': 'CONNECT is not served here: this server does not open tunnels to other hosts.',
  'version-not-supported': 'Only HTTP/1.0 and HTTP/1.1 are served here.',
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** The small HTML page of an error answer. */
export function errorPageHtml(status: number, code: VhostErrorCode): string {
  const title = `${status} ${TEXT[status] ?? 'Error'}`
  return (
    `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${title}</title></head>\n` +
    `<body><h1>${title}</h1><p>${escapeHtml(EXPLAIN[code])}</p><hr><p>wsfrps (${code})</p></body></html>\n`
  )
}

/**
 * Answers with an error page: `Content-Type: text/html`, `X-Wsfrp-Error: <code>`, `Cache-Control:
 * no-store`. Extra headers (e.g. `WWW-Authenticate`) are added. Does nothing if headers were sent.
 */
export function sendErrorPage(
  res: http.ServerResponse,
  status: number,
  code: VhostErrorCode,
  extraHeaders?: Record<string, string>,
): void {
  if (res.headersSent || res.destroyed) return
  const body = Buffer.from(errorPageHtml(status, code))
  res.writeHead(status, TEXT[status], {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': String(body.length),
    'Cache-Control': 'no-store',
    [ERROR_HEADER]: code,
    ...extraHeaders,
  })
  res.end(body)
}

/**
 * A `'clientError'` listener for the server's http.Server: requests that Node's parser refuses
 * (malformed request line or header, oversized head, not HTTP/1.x) get a 400, 431 or 505 error
 * page and the connection is closed; they never reach a route. Install with `server.on('clientError', answerClientError)`.
 */
export function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  const s = socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null }
  // A reset by the peer, or an error after part of a response went out: nothing sensible to say.
  if (err.code === 'ECONNRESET' || !s.writable || s._httpMessage?.headersSent === true) {
    s.destroy()
    return
  }
  let status = 400
  let code: VhostErrorCode = 'bad-request'
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    status = 431
    code = 'header-too-large'
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408
  } else if (err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') {
    status = 413
  } else if (err.code === 'HPE_PAUSED_H2_UPGRADE' || err.code === 'HPE_INVALID_VERSION') {
    // llhttp stops at an HTTP/2 prior-knowledge preface (`PRI * HTTP/2.0`, RFC 9113 §3.4) and at
    // versions such as HTTP/1.2 or HTTP/3.0 (measured on Node 20). frps ≥ 0.70 would speak h2c here
    // (frp-wire-protocol.md §10.3); wsfrps speaks HTTP/1.x only, so it says so and closes.
    status = 505
    code = 'version-not-supported'
  }
  answerOnSocket(s, status, code)
}

/**
 * Writes an error page straight onto a socket that no ServerResponse owns (a refused upgrade or
 * CONNECT, a request Node could not parse), with `Connection: close`, and closes it once written.
 * Does nothing but destroy the socket when it is no longer writable.
 */
export function answerOnSocket(socket: Duplex, status: number, code: VhostErrorCode, extraHeaders?: Record<string, string>): void {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  const body = errorPageHtml(status, code)
  let extra = ''
  for (const [k, v] of Object.entries(extraHeaders ?? {})) extra += `${k}: ${v}\r\n`
  const head =
    `HTTP/1.1 ${status} ${TEXT[status] ?? 'Error'}\r\n` +
    `Content-Type: text/html; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Cache-Control: no-store\r\n${ERROR_HEADER}: ${code}\r\n${extra}Connection: close\r\n\r\n`
  socket.end(head + body, () => socket.destroy())
}
