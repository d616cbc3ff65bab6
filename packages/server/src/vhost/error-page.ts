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

/** The header that carries a {@link VhostErrorCode}. */
export const ERROR_HEADER = 'X-Wsfrp-Error'

const TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  504: 'Gateway Timeout',
}

const EXPLAIN: Record<VhostErrorCode, string> = {
  'no-route': 'No tunnel serves this host name and path.',
  unauthorized: 'This tunnel requires a user name and password.',
  'client-offline': 'The tunnel for this host name is offline: its client is not connected.',
  'upstream-refused': 'The tunnel client could not get an answer from its local service.',
  'upstream-timeout': 'The local service behind this tunnel did not answer in time.',
  'bad-request': 'The request could not be understood.',
  'header-too-large': 'The request headers are too large.',
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
 * (malformed request line or header, oversized head) get a 400 or 431 error page and the
 * connection is closed; they never reach a route. Install with `server.on('clientError', answerClientError)`.
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
  }
  const body = errorPageHtml(status, code)
  const head =
    `HTTP/1.1 ${status} ${TEXT[status] ?? 'Error'}\r\n` +
    `Content-Type: text/html; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Cache-Control: no-store\r\n${ERROR_HEADER}: ${code}\r\nConnection: close\r\n\r\n`
  s.end(head + body, () => s.destroy())
}
