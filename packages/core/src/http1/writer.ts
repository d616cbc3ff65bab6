/**
 * HTTP/1.1 message writers (RFC 9112): {@link ResponseWriter} for handler targets and
 * {@link RequestWriter} for the other direction. They choose the framing (Content-Length when the
 * length is known, else chunked, or read-until-close for HTTP/1.0 peers), drop the hop-by-hop fields
 * a caller must not decide, validate every name and value (no CR/LF injection), and check that a
 * fixed-length body has exactly the announced length. Misuse is `ERR_HTTP_WRITE`.
 */
import { WsfrpError } from '../errors.js'
import { isFieldValue, isToken, latin1Bytes, listTokens, reasonPhrase, type HeaderField } from './grammar.js'

/** How a written body is delimited: none (HEAD, 1xx, 204, 304), Content-Length, chunked, or connection close. */
export type Framing = 'none' | 'length' | 'chunked' | 'close'

/** Header fields to send, e.g. a WHATWG `Headers` object or `[name, value]` pairs. */
export type HeaderPairs = Iterable<readonly [string, string]>

/**
 * Fields a writer sets itself: framing (Content-Length, Transfer-Encoding, Trailer) and
 * connection management (RFC 9110 §7.6.1). A caller's `Content-Length` is read as the body length;
 * a caller's `Connection: close` is honoured; the rest is dropped.
 */
const MANAGED = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'content-length'])

const CRLF = latin1Bytes('\r\n')
const LAST_CHUNK = latin1Bytes('0\r\n')
const EMPTY = new Uint8Array(0)
/** Bodies up to this size are framed into one new array; larger ones go out as [size line, chunk, CRLF] without a copy. */
const COPY_BELOW = 2048

function writeError(message: string): WsfrpError {
  return new WsfrpError('ERR_HTTP_WRITE', message)
}

function checkLength(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw writeError(`${what} must be a non-negative integer, got ${n}`)
}

/** The caller's fields with the managed ones taken out, validated. */
interface SortedFields {
  lines: string
  contentLength: number | undefined
  close: boolean
}

function sortFields(headers: HeaderPairs | undefined): SortedFields {
  let lines = ''
  let contentLength: number | undefined
  let close = false
  if (headers !== undefined) {
    for (const [name, value] of headers) {
      if (!isToken(name)) throw writeError(`invalid header name ${JSON.stringify(name)}`)
      const v = String(value).replace(/^[ \t]+|[ \t]+$/g, '')
      if (!isFieldValue(v)) throw writeError(`invalid value for header ${name}`)
      const lower = name.toLowerCase()
      if (MANAGED.has(lower)) {
        if (lower === 'content-length') {
          if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v))) throw writeError(`invalid Content-Length ${JSON.stringify(v)}`)
          const n = Number(v)
          if (contentLength !== undefined && contentLength !== n) throw writeError('conflicting Content-Length values')
          contentLength = n
        } else if (lower === 'connection' && listTokens(v).includes('close')) close = true
        continue
      }
      lines += `${name}: ${v}\r\n`
    }
  }
  return { lines, contentLength, close }
}

function trailerNames(names: readonly string[] | undefined): string | undefined {
  if (names === undefined || names.length === 0) return undefined
  for (const n of names) if (!isToken(n)) throw writeError(`invalid trailer name ${JSON.stringify(n)}`)
  return names.join(', ')
}

/** Body framing and length accounting, shared by both writers. */
abstract class MessageWriter {
  /** How the body is delimited; known after `head()`. */
  framing: Framing = 'none'
  /** Whether the connection may carry another message after this one; known after `head()`. */
  keepAlive = true
  private _length = 0
  private _written = 0
  private _state: 'head' | 'body' | 'done' = 'head'

  protected _begin(framing: Framing, length: number): void {
    if (this._state !== 'head') throw writeError('head() called twice')
    this.framing = framing
    this._length = length
    this._state = 'body'
  }

  /** Bytes of body written so far (before framing). */
  get bodyBytes(): number {
    return this._written
  }

  /**
   * Frames one piece of body. Returns the bytes to send, in order (none for an empty piece or a
   * message without a body: a HEAD answer's body is dropped). Throws `ERR_HTTP_WRITE` past the
   * announced Content-Length. The caller must not modify `chunk` afterwards.
   */
  body(chunk: Uint8Array): Uint8Array[] {
    if (this._state !== 'body') throw writeError(this._state === 'head' ? 'body() before head()' : 'body() after end()')
    const n = chunk.length
    if (n === 0 || this.framing === 'none') return []
    this._written += n
    switch (this.framing) {
      case 'length':
        if (this._written > this._length) throw writeError(`body longer than its Content-Length (${this._length})`)
        return [chunk]
      case 'close':
        return [chunk]
      default: {
        const size = latin1Bytes(`${n.toString(16)}\r\n`)
        if (n >= COPY_BELOW) return [size, chunk, CRLF]
        const out = new Uint8Array(size.length + n + 2)
        out.set(size)
        out.set(chunk, size.length)
        out[out.length - 2] = 13
        out[out.length - 1] = 10
        return [out]
      }
    }
  }

  /**
   * Ends the message: the last chunk and `trailers` for a chunked body (trailers are dropped
   * otherwise). Throws `ERR_HTTP_WRITE` when a fixed-length body is shorter than announced.
   * Returns the bytes to send (possibly empty).
   */
  end(trailers?: HeaderPairs): Uint8Array {
    if (this._state !== 'body') throw writeError(this._state === 'head' ? 'end() before head()' : 'end() called twice')
    this._state = 'done'
    if (this.framing === 'length' && this._written !== this._length) {
      throw writeError(`body of ${this._written} bytes is shorter than its Content-Length (${this._length})`)
    }
    if (this.framing !== 'chunked') return EMPTY
    let t = ''
    if (trailers !== undefined) {
      for (const [name, value] of trailers) {
        if (!isToken(name) || MANAGED.has(name.toLowerCase())) throw writeError(`invalid trailer field ${JSON.stringify(name)}`)
        if (!isFieldValue(value)) throw writeError(`invalid value for trailer ${name}`)
        t += `${name}: ${value}\r\n`
      }
    }
    if (t === '') return latin1Bytes('0\r\n\r\n')
    const tb = latin1Bytes(`${t}\r\n`)
    const out = new Uint8Array(LAST_CHUNK.length + tb.length)
    out.set(LAST_CHUNK)
    out.set(tb, LAST_CHUNK.length)
    return out
  }
}

/** Options of {@link ResponseWriter}: what is known about the request being answered. */
export interface ResponseWriterOptions {
  /** The request's method: a HEAD answer has no body. Default `'GET'`. */
  requestMethod?: string
  /** The request's HTTP minor version: HTTP/1.0 peers get no chunked encoding. Default 1. */
  requestVersionMinor?: 0 | 1
  /** Whether the connection may stay open after this response (the request's keep-alive). Default true. */
  keepAlive?: boolean
}

/** The start of a response. */
export interface ResponseHeadInit {
  /** 100–999. 1xx other than 101 are interim responses: use {@link ResponseWriter.interim}. */
  status: number
  /** Reason phrase. Default: the standard one for `status`, or empty. */
  statusText?: string
  headers?: HeaderPairs
  /**
   * The body length in bytes when known; a `Content-Length` among `headers` counts too (they must
   * agree). Unknown: chunked for HTTP/1.1 requests, else the body ends with the connection.
   */
  bodyLength?: number
  /** Trailer field names announced in `Trailer` (only used with chunked framing). */
  trailers?: readonly string[]
}

/** Serializes one HTTP/1.1 response: `head()`, then `body()` per piece, then `end()`. */
export class ResponseWriter extends MessageWriter {
  private readonly _method: string
  private readonly _versionMinor: 0 | 1
  private readonly _requestKeepAlive: boolean

  constructor(opts?: ResponseWriterOptions) {
    super()
    this._method = opts?.requestMethod ?? 'GET'
    this._versionMinor = opts?.requestVersionMinor ?? 1
    this._requestKeepAlive = opts?.keepAlive ?? true
  }

  /** An interim response such as `100 Continue` (no fields): bytes to send before the final head. */
  static interim(status = 100): Uint8Array {
    if (!Number.isInteger(status) || status < 100 || status > 199 || status === 101) throw writeError(`not an interim status: ${status}`)
    return latin1Bytes(`HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n\r\n`)
  }

  /** The status line and header section. Sets `framing` and `keepAlive`. */
  head(init: ResponseHeadInit): Uint8Array {
    const status = init.status
    if (!Number.isInteger(status) || status < 100 || status > 999 || (status < 200 && status !== 101)) {
      throw writeError(`invalid response status ${status}`)
    }
    const reason = init.statusText === undefined || init.statusText === '' ? reasonPhrase(status) : init.statusText
    if (!isFieldValue(reason)) throw writeError('invalid status text')
    const f = sortFields(init.headers)
    let length = f.contentLength
    if (init.bodyLength !== undefined) {
      checkLength(init.bodyLength, 'bodyLength')
      if (length !== undefined && length !== init.bodyLength) throw writeError(`Content-Length ${length} disagrees with bodyLength ${init.bodyLength}`)
      length = init.bodyLength
    }
    let keepAlive = this._requestKeepAlive && !f.close
    let framing: Framing
    let lines = f.lines
    if (status === 101) {
      framing = 'none'
      // The connection now belongs to the new protocol; it must name it.
      lines += 'Connection: upgrade\r\n'
    } else if (status === 204 || status === 304 || this._method === 'HEAD') {
      framing = 'none'
      // RFC 9110 §8.6: a 204 has no Content-Length; HEAD and 304 may state the representation's.
      if (status !== 204 && length !== undefined) lines += `Content-Length: ${length}\r\n`
    } else if (length !== undefined) {
      framing = 'length'
      lines += `Content-Length: ${length}\r\n`
    } else if (this._versionMinor === 1) {
      framing = 'chunked'
      lines += 'Transfer-Encoding: chunked\r\n'
      const t = trailerNames(init.trailers)
      if (t !== undefined) lines += `Trailer: ${t}\r\n`
    } else {
      framing = 'close'
      keepAlive = false
    }
    if (status !== 101) {
      if (!keepAlive) lines += 'Connection: close\r\n'
      else if (this._versionMinor === 0) lines += 'Connection: keep-alive\r\n'
    }
    this.keepAlive = status === 101 ? false : keepAlive
    this._begin(framing, length ?? 0)
    return latin1Bytes(`HTTP/1.1 ${status} ${reason}\r\n${lines}\r\n`)
  }
}

/** The start of a request. */
export interface RequestHeadInit {
  method: string
  /** The request-target, e.g. `/path?q=1` (visible ASCII, no spaces: percent-encode the rest). */
  target: string
  /** Include `Host` (required by HTTP/1.1 servers). */
  headers?: HeaderPairs
  /**
   * Body length in bytes; a `Content-Length` among `headers` counts too. `undefined` with
   * `chunked: true` streams a chunked body; with neither the request has no body.
   */
  bodyLength?: number
  /** Send the body chunked (length unknown). Default false. */
  chunked?: boolean
  /** Ask the server to close after the response (`Connection: close`). Default true (keep-alive). */
  keepAlive?: boolean
  /** Trailer field names announced in `Trailer` (chunked only). */
  trailers?: readonly string[]
}

/** Serializes one HTTP/1.1 request: `head()`, then `body()` per piece, then `end()`. */
export class RequestWriter extends MessageWriter {
  head(init: RequestHeadInit): Uint8Array {
    if (!isToken(init.method)) throw writeError(`invalid method ${JSON.stringify(init.method)}`)
    if (!/^[\x21-\x7e]+$/.test(init.target)) throw writeError(`invalid request target ${JSON.stringify(init.target)}`)
    const f = sortFields(init.headers)
    let length = f.contentLength
    if (init.bodyLength !== undefined) {
      checkLength(init.bodyLength, 'bodyLength')
      if (length !== undefined && length !== init.bodyLength) throw writeError(`Content-Length ${length} disagrees with bodyLength ${init.bodyLength}`)
      length = init.bodyLength
    }
    let lines = f.lines
    let framing: Framing
    if (init.chunked === true) {
      if (length !== undefined) throw writeError('a chunked request cannot also have a Content-Length')
      framing = 'chunked'
      lines += 'Transfer-Encoding: chunked\r\n'
      const t = trailerNames(init.trailers)
      if (t !== undefined) lines += `Trailer: ${t}\r\n`
    } else if (length !== undefined && (length > 0 || !NO_BODY_METHODS.has(init.method))) {
      framing = 'length'
      lines += `Content-Length: ${length}\r\n`
    } else {
      framing = 'none'
    }
    this.keepAlive = (init.keepAlive ?? true) && !f.close
    if (!this.keepAlive) lines += 'Connection: close\r\n'
    this._begin(framing, length ?? 0)
    return latin1Bytes(`${init.method} ${init.target} HTTP/1.1\r\n${lines}\r\n`)
  }
}

/** Methods whose requests usually have no body: an explicit `Content-Length: 0` is left out (as Go and Node do). */
const NO_BODY_METHODS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'])

