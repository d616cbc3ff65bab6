/**
 * The HTTP/1.1 request parser. Only the browser handler target parses requests, and it ships in the
 * service-worker bundle with a hard size budget, so this one is written size-first: a closure
 * instead of a class (no `this.` at every state access) and only what requests need (no
 * close-delimited bodies, no upgrade stop). Its behaviour, limits and errors are those described
 * in parser.ts, which it shares the field and head analysis with; the response parser keeps the
 * class there.
 */
import { concatBytes } from '../bytes/concat.js'
import { WsfrpError } from '../errors.js'
import { HttpError, isFieldChar, isTchar, latin1, type HeaderField } from './grammar.js'
import {
  HTTP1_DEFAULT_LIMITS,
  hexValue,
  keepAliveOf,
  parseError,
  parseField,
  parseVersion,
  positiveLimit,
  summarize,
  type BodyKind,
  type Http1ParserHandler,
  type Http1ParserOptions,
  type RequestHead,
} from './parser.js'

const CR = 13
const LF = 10
const SP = 32
const HTAB = 9

// S_HEAD and S_TRAILERS collect lines; S_HEAD_DONE and S_END need no input.
const S_HEAD = 0
const S_TRAILERS = 1
const S_HEAD_DONE = 2
const S_END = 3
const S_BODY = 4
const S_CHUNK_DATA = 5
const S_CHUNK_SIZE = 6
const S_CHUNK_BWS = 7
const S_CHUNK_EXT = 8
const S_CHUNK_SIZE_LF = 9
const S_CHUNK_DATA_CR = 10
const S_CHUNK_DATA_LF = 11

const EMPTY = new Uint8Array(0)

/**
 * Parses HTTP/1.1 requests, one after another on the same connection (keep-alive, pipelining).
 *
 * Requests the server must refuse are errors with their status: 400 (malformed, smuggling-prone,
 * missing or repeated Host in HTTP/1.1), 414/431 (limits), 501 (a transfer coding other than
 * chunked), 505 (not HTTP/1.x). After an `Upgrade` or `CONNECT` request parsing simply goes on; a
 * consumer that accepts the switch pauses in `onMessageEnd` and calls `detach()`.
 */
export interface RequestParser {
  /**
   * Parses `chunk` as far as possible. Body bytes are not copied; the chunk must not be modified
   * afterwards. Throws {@link HttpError} on bad input; the parser then stays failed and every later
   * call throws the same error. Errors thrown by the handler propagate the same way.
   */
  push(chunk: Uint8Array): void
  /** Stops parsing after the current callback; later input is held. */
  pause(): void
  /** Goes on parsing held input. May call handlers and throw like `push()`. */
  resume(): void
  /**
   * The input ended (the peer half-closed). Once the held input is parsed: a clean end between
   * messages gives `onEof`, an end inside a message throws `ERR_HTTP_PARSE`.
   */
  finish(): void
  /**
   * Stops parsing for good and returns the unparsed bytes (after an accepted upgrade or CONNECT, the
   * start of the other protocol). Not from inside a callback: pause there, detach after `push()`.
   */
  detach(): Uint8Array
  /** Unparsed bytes held while paused, in bytes. */
  readonly bufferedBytes: number
  /** True between `pause()` and `resume()`. */
  readonly isPaused: boolean
  /** True when no message is in progress: the next byte starts a new message. */
  readonly isIdle: boolean
}

// A function that returns its object, so `new RequestParser(...)` keeps working for callers.
export const RequestParser = function (handler: Http1ParserHandler<RequestHead>, limits?: Http1ParserOptions): RequestParser {
  const maxHeaderBytes = positiveLimit('maxHeaderBytes', limits?.maxHeaderBytes, HTTP1_DEFAULT_LIMITS.maxHeaderBytes)
  const maxHeaders = positiveLimit('maxHeaders', limits?.maxHeaders, HTTP1_DEFAULT_LIMITS.maxHeaders)
  const maxChunkLine = positiveLimit('maxChunkLineBytes', limits?.maxChunkLineBytes, HTTP1_DEFAULT_LIMITS.maxChunkLineBytes)

  let state = S_HEAD
  let failure: Error | undefined
  let paused = false
  let running = false
  let detached = false
  let eof = false
  let eofDone = false
  /** Unparsed input: `queue[0]` from `queueOff` on, then the rest. */
  let queue: Uint8Array[] = []
  let queueOff = 0
  let held = 0
  /** Head (or trailer) bytes collected so far, and the [start, end) of each line without its CRLF. */
  let hbuf = EMPTY
  let hlen = 0
  let lineStart = 0
  const lines: number[] = []
  /** Body bytes left in a fixed-length body or in the current chunk. */
  let remaining = 0
  let chunkSize = 0
  let chunkDigits = 0
  let chunkLine = 0

  const run = (): void => {
    running = true
    try {
      while (!paused) {
        const c = queue[0]
        if (c !== undefined) {
          const to = exec(c, queueOff)
          held -= to - queueOff
          if (to < c.length) queueOff = to
          else {
            queue.shift()
            queueOff = 0
          }
        } else if (state === S_HEAD_DONE || state === S_END) {
          // No input left: an empty body's end still runs.
          exec(EMPTY, 0)
        } else {
          if (eof && !eofDone) {
            if (state !== S_HEAD || hlen !== 0 || lines.length !== 0) throw parseError('connection ended inside an HTTP message')
            eofDone = true
            handler.onEof?.()
          }
          break
        }
      }
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err))
      paused = true
      throw failure
    } finally {
      running = false
    }
  }

  /** Parses `c` from `off`; returns where it stopped (`c.length`, or earlier when paused). */
  const exec = (c: Uint8Array, off: number): number => {
    const len = c.length
    while (!paused) {
      if (state === S_HEAD_DONE) deliverHead()
      else if (state === S_END) {
        state = S_HEAD
        handler.onMessageEnd()
      } else if (off >= len) break
      else if (state === S_HEAD || state === S_TRAILERS) off = collect(c, off)
      else if (state === S_BODY || state === S_CHUNK_DATA) {
        const n = Math.min(remaining, len - off)
        remaining -= n
        if (remaining === 0) state = state === S_BODY ? S_END : S_CHUNK_DATA_CR
        handler.onBody(c.subarray(off, (off += n)))
      } else off = chunkFraming(c, off)
    }
    return off
  }

  /** The byte-level states of chunked framing (sizes, extensions, CRLFs). */
  const chunkFraming = (c: Uint8Array, off: number): number => {
    for (; off < c.length; ) {
      const b = c[off++]!
      if (state === S_CHUNK_SIZE) {
        const d = hexValue(b)
        if (d >= 0) {
          chunkSize = chunkSize * 16 + d
          chunkDigits++
          if (chunkSize > Number.MAX_SAFE_INTEGER) throw parseError('chunk size too large')
        } else if (chunkDigits === 0) throw parseError('invalid chunk size')
        else if (b === CR) state = S_CHUNK_SIZE_LF
        else if (b === 0x3b /* ; */) state = S_CHUNK_EXT
        else if (b === SP || b === HTAB) state = S_CHUNK_BWS
        else throw parseError('invalid chunk size')
      } else if (state === S_CHUNK_BWS) {
        // RFC 9112 §7.1.1: whitespace after the size is only allowed before an extension.
        if (b === 0x3b) state = S_CHUNK_EXT
        else if (b !== SP && b !== HTAB) throw parseError('invalid chunk size line')
      } else if (state === S_CHUNK_EXT) {
        // Extensions carry no meaning here; they are skipped, but only field characters (no CTLs,
        // so no bare LF) up to the CRLF, within maxChunkLineBytes.
        if (b === CR) state = S_CHUNK_SIZE_LF
        else if (!isFieldChar(b)) throw parseError('invalid character in a chunk extension')
      } else if (state === S_CHUNK_SIZE_LF) {
        if (b !== LF) throw parseError('chunk size line not terminated by CRLF')
        chunkLine = chunkDigits = 0
        remaining = chunkSize
        state = chunkSize === 0 ? S_TRAILERS : S_CHUNK_DATA
        chunkSize = 0
        return off
      } else {
        if (b !== (state === S_CHUNK_DATA_CR ? CR : LF)) throw parseError('chunk data not followed by CRLF')
        if (state++ === S_CHUNK_DATA_LF) {
          state = S_CHUNK_SIZE
          return off
        }
        continue
      }
      if (++chunkLine > maxChunkLine) throw new HttpError('ERR_HTTP_LIMIT', 400, `chunk size line longer than maxChunkLineBytes (${maxChunkLine})`)
    }
    return off
  }

  /** Collects head or trailer lines up to the empty line. */
  const collect = (c: Uint8Array, off: number): number => {
    const trailers = state === S_TRAILERS
    while (off < c.length) {
      const lf = c.indexOf(LF, off)
      const end = lf < 0 ? c.length : lf + 1
      const need = hlen + end - off
      if (need > maxHeaderBytes) {
        const inRequestLine = !trailers && lines.length === 0
        throw new HttpError(
          'ERR_HTTP_LIMIT',
          inRequestLine ? 414 : 431,
          `${inRequestLine ? 'request line' : trailers ? 'trailer section' : 'header section'} larger than maxHeaderBytes (${maxHeaderBytes})`,
        )
      }
      if (need > hbuf.length) {
        const grown = new Uint8Array(Math.min(maxHeaderBytes, Math.max(need, hbuf.length * 2, 1024)))
        grown.set(hbuf.subarray(0, hlen))
        hbuf = grown
      }
      hbuf.set(c.subarray(off, end), hlen)
      hlen = need
      off = end
      if (lf < 0) break
      const contentEnd = hlen - 2
      if (contentEnd < lineStart || hbuf[contentEnd] !== CR) throw parseError('bare LF in the header section')
      if (contentEnd === lineStart) {
        // Empty lines before a request line are ignored (RFC 9112 §2.2).
        if (!trailers && lines.length === 0) {
          hlen = lineStart = 0
          continue
        }
        const fields: HeaderField[] = []
        for (let i = trailers ? 0 : 2; i < lines.length; i += 2) fields.push(parseField(hbuf, lines[i]!, lines[i + 1]!))
        const s = lines[0]!
        const e = lines[1]!
        const buf = hbuf
        hlen = lineStart = lines.length = 0
        // A large head's buffer is not kept for the connection's lifetime.
        if (hbuf.length > 4096) hbuf = EMPTY
        if (trailers) {
          state = S_END
          if (fields.length > 0) handler.onTrailers?.(fields)
        } else {
          state = S_HEAD_DONE
          head = requestHead(buf, s, e, fields)
        }
        return off
      }
      lines.push(lineStart, contentEnd)
      // Heads have a start line besides their fields.
      if (lines.length / 2 > maxHeaders + (trailers ? 0 : 1)) {
        throw new HttpError('ERR_HTTP_LIMIT', 431, `more than maxHeaders (${maxHeaders}) ${trailers ? 'trailer' : 'header'} fields`)
      }
      lineStart = hlen
    }
    return off
  }

  /** The head being delivered: analysed when its empty line arrives, delivered in S_HEAD_DONE. */
  let head: RequestHead | undefined
  const deliverHead = (): void => {
    const h = head!
    head = undefined
    const kind = h.bodyKind
    remaining = h.contentLength ?? 0
    chunkSize = chunkDigits = chunkLine = 0
    state = kind === 'length' ? S_BODY : kind === 'chunked' ? S_CHUNK_SIZE : S_END
    handler.onHead(h)
  }

  const start = (): void => {
    if (!paused && !running) run()
  }

  return {
    push(chunk) {
      if (failure !== undefined) throw failure
      if (detached || eof) throw new WsfrpError('ERR_HTTP_PARSE', `push() after ${detached ? 'detach' : 'finish'}()`)
      if (chunk.length === 0) return
      queue.push(chunk)
      held += chunk.length
      start()
    },
    pause() {
      paused = true
    },
    resume() {
      if (failure !== undefined) throw failure
      if (!paused || detached) return
      paused = false
      start()
    },
    finish() {
      if (failure !== undefined) throw failure
      if (eof || detached) return
      eof = true
      start()
    },
    detach() {
      if (running) throw new Error('detach() inside a parser callback')
      detached = paused = true
      if (queue.length > 0) queue[0] = queue[0]!.subarray(queueOff)
      const out = concatBytes(queue)
      queue = []
      queueOff = held = 0
      return out
    },
    get bufferedBytes() {
      return held
    },
    get isPaused() {
      return paused
    },
    get isIdle() {
      return state === S_HEAD && hlen === 0 && lines.length === 0 && held === 0
    },
  }
} as unknown as new (handler: Http1ParserHandler<RequestHead>, opts?: Http1ParserOptions) => RequestParser

/** The head of a request from its request line buf[s, e) and fields (RFC 9112 §3, §6). Throws HttpError. */
function requestHead(buf: Uint8Array, s: number, e: number, fields: HeaderField[]): RequestHead {
  // request-line = method SP request-target SP HTTP-version (RFC 9112 §3), single spaces only.
  let i = s
  while (i < e && isTchar(buf[i]!)) i++
  if (i === s || i >= e || buf[i] !== SP) throw parseError('invalid request method')
  const method = latin1(buf, s, i)
  const ts = ++i
  // Visible ASCII only: Go and Node clients percent-encode everything else.
  while (i < e && buf[i]! > 0x20 && buf[i]! < 0x7f) i++
  if (i === ts || i >= e || buf[i] !== SP) throw parseError('invalid request target')
  const target = latin1(buf, ts, i)
  const versionMinor = parseVersion(buf, i + 1, e)

  const f = summarize(fields)
  if (f._hosts > 1) throw parseError('more than one Host header')
  if (versionMinor === 1 && f._hosts === 0) throw parseError('missing Host header')
  let bodyKind: BodyKind = 'none'
  const tc = f._transferCodings
  if (tc !== undefined) {
    if (f._contentLength !== undefined) throw parseError('both Content-Length and Transfer-Encoding')
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing.
    if (versionMinor === 0) throw parseError('Transfer-Encoding in an HTTP/1.0 request')
    if (tc.length === 0 || tc.indexOf('chunked') !== tc.length - 1) {
      // chunked missing, not last, or repeated: the body length cannot be determined (§6.3 item 4).
      throw parseError('request body not chunked last')
    }
    if (tc.length > 1) throw new HttpError('ERR_HTTP_PARSE', 501, `unsupported transfer coding: ${tc.join(', ')}`)
    bodyKind = 'chunked'
  } else if (f._contentLength! > 0) {
    bodyKind = 'length'
  }
  return {
    method,
    target,
    versionMinor,
    headers: fields,
    bodyKind,
    contentLength: f._contentLength,
    keepAlive: keepAliveOf(versionMinor, f._connection),
    upgrade: versionMinor === 1 && f._connection.includes('upgrade') ? f._upgrade : undefined,
    expect: f._expect,
  }
}
