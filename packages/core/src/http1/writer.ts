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
const EMPTY = new Uint8Array(0)
/** Bodies up to this size are framed into one new array; larger ones go out as [size line, chunk, CRLF] without a copy. */
const COPY_BELOW = 2048

function writeError(message: string): WsfrpError {
  return new WsfrpError('ERR_HTTP_WRITE', message)
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

/** `Transfer-Encoding: chunked` and the `Trailer` field announcing `names`, if any. */
function chunkedFields(names: readonly string[] | undefined): string {
  for (const n of names ?? []) if (!isToken(n)) throw writeError(`invalid trailer name ${JSON.stringify(n)}`)
  return 'Transfer-Encoding: chunked\r\n' + (names?.length ? `Trailer: ${names.join(', ')}\r\n` : '')
}

/** What both writers offer; `head()` takes {@link ResponseHeadInit} or {@link RequestHeadInit}. */
export interface MessageWriter<I> {
  /** How the body is delimited; known after `head()`. */
  framing: Framing
  /** Whether the connection may carry another message after this one; known after `head()`. */
  keepAlive: boolean
  /** Bytes of body written so far (before framing). */
  readonly bodyBytes: number
  /** The start line and header section. Sets `framing` and `keepAlive`. */
  head(init: I): Uint8Array
  /**
   * Frames one piece of body. Returns the bytes to send, in order (none for an empty piece or a
   * message without a body: a HEAD answer's body is dropped). Throws `ERR_HTTP_WRITE` past the
   * announced Content-Length. The caller must not modify `chunk` afterwards.
   */
  body(chunk: Uint8Array): Uint8Array[]
  /**
   * Ends the message: the last chunk and `trailers` for a chunked body (trailers are dropped
   * otherwise). Throws `ERR_HTTP_WRITE` when a fixed-length body is shorter than announced.
   * Returns the bytes to send (possibly empty).
   */
  end(trailers?: HeaderPairs): Uint8Array
}

/**
 * Body framing and length accounting, shared by both writers. `build` validates a head and
 * returns its bytes, framing and body length (it may set `keepAlive`). Written as a closure rather
 * than a class because the response writer ships in the service-worker bundle, whose size is
 * budgeted: locals minify to one letter where `this._member` does not.
 */
function messageWriter<I>(build: (init: I, w: MessageWriter<I>) => [Uint8Array, Framing, number]): MessageWriter<I> {
  let length = 0
  let written = 0
  // 0: before head(), 1: body, 2: after end()
  let state = 0
  const order = (call: string): void => {
    if (state !== 1) throw writeError(`${call}() ${state ? 'after end()' : 'before head()'}`)
  }
  const w: MessageWriter<I> = {
    framing: 'none',
    keepAlive: true,
    get bodyBytes() {
      return written
    },
    head(init) {
      const [bytes, framing, len] = build(init, w)
      if (state) throw writeError('head() called twice')
      w.framing = framing
      length = len
      state = 1
      return bytes
    },
    body(chunk) {
      order('body')
      const n = chunk.length
      const framing = w.framing
      if (n === 0 || framing === 'none') return []
      written += n
      if (framing === 'close') return [chunk]
      if (framing === 'length') {
        if (written > length) throw writeError(`body longer than its Content-Length (${length})`)
        return [chunk]
      }
      const size = latin1Bytes(`${n.toString(16)}\r\n`)
      if (n >= COPY_BELOW) return [size, chunk, CRLF]
      const out = new Uint8Array(size.length + n + 2)
      out.set(size)
      out.set(chunk, size.length)
      out[out.length - 2] = 13
      out[out.length - 1] = 10
      return [out]
    },
    end(trailers) {
      order('end')
      state = 2
      if (w.framing === 'length' && written !== length) {
        throw writeError(`body shorter than its Content-Length (${length})`)
      }
      if (w.framing !== 'chunked') return EMPTY
      let t = '0\r\n'
      for (const [name, value] of trailers ?? []) {
        if (!isToken(name) || MANAGED.has(name.toLowerCase())) throw writeError(`invalid trailer field ${JSON.stringify(name)}`)
        if (!isFieldValue(value)) throw writeError(`invalid value for trailer ${name}`)
        t += `${name}: ${value}\r\n`
      }
      return latin1Bytes(t + '\r\n')
    },
  }
  return w
}

/**
 * The Content-Length of a message: from `bodyLength` and the caller's fields, which must agree;
 * undefined when neither gives one.
 */
function bodyLengthOf(f: SortedFields, bodyLength: number | undefined): number | undefined {
  if (bodyLength === undefined) return f.contentLength
  if (!Number.isSafeInteger(bodyLength) || bodyLength < 0) throw writeError(`bodyLength must be a non-negative integer, got ${bodyLength}`)
  if (f.contentLength !== undefined && f.contentLength !== bodyLength) {
    throw writeError(`Content-Length ${f.contentLength} disagrees with bodyLength ${bodyLength}`)
  }
  return bodyLength
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
export type ResponseWriter = MessageWriter<ResponseHeadInit>

// A function that returns its object (see messageWriter), so `new ResponseWriter(...)` keeps working.
export const ResponseWriter = function (opts?: ResponseWriterOptions): ResponseWriter {
  const method = opts?.requestMethod ?? 'GET'
  const versionMinor = opts?.requestVersionMinor ?? 1
  const requestKeepAlive = opts?.keepAlive ?? true
  return messageWriter<ResponseHeadInit>((init, w) => {
    const status = init.status
    if (!Number.isInteger(status) || status < 100 || status > 999 || (status < 200 && status !== 101)) {
      throw writeError(`invalid response status ${status}`)
    }
    const reason = init.statusText || reasonPhrase(status)
    if (!isFieldValue(reason)) throw writeError('invalid status text')
    const f = sortFields(init.headers)
    const length = bodyLengthOf(f, init.bodyLength)
    let keepAlive = requestKeepAlive && !f.close
    let framing: Framing = 'none'
    let lines = f.lines
    if (status === 101) {
      // The connection now belongs to the new protocol; it must name it.
      lines += 'Connection: upgrade\r\n'
    } else if (status === 204 || status === 304 || method === 'HEAD') {
      // RFC 9110 §8.6: a 204 has no Content-Length; HEAD and 304 may state the representation's.
      if (status !== 204 && length !== undefined) lines += `Content-Length: ${length}\r\n`
    } else if (length !== undefined) {
      framing = 'length'
      lines += `Content-Length: ${length}\r\n`
    } else if (versionMinor === 1) {
      framing = 'chunked'
      lines += chunkedFields(init.trailers)
    } else {
      framing = 'close'
      keepAlive = false
    }
    if (status !== 101) {
      if (!keepAlive) lines += 'Connection: close\r\n'
      else if (versionMinor === 0) lines += 'Connection: keep-alive\r\n'
    }
    w.keepAlive = status !== 101 && keepAlive
    return [latin1Bytes(`HTTP/1.1 ${status} ${reason}\r\n${lines}\r\n`), framing, length ?? 0]
  })
} as unknown as {
  new (opts?: ResponseWriterOptions): ResponseWriter
  /** An interim response such as `100 Continue` (no fields): bytes to send before the final head. */
  interim(status?: number): Uint8Array
}

ResponseWriter.interim = (status = 100): Uint8Array => {
  if (!Number.isInteger(status) || status < 100 || status > 199 || status === 101) throw writeError(`not an interim status: ${status}`)
  return latin1Bytes(`HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n\r\n`)
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
export type RequestWriter = MessageWriter<RequestHeadInit>

export const RequestWriter = function (): RequestWriter {
  return messageWriter<RequestHeadInit>((init, w) => {
    if (!isToken(init.method)) throw writeError(`invalid method ${JSON.stringify(init.method)}`)
    if (!/^[\x21-\x7e]+$/.test(init.target)) throw writeError(`invalid request target ${JSON.stringify(init.target)}`)
    const f = sortFields(init.headers)
    const length = bodyLengthOf(f, init.bodyLength)
    let lines = f.lines
    let framing: Framing = 'none'
    if (init.chunked === true) {
      if (length !== undefined) throw writeError('a chunked request cannot also have a Content-Length')
      framing = 'chunked'
      lines += chunkedFields(init.trailers)
    } else if (length !== undefined && (length > 0 || !NO_BODY_METHODS.has(init.method))) {
      framing = 'length'
      lines += `Content-Length: ${length}\r\n`
    }
    w.keepAlive = (init.keepAlive ?? true) && !f.close
    if (!w.keepAlive) lines += 'Connection: close\r\n'
    return [latin1Bytes(`${init.method} ${init.target} HTTP/1.1\r\n${lines}\r\n`), framing, length ?? 0]
  })
} as unknown as new () => RequestWriter

/** Methods whose requests usually have no body: an explicit `Content-Length: 0` is left out (as Go and Node do). */
const NO_BODY_METHODS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'])

