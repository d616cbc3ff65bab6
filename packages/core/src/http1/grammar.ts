/**
 * Character classes and small helpers of HTTP/1.1 (RFC 9110 §5.6, RFC 9112), shared by the parsers
 * and the writers. Header bytes are handled as Latin-1: one byte is one UTF-16 code unit, which is
 * what the WHATWG `Headers` class calls a ByteString. (`TextDecoder('latin1')` is windows-1252 in
 * the Encoding Standard and would change bytes 0x80–0x9F, so it is not used.)
 */
import { WsfrpError, type ErrorCode } from '../errors.js'

/**
 * A malformed or over-limit HTTP message. `status` is the response a server sends for such a request
 * before it closes the connection (400, 414, 431, 501, 505). For a bad response (ResponseParser) it
 * only classifies the failure; a proxy would answer its own client 502.
 */
export class HttpError extends WsfrpError {
  /** The HTTP status that describes the failure (e.g. 431 for too large a header section). */
  readonly status: number
  constructor(code: ErrorCode, status: number, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.status = status
  }
}

/** A header (or trailer) field as received or to be sent: name as written, value without surrounding spaces. */
export type HeaderField = [name: string, value: string]

/** tchar (RFC 9110 §5.6.2): the bytes allowed in a token (method, header name, transfer coding). */
const TCHAR = new Uint8Array(256)
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1

/** field-vchar, SP and HTAB (RFC 9110 §5.5): VCHAR 0x21–0x7E and obs-text 0x80–0xFF. CTLs and DEL are not. */
const FIELD_CHAR = new Uint8Array(256)
FIELD_CHAR[0x09] = 1
for (let c = 0x20; c <= 0x7e; c++) FIELD_CHAR[c] = 1
for (let c = 0x80; c <= 0xff; c++) FIELD_CHAR[c] = 1

export function isTchar(b: number): boolean {
  return TCHAR[b] === 1
}

export function isFieldChar(b: number): boolean {
  return FIELD_CHAR[b] === 1
}

/** True when `s` is a non-empty token (method names, header names). */
export function isToken(s: string): boolean {
  if (s.length === 0) return false
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c > 0xff || TCHAR[c] !== 1) return false
  }
  return true
}

/** True when `s` may be sent as a field value: Latin-1 field characters only (so no CR, LF or NUL). */
export function isFieldValue(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c > 0xff || FIELD_CHAR[c] !== 1) return false
  }
  return true
}

/** Bytes → string, one char per byte. */
export function latin1(bytes: Uint8Array, start: number, end: number): string {
  let s = ''
  // fromCharCode's argument count is bounded by the engine's stack: go in slices.
  for (let i = start; i < end; i += 4096) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, Math.min(end, i + 4096)) as unknown as number[])
  }
  return s
}

/** String (chars ≤ 0xFF, already validated) → bytes, one byte per char. */
export function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i)
  return out
}

/**
 * Splits a comma-separated field value into its lower-cased, trimmed, non-empty members
 * (RFC 9110 §5.6.1: empty list elements are ignored).
 */
export function listTokens(value: string): string[] {
  const out: string[] = []
  for (const part of value.split(',')) {
    const t = part.trim().toLowerCase()
    if (t !== '') out.push(t)
  }
  return out
}

/** Reason phrases for the statuses a handler commonly returns; others are sent with an empty reason. */
const REASONS: Record<number, string> = {
  100: 'Continue',
  101: 'Switching Protocols',
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  206: 'Partial Content',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  304: 'Not Modified',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  417: 'Expectation Failed',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
}

/** The standard reason phrase of `status`, or `''` when this table does not know it. */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? ''
}
