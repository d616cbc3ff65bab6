/**
 * Incremental HTTP/1.1 message parsers (RFC 9112) over `Uint8Array` chunks: {@link ResponseParser},
 * and the framing and field analysis that the request parser (request-parser.ts, used by the handler
 * targets: frps re-serializes each proxied request onto a work stream, frp-wire-protocol.md §10.3)
 * shares. The machinery below serves both kinds of message; requests use a size-first copy of it.
 *
 * Design:
 * - Bytes may be split anywhere; the head is collected (bounded by `maxHeaderBytes`), bodies are
 *   handed on as views of the input chunks and never buffered whole.
 * - Strict where lenience enables request smuggling (RFC 9112 §6.3, §11.2): bare LF or CR, obs-fold,
 *   space before a colon, Content-Length together with Transfer-Encoding, differing Content-Lengths,
 *   transfer codings other than `chunked`, malformed chunk sizes. Each is an {@link HttpError}
 *   (`ERR_HTTP_PARSE`, or `ERR_HTTP_LIMIT` for a limit) and the parser stays failed afterwards.
 * - `pause()` inside a callback stops parsing at once; the rest of the input is kept (and counted in
 *   `bufferedBytes`) until `resume()`. That is how a consumer serves pipelined requests one at a time.
 */
import { WsfrpError } from '../errors.js'
import { HttpError, isFieldChar, isTchar, latin1, listTokens, type HeaderField } from './grammar.js'

/** Limits of a parser; each is checked as the bytes arrive, so memory stays bounded. */
export interface Http1Limits {
  /**
   * Bytes of the start line plus the header section, line endings included; the same bound applies
   * separately to a chunked body's trailer section. Default 16 KiB (16,384), Node's default too.
   * Exceeding it is `ERR_HTTP_LIMIT` with status 431 (414 while still in a request line).
   */
  maxHeaderBytes?: number
  /** Header fields in one header section (and in one trailer section). Default 100. Exceeding it: 431. */
  maxHeaders?: number
  /** Bytes of one chunk-size line including extensions and CRLF. Default 4 KiB (4,096). Exceeding it: 400. */
  maxChunkLineBytes?: number
}

/** The defaults of {@link Http1Limits}. */
export const HTTP1_DEFAULT_LIMITS: Readonly<Required<Http1Limits>> = Object.freeze({
  maxHeaderBytes: 16 * 1024,
  maxHeaders: 100,
  maxChunkLineBytes: 4 * 1024,
})

/**
 * How a message's body is delimited: `'none'` (no body follows), `'length'` (Content-Length > 0),
 * `'chunked'`, or `'close'` (a response read until the connection ends).
 */
export type BodyKind = 'none' | 'length' | 'chunked' | 'close'

/** What requests and responses share. */
export interface MessageHead {
  /** 0 for HTTP/1.0; 1 for HTTP/1.1 and later 1.x minors, which RFC 9112 §2.3 says to treat as 1.1. */
  versionMinor: 0 | 1
  /** Fields in arrival order, names as sent, values without surrounding whitespace. */
  headers: HeaderField[]
  bodyKind: BodyKind
  /**
   * The Content-Length value when one was sent, in bytes (also for HEAD answers and 304s, where it
   * describes the representation and no body follows); undefined otherwise.
   */
  contentLength: number | undefined
  /** Whether the connection may carry another message after this one (Connection / version rules). */
  keepAlive: boolean
  /** The Upgrade field's value when `Connection` lists `upgrade` (HTTP/1.1 only); else undefined. */
  upgrade: string | undefined
}

export interface RequestHead extends MessageHead {
  method: string
  /** The request-target exactly as sent: origin-form `/path?q`, absolute-form, authority-form or `*`. */
  target: string
  /** The Expect field's value (e.g. `100-continue`), or undefined. */
  expect: string | undefined
}

export interface ResponseHead extends MessageHead {
  status: number
  reason: string
}

/** Callbacks of a parser; they may call `pause()`. */
export interface Http1ParserHandler<H extends MessageHead> {
  /** A message head is complete; its body (if any) follows through onBody. */
  onHead(head: H): void
  /** A piece of body, already de-chunked. A view into an input chunk: do not modify it. */
  onBody(chunk: Uint8Array): void
  /** The trailer section of a chunked body, when it had fields. */
  onTrailers?(trailers: HeaderField[]): void
  /** The message is complete. */
  onMessageEnd(): void
  /** After `finish()`: the input ended cleanly between messages. */
  onEof?(): void
}

const CR = 13
const LF = 10
const SP = 32
const HTAB = 9

const S_HEAD = 0
const S_HEAD_DONE = 1 // a head was collected, to be analysed
const S_BODY_LENGTH = 2
const S_CHUNK_SIZE = 3
const S_CHUNK_BWS = 4
const S_CHUNK_EXT = 5
const S_CHUNK_SIZE_LF = 6
const S_CHUNK_DATA = 7
const S_CHUNK_DATA_CR = 8
const S_CHUNK_DATA_LF = 9
const S_TRAILERS = 10
const S_MESSAGE_END = 11
const S_BODY_CLOSE = 12
/** After a 101 or a 2xx answer to CONNECT: the bytes that follow are not HTTP. */
const S_UPGRADED = 13

/** Greater than any chunk we accept: 2^53 − 1 keeps the size exact in a double. */
const MAX_CHUNK_SIZE = Number.MAX_SAFE_INTEGER

/**
 * The shared machinery of both parsers: head collection, body framing, chunked decoding, pausing.
 * Subclasses turn the collected head lines into a head object and choose its body kind.
 */
abstract class Http1Parser<H extends MessageHead> {
  protected readonly _maxHeaderBytes: number
  protected readonly _maxHeaders: number
  private readonly _maxChunkLineBytes: number

  private _state = S_HEAD
  private _failure: Error | undefined = undefined
  private _paused = false
  private _running = false
  private _detached = false
  private _eof = false
  private _eofDelivered = false

  /** Unparsed input: chunks from `_pendingHead` on, the first one from `_pendingOff`. */
  private _pending: Uint8Array[] = []
  private _pendingHead = 0
  private _pendingOff = 0
  private _pendingBytes = 0

  /** Head (or trailer) bytes collected so far, and the [start, end) of each line without its CRLF. */
  private _hbuf: Uint8Array = new Uint8Array(0)
  private _hlen = 0
  private _lineStart = 0
  private _lines: number[] = []

  /** Body bytes left in a fixed-length body or in the current chunk. */
  private _remaining = 0
  private _chunkSize = 0
  private _chunkDigits = 0
  private _chunkLineBytes = 0

  protected readonly _handler: Http1ParserHandler<H>
  /** Empty lines before a request line are ignored (RFC 9112 §2.2); never before a status line. */
  private readonly _skipLeadingEmptyLines: boolean

  constructor(handler: Http1ParserHandler<H>, limits: Http1Limits | undefined, skipLeadingEmptyLines: boolean) {
    this._handler = handler
    this._skipLeadingEmptyLines = skipLeadingEmptyLines
    this._maxHeaderBytes = positiveLimit('maxHeaderBytes', limits?.maxHeaderBytes, HTTP1_DEFAULT_LIMITS.maxHeaderBytes)
    this._maxHeaders = positiveLimit('maxHeaders', limits?.maxHeaders, HTTP1_DEFAULT_LIMITS.maxHeaders)
    this._maxChunkLineBytes = positiveLimit('maxChunkLineBytes', limits?.maxChunkLineBytes, HTTP1_DEFAULT_LIMITS.maxChunkLineBytes)
  }

  /** Turns the collected start line and fields into a head and sets its body kind. Throws HttpError. */
  protected abstract _buildHead(startLine: [number, number], fields: HeaderField[], buf: Uint8Array): H
  /** Called with the head just delivered: whether the bytes after it are no longer HTTP. */
  protected abstract _upgradesAfter(head: H): boolean

  /** Unparsed bytes held while paused (or after an upgrade), in bytes. */
  get bufferedBytes(): number {
    return this._pendingBytes
  }

  /** True between `pause()` and `resume()`. */
  get isPaused(): boolean {
    return this._paused
  }

  /** True when no message is in progress: the next byte starts a new message. */
  get isIdle(): boolean {
    return this._state === S_HEAD && this._hlen === 0 && this._lines.length === 0 && this._pendingBytes === 0
  }

  /**
   * Parses `chunk` as far as possible. The parser does not copy body bytes; the chunk must not be
   * modified afterwards. Throws {@link HttpError} on bad input; the parser then stays failed and
   * every later call throws the same error. Errors thrown by the handler propagate the same way.
   */
  push(chunk: Uint8Array): void {
    if (this._failure !== undefined) throw this._failure
    if (this._detached) throw new WsfrpError('ERR_HTTP_PARSE', 'push() after detach()')
    if (this._eof) throw new WsfrpError('ERR_HTTP_PARSE', 'push() after finish()')
    if (chunk.length === 0) return
    this._pending.push(chunk)
    this._pendingBytes += chunk.length
    if (!this._paused && !this._running) this._run()
  }

  /** Stops parsing after the current callback; later input is held. */
  pause(): void {
    this._paused = true
  }

  /** Goes on parsing held input. May call handlers and throw like `push()`. */
  resume(): void {
    if (this._failure !== undefined) throw this._failure
    if (!this._paused || this._state === S_UPGRADED || this._detached) return
    this._paused = false
    if (!this._running) this._run()
  }

  /**
   * The input ended (the peer half-closed). Once the held input is parsed: a close-delimited body
   * ends, a clean end between messages gives `onEof`, and an end inside a message throws
   * `ERR_HTTP_PARSE`.
   */
  finish(): void {
    if (this._failure !== undefined) throw this._failure
    if (this._eof || this._detached) return
    this._eof = true
    if (!this._paused && !this._running) this._run()
  }

  /**
   * Stops parsing for good and returns the unparsed bytes (after an upgrade or CONNECT, the start of
   * the other protocol). Not from inside a callback: pause there, detach after `push()` returns.
   */
  detach(): Uint8Array {
    if (this._running) throw new Error('detach() from inside a parser callback: pause() there and detach afterwards')
    this._detached = true
    this._paused = true
    const parts: Uint8Array[] = []
    for (let i = this._pendingHead; i < this._pending.length; i++) {
      parts.push(i === this._pendingHead ? this._pending[i]!.subarray(this._pendingOff) : this._pending[i]!)
    }
    this._pending = []
    this._pendingHead = 0
    this._pendingOff = 0
    this._pendingBytes = 0
    if (parts.length === 1) return parts[0]!
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
    let o = 0
    for (const p of parts) {
      out.set(p, o)
      o += p.length
    }
    return out
  }

  private _run(): void {
    this._running = true
    try {
      for (;;) {
        if (this._paused) break
        if (this._pendingHead < this._pending.length) {
          const c = this._pending[this._pendingHead]!
          const from = this._pendingOff
          const to = this._execute(c, from)
          this._pendingBytes -= to - from
          if (to >= c.length) {
            this._pending[this._pendingHead] = EMPTY
            this._pendingHead++
            this._pendingOff = 0
            if (this._pendingHead === this._pending.length) {
              this._pending.length = 0
              this._pendingHead = 0
            }
          } else this._pendingOff = to
          continue
        }
        // No input left: states that need none still run (an empty body's end, the end of input).
        if (this._state === S_HEAD_DONE || this._state === S_MESSAGE_END) {
          this._execute(EMPTY, 0)
          continue
        }
        if (this._eof) this._atEof()
        break
      }
    } catch (err) {
      this._failure = err instanceof Error ? err : new Error(String(err))
      this._paused = true
      throw this._failure
    } finally {
      this._running = false
    }
  }

  private _atEof(): void {
    if (this._eofDelivered) return
    if (this._state === S_BODY_CLOSE) {
      this._state = S_MESSAGE_END
      this._execute(EMPTY, 0)
      if (this._paused) return // the end is evaluated again on resume()
    }
    if (this._state === S_UPGRADED) return
    if (this._state !== S_HEAD || this._hlen !== 0 || this._lines.length !== 0) {
      throw new HttpError('ERR_HTTP_PARSE', 400, 'connection ended inside an HTTP message')
    }
    this._eofDelivered = true
    this._handler.onEof?.()
  }

  /** Parses `c` from `off`; returns where it stopped (`c.length`, or earlier when paused). */
  private _execute(c: Uint8Array, off: number): number {
    const len = c.length
    while (!this._paused) {
      switch (this._state) {
        case S_HEAD:
        case S_TRAILERS: {
          if (off >= len) return off
          off = this._collect(c, off)
          continue
        }
        case S_HEAD_DONE: {
          this._deliverHead()
          continue
        }
        case S_BODY_LENGTH: {
          if (off >= len) return off
          const n = Math.min(this._remaining, len - off)
          this._remaining -= n
          if (this._remaining === 0) this._state = S_MESSAGE_END
          this._handler.onBody(c.subarray(off, off + n))
          off += n
          continue
        }
        case S_BODY_CLOSE: {
          if (off >= len) return off
          this._handler.onBody(off === 0 ? c : c.subarray(off))
          off = len
          continue
        }
        case S_CHUNK_DATA: {
          if (off >= len) return off
          const n = Math.min(this._remaining, len - off)
          this._remaining -= n
          if (this._remaining === 0) this._state = S_CHUNK_DATA_CR
          this._handler.onBody(c.subarray(off, off + n))
          off += n
          continue
        }
        case S_MESSAGE_END: {
          this._state = S_HEAD
          this._handler.onMessageEnd()
          continue
        }
        case S_UPGRADED:
          this._paused = true
          return off
        default: {
          if (off >= len) return off
          off = this._chunkFraming(c, off)
          continue
        }
      }
    }
    return off
  }

  /** The byte-level states of chunked framing (sizes, extensions, CRLFs). */
  private _chunkFraming(c: Uint8Array, off: number): number {
    const len = c.length
    while (off < len) {
      const b = c[off]!
      switch (this._state) {
        case S_CHUNK_SIZE: {
          const d = hexValue(b)
          if (d >= 0) {
            this._chunkSize = this._chunkSize * 16 + d
            this._chunkDigits++
            if (this._chunkSize > MAX_CHUNK_SIZE) throw parseError('chunk size too large')
          } else if (this._chunkDigits === 0) {
            throw parseError('invalid chunk size')
          } else if (b === CR) this._state = S_CHUNK_SIZE_LF
          else if (b === 0x3b /* ; */) this._state = S_CHUNK_EXT
          else if (b === SP || b === HTAB) this._state = S_CHUNK_BWS
          else throw parseError('invalid chunk size')
          break
        }
        case S_CHUNK_BWS: {
          // RFC 9112 §7.1.1: whitespace after the size is only allowed before an extension.
          if (b === 0x3b) this._state = S_CHUNK_EXT
          else if (b !== SP && b !== HTAB) throw parseError('invalid chunk size line')
          break
        }
        case S_CHUNK_EXT: {
          // Extensions carry no meaning here; they are skipped, but only field characters (no CTLs,
          // so no bare LF) up to the CRLF, within maxChunkLineBytes.
          if (b === CR) this._state = S_CHUNK_SIZE_LF
          else if (!isFieldChar(b)) throw parseError('invalid character in a chunk extension')
          break
        }
        case S_CHUNK_SIZE_LF: {
          if (b !== LF) throw parseError('chunk size line not terminated by CRLF')
          off++
          this._chunkLineBytes = 0
          this._chunkDigits = 0
          if (this._chunkSize === 0) {
            this._state = S_TRAILERS
          } else {
            this._remaining = this._chunkSize
            this._state = S_CHUNK_DATA
          }
          this._chunkSize = 0
          return off
        }
        case S_CHUNK_DATA_CR: {
          if (b !== CR) throw parseError('chunk data not followed by CRLF')
          this._state = S_CHUNK_DATA_LF
          off++
          continue
        }
        case S_CHUNK_DATA_LF: {
          if (b !== LF) throw parseError('chunk data not followed by CRLF')
          this._state = S_CHUNK_SIZE
          return off + 1
        }
        default:
          return off
      }
      off++
      if (++this._chunkLineBytes > this._maxChunkLineBytes) {
        throw new HttpError('ERR_HTTP_LIMIT', 400, `chunk size line longer than maxChunkLineBytes (${this._maxChunkLineBytes})`)
      }
    }
    return off
  }

  /** Collects head or trailer lines up to the empty line. */
  private _collect(c: Uint8Array, off: number): number {
    const len = c.length
    const trailers = this._state === S_TRAILERS
    while (off < len) {
      const lf = c.indexOf(LF, off)
      const end = lf < 0 ? len : lf + 1
      const n = end - off
      if (this._hlen + n > this._maxHeaderBytes) this._tooLarge(trailers)
      this._append(c, off, end)
      off = end
      if (lf < 0) break
      const lfPos = this._hlen - 1
      if (lfPos === this._lineStart || this._hbuf[lfPos - 1] !== CR) throw parseError('bare LF in the header section')
      const contentEnd = lfPos - 1
      if (contentEnd === this._lineStart) {
        if (!trailers && this._lines.length === 0 && this._skipLeadingEmptyLines) {
          this._hlen = 0
          this._lineStart = 0
          continue
        }
        if (trailers) this._deliverTrailers()
        else this._state = S_HEAD_DONE
        return off
      }
      this._lines.push(this._lineStart, contentEnd)
      // Heads have a start line besides their fields.
      if (this._lines.length / 2 > this._maxHeaders + (trailers ? 0 : 1)) {
        throw new HttpError('ERR_HTTP_LIMIT', 431, `more than maxHeaders (${this._maxHeaders}) ${trailers ? 'trailer' : 'header'} fields`)
      }
      this._lineStart = this._hlen
    }
    return off
  }

  private _tooLarge(trailers: boolean): never {
    const inRequestLine = !trailers && this._skipLeadingEmptyLines && this._lines.length === 0
    throw new HttpError(
      'ERR_HTTP_LIMIT',
      inRequestLine ? 414 : 431,
      `${inRequestLine ? 'request line' : trailers ? 'trailer section' : 'header section'} larger than maxHeaderBytes (${this._maxHeaderBytes})`,
    )
  }

  private _append(c: Uint8Array, from: number, to: number): void {
    const need = this._hlen + (to - from)
    if (need > this._hbuf.length) {
      const grown = new Uint8Array(Math.min(this._maxHeaderBytes, Math.max(need, this._hbuf.length * 2, 1024)))
      grown.set(this._hbuf.subarray(0, this._hlen))
      this._hbuf = grown
    }
    this._hbuf.set(c.subarray(from, to), this._hlen)
    this._hlen = need
  }

  private _resetCollector(): void {
    this._hlen = 0
    this._lineStart = 0
    this._lines.length = 0
    // A large head's buffer is not kept for the connection's lifetime.
    if (this._hbuf.length > 4096) this._hbuf = new Uint8Array(0)
  }

  private _parseFields(firstLine: number): HeaderField[] {
    const fields: HeaderField[] = []
    const l = this._lines
    for (let i = firstLine * 2; i < l.length; i += 2) fields.push(parseField(this._hbuf, l[i]!, l[i + 1]!))
    return fields
  }

  private _deliverHead(): void {
    if (this._lines.length === 0) throw parseError('missing start line')
    const head = this._buildHead([this._lines[0]!, this._lines[1]!], this._parseFields(1), this._hbuf)
    this._resetCollector()
    const upgraded = this._upgradesAfter(head)
    switch (head.bodyKind) {
      case 'none':
        this._state = upgraded ? S_UPGRADED : S_MESSAGE_END
        break
      case 'length':
        this._remaining = head.contentLength!
        this._state = S_BODY_LENGTH
        break
      case 'chunked':
        this._chunkSize = 0
        this._chunkDigits = 0
        this._chunkLineBytes = 0
        this._state = S_CHUNK_SIZE
        break
      case 'close':
        this._state = S_BODY_CLOSE
        break
    }
    this._handler.onHead(head)
    if (upgraded) {
      // The message ends with its head; what follows belongs to the new protocol (take it with detach()).
      this._handler.onMessageEnd()
    }
  }

  private _deliverTrailers(): void {
    const fields = this._parseFields(0)
    this._resetCollector()
    this._state = S_MESSAGE_END
    if (fields.length > 0) this._handler.onTrailers?.(fields)
  }
}

const EMPTY = new Uint8Array(0)

export function positiveLimit(name: string, v: number | undefined, def: number): number {
  if (v === undefined) return def
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`)
  return v
}

export function parseError(message: string): HttpError {
  return new HttpError('ERR_HTTP_PARSE', 400, message)
}

export function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30
  if (b >= 0x61 && b <= 0x66) return b - 0x57
  if (b >= 0x41 && b <= 0x46) return b - 0x37
  return -1
}

/** `name ":" OWS value OWS` (RFC 9112 §5). */
export function parseField(buf: Uint8Array, start: number, end: number): HeaderField {
  const first = buf[start]!
  // obs-fold (a continuation line) may be rejected with 400 (RFC 9112 §5.2); joining it is a smuggling risk.
  if (first === SP || first === HTAB) throw parseError('obsolete line folding in a header field')
  let colon = start
  while (colon < end && isTchar(buf[colon]!)) colon++
  if (colon === start || colon >= end || buf[colon] !== 0x3a) {
    // Includes whitespace between the name and the colon, which RFC 9112 §5.1 says MUST be rejected.
    throw parseError('invalid header field name')
  }
  let vs = colon + 1
  let ve = end
  while (vs < ve && (buf[vs] === SP || buf[vs] === HTAB)) vs++
  while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--
  for (let i = vs; i < ve; i++) if (!isFieldChar(buf[i]!)) throw parseError('invalid character in a header field value')
  return [latin1(buf, start, colon), latin1(buf, vs, ve)]
}

/** The framing-relevant fields, gathered once per head. */
export interface FieldSummary {
  _contentLength: number | undefined
  _transferCodings: string[] | undefined
  _connection: string[]
  _upgrade: string | undefined
  _expect: string | undefined
  _hosts: number
}

export function summarize(fields: HeaderField[]): FieldSummary {
  const s: FieldSummary = { _contentLength: undefined, _transferCodings: undefined, _connection: [], _upgrade: undefined, _expect: undefined, _hosts: 0 }
  for (const [rawName, value] of fields) {
    const name = rawName.toLowerCase()
    switch (name) {
      case 'content-length': {
        // A list of identical values is accepted (RFC 9110 §8.6); differing ones are a smuggling attempt.
        for (const part of value.split(',')) {
          const n = parseContentLength(part.trim())
          if (s._contentLength !== undefined && s._contentLength !== n) throw parseError('conflicting Content-Length values')
          s._contentLength = n
        }
        break
      }
      case 'transfer-encoding':
        ;(s._transferCodings ??= []).push(...listTokens(value))
        // An empty Transfer-Encoding still counts as present: it conflicts with Content-Length.
        break
      case 'connection':
        s._connection.push(...listTokens(value))
        break
      case 'upgrade':
        s._upgrade = s._upgrade === undefined ? value : `${s._upgrade}, ${value}`
        break
      case 'expect':
        s._expect = s._expect === undefined ? value : `${s._expect}, ${value}`
        break
      case 'host':
        s._hosts++
        break
    }
  }
  return s
}

function parseContentLength(v: string): number {
  if (v.length === 0 || v.length > 16) throw parseError('invalid Content-Length')
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i)
    if (c < 0x30 || c > 0x39) throw parseError('invalid Content-Length')
  }
  const n = Number(v)
  if (!Number.isSafeInteger(n)) throw parseError('Content-Length too large')
  return n
}

/** Parses `HTTP/1.x` at buf[start, start+8); returns the minor version (0 or 1), or throws. */
export function parseVersion(buf: Uint8Array, start: number, end: number): 0 | 1 {
  // "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3).
  if (
    end - start !== 8 ||
    buf[start] !== 0x48 ||
    buf[start + 1] !== 0x54 ||
    buf[start + 2] !== 0x54 ||
    buf[start + 3] !== 0x50 ||
    buf[start + 4] !== 0x2f ||
    buf[start + 6] !== 0x2e
  ) {
    throw parseError('invalid HTTP version')
  }
  const major = buf[start + 5]! - 0x30
  const minor = buf[start + 7]! - 0x30
  if (major < 0 || major > 9 || minor < 0 || minor > 9) throw parseError('invalid HTTP version')
  if (major !== 1) throw new HttpError('ERR_HTTP_PARSE', 505, `HTTP/${major}.${minor} is not supported`)
  return minor === 0 ? 0 : 1
}

export function keepAliveOf(versionMinor: 0 | 1, connection: string[]): boolean {
  if (connection.includes('close')) return false
  return versionMinor === 1 || connection.includes('keep-alive')
}

/** Options of {@link RequestParser} and {@link ResponseParser}. */
export type Http1ParserOptions = Http1Limits

/** Options of {@link ResponseParser}. */
export interface ResponseParserOptions extends Http1ParserOptions {
  /** The method of the request answered first. Default `'GET'`. See {@link ResponseParser.requestMethod}. */
  requestMethod?: string
}

/**
 * Parses HTTP/1.1 responses. Interim responses (1xx other than 101) are delivered as messages of
 * their own, followed by the final response to the same request. After a 101 or a 2xx answer to
 * CONNECT, parsing stops: `detach()` returns the bytes of the new protocol.
 */
export class ResponseParser extends Http1Parser<ResponseHead> {
  /**
   * The method of the request that the next response answers: a HEAD answer has no body, a 2xx
   * answer to CONNECT switches to a tunnel. Set it before each response (e.g. in `onMessageEnd`).
   */
  requestMethod: string

  constructor(handler: Http1ParserHandler<ResponseHead>, opts?: ResponseParserOptions) {
    super(handler, opts, false)
    this.requestMethod = opts?.requestMethod ?? 'GET'
  }

  protected _buildHead([s, e]: [number, number], fields: HeaderField[], buf: Uint8Array): ResponseHead {
    // status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4).
    if (e - s < 12 || buf[s + 8] !== SP) throw parseError('invalid status line')
    const versionMinor = parseVersion(buf, s, s + 8)
    let status = 0
    for (let i = s + 9; i < s + 12; i++) {
      const d = buf[i]! - 0x30
      if (d < 0 || d > 9) throw parseError('invalid status code')
      status = status * 10 + d
    }
    if (status < 100) throw parseError('invalid status code')
    // The SP before an empty reason is often left out; accepting its absence is harmless.
    if (e > s + 12 && buf[s + 12] !== SP) throw parseError('invalid status line')
    for (let i = s + 13; i < e; i++) if (!isFieldChar(buf[i]!)) throw parseError('invalid character in the reason phrase')
    const reason = e > s + 13 ? latin1(buf, s + 13, e) : ''

    const f = summarize(fields)
    const method = this.requestMethod
    let keepAlive = keepAliveOf(versionMinor, f._connection)
    if (f._transferCodings !== undefined && f._contentLength !== undefined) throw parseError('both Content-Length and Transfer-Encoding')
    let bodyKind: BodyKind
    if (method === 'HEAD' || status < 200 || status === 204 || status === 304 || (method === 'CONNECT' && status < 300)) {
      bodyKind = 'none'
    } else if (f._transferCodings !== undefined) {
      const tc = f._transferCodings
      if (tc.length !== 1 || tc[0] !== 'chunked') throw parseError(`unsupported transfer coding: ${tc.join(', ')}`)
      bodyKind = 'chunked'
    } else if (f._contentLength !== undefined) {
      bodyKind = f._contentLength > 0 ? 'length' : 'none'
    } else {
      bodyKind = 'close'
      keepAlive = false
    }
    const upgrade = status === 101 ? (f._upgrade ?? '') : versionMinor === 1 && f._connection.includes('upgrade') ? f._upgrade : undefined
    return { status, reason, versionMinor, headers: fields, bodyKind, contentLength: f._contentLength, keepAlive, upgrade }
  }

  protected _upgradesAfter(head: ResponseHead): boolean {
    return head.status === 101 || (this.requestMethod === 'CONNECT' && head.status >= 200 && head.status < 300)
  }
}
