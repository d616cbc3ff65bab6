/**
 * HTTP handler targets: the local end of an http proxy's work streams is a JavaScript function of
 * the WHATWG fetch shape (`(request) => response`, hono's `app.fetch`), not a socket. frps writes
 * re-serialized HTTP/1.1 requests onto each work stream and reuses the stream for sequential
 * requests (frp-wire-protocol.md §10.3), so a target parses requests one after another, calls the
 * handler for each, and writes each response back before it reads the next request.
 */
import {
  HttpError,
  RequestParser,
  ResponseWriter,
  WsfrpError,
  noopLogger,
  pipe,
  reasonPhrase,
  type Conn,
  type ConnSink,
  type HeaderField,
  type Http1Limits,
  type Logger,
  type RequestHead,
} from '@wsfrp/core'

/** What a handler learns besides the Request. */
export interface HandlerInfo {
  /** The proxy this request came through. */
  proxyName: string
  /** The HTTP client's address as frps saw it (StartWorkConn `src_addr`), when known. */
  remoteAddr: string | undefined
  remotePort: number | undefined
  /**
   * Every request header as received, in order, names as sent. A browser's `Request` silently
   * drops "forbidden" names (Host, Cookie, Origin, …); the target puts them back into
   * `request.headers` (see {@link handlerTarget}), and this list is the raw truth either way.
   */
  rawHeaders: HeaderField[]
}

/**
 * A fetch-style handler, e.g. `app.fetch` of hono (which receives `info` as its `env`). Exceptions
 * and rejections become a 500 response.
 */
export type FetchHandler = (request: Request, info: HandlerInfo) => Response | Promise<Response>

/** Options of {@link handlerTarget}. */
export interface HandlerTargetOptions extends Http1Limits {
  /**
   * Bytes queued in a request body's ReadableStream before the work stream stops being credited
   * (the server then stops sending). Default 64 KiB (65,536).
   */
  bodyHighWaterMark?: number
  /** Proxy name and client address passed to the handler. */
  proxyName?: string
  remoteAddr?: string
  remotePort?: number
  logger?: Logger
}

const DEFAULT_BODY_HWM = 64 * 1024
/** WHATWG `new Request()` throws for these methods (Fetch standard: forbidden methods). */
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK'])
/** reg-name / IP-literal characters plus `:port`: a Host outside this set cannot make a URL authority. */
const HOST_RE = /^[A-Za-z0-9\-._~%!$&'()*+,;=:[\]]+$/

/**
 * A Conn whose far side is `handler`: what the peer writes is parsed as HTTP/1.1 requests, and the
 * responses come back as bytes. Meant for `pipe(workStream, handlerTarget(handler))`, which is what
 * the client's `dialTarget` returns for http proxies.
 *
 * - Request bodies are streamed: a `ReadableStream` whose queue, once `bodyHighWaterMark` is
 *   reached, makes `write()` return false, so `pipe()` pauses (stops crediting) the work stream
 *   until the handler reads on.
 * - Response bodies are streamed with Content-Length when the Response has that header (or no
 *   body), else chunked (HTTP/1.1) or until close (HTTP/1.0); the next chunk is read from the
 *   Response only while the work stream accepts writes.
 * - Keep-alive: after a response the next request on the stream is served; pipelined requests wait
 *   their turn. `Connection: close` (either side) ends the stream after the response.
 * - `Expect: 100-continue` is answered with `100 Continue` when the handler is called.
 * - Failures: a malformed request gets its 4xx/5xx (`HttpError.status`) and the stream is closed;
 *   CONNECT/TRACE get 405 (a Request cannot carry them); a handler that throws or returns a
 *   non-Response gets 500 with a short text body; a response body that errors or contradicts its
 *   Content-Length destroys the stream (the client sees a truncated response, never a wrong one).
 * - Browsers drop forbidden header names (Host, Cookie, …) from constructed Requests. When that
 *   happened, `request.headers` is replaced on that Request object by a complete `Headers`.
 */
export function handlerTarget(handler: FetchHandler, opts?: HandlerTargetOptions): Conn {
  return new HandlerConn(handler, opts ?? {})
}

/**
 * Serves `handler` on `conn` (e.g. a work stream or a test's memory pair) until the connection
 * ends: `pipe(conn, handlerTarget(handler, opts))`.
 */
export function serveHttp(conn: Conn, handler: FetchHandler, opts?: HandlerTargetOptions): Promise<void> {
  return pipe(conn, handlerTarget(handler, opts))
}

/** One request and its response. */
interface Exchange {
  _head: RequestHead
  _abort: AbortController
  /** The request body: streamed to the handler, discarded (handler done, GET with a body), or none. */
  _body: 'none' | 'stream' | 'discard'
  _stream: ReadableStream<Uint8Array> | undefined
  _controller: ReadableStreamDefaultController<Uint8Array> | undefined
  _requestDone: boolean
  _responseDone: boolean
  /** The request turned out malformed (mid-body): close after the response. */
  _broken: boolean
  _reader: ReadableStreamDefaultReader<Uint8Array> | undefined
}

class HandlerConn implements Conn {
  readonly canPause = true
  private _sink: ConnSink | undefined
  private readonly _parser: RequestParser
  private readonly _log: Logger
  private readonly _bodyHwm: number
  private _current: Exchange | undefined

  // Input side (bytes from the peer).
  private _needDrain = false
  private _inputEnded = false
  /** No more input is parsed: a parse error, or the response said Connection: close. */
  private _ignoreInput = false

  // Output side (bytes to the peer).
  private _outPaused = false
  private _outQueue: Uint8Array[] = []
  private _endPending = false
  private _endDelivered = false
  private _writableWaiters: (() => void)[] = []

  private _closed = false

  private readonly _handler: FetchHandler
  private readonly _opts: HandlerTargetOptions

  constructor(handler: FetchHandler, opts: HandlerTargetOptions) {
    this._handler = handler
    this._opts = opts
    this._log = opts.logger ?? noopLogger
    this._bodyHwm = opts.bodyHighWaterMark ?? DEFAULT_BODY_HWM
    if (!(this._bodyHwm >= 1)) throw new RangeError(`bodyHighWaterMark must be >= 1, got ${this._bodyHwm}`)
    this._parser = new RequestParser(
      {
        onHead: (head) => this._onHead(head),
        onBody: (chunk) => this._onBody(chunk),
        onMessageEnd: () => this._onMessageEnd(),
        onEof: () => this._onEof(),
      },
      opts,
    )
  }

  // ---- Conn ----

  start(sink: ConnSink): void {
    if (this._sink !== undefined) throw new Error('handlerTarget: start() called twice')
    this._sink = sink
  }

  write(chunk: Uint8Array): boolean {
    if (this._closed || this._inputEnded) return false
    if (this._ignoreInput) return true
    this._feed(() => this._parser.push(chunk))
    if (this._canTakeMore()) return true
    this._needDrain = true
    return false
  }

  end(): void {
    if (this._closed || this._inputEnded) return
    this._inputEnded = true
    if (this._ignoreInput) {
      this._maybeClose()
      return
    }
    // The check runs once the held input is parsed: onEof, or an error for a cut-off request.
    this._feed(() => this._parser.finish())
  }

  destroy(err?: Error): void {
    if (this._closed) return
    this._closed = true
    this._outQueue = []
    const ex = this._current
    this._current = undefined
    if (ex !== undefined) this._abortExchange(ex, err ?? new WsfrpError('ERR_CONN_CLOSED', 'the connection was destroyed'))
    this._wakeWriters()
    queueMicrotask(() => this._sink?.onClose(err))
  }

  pause(): void {
    this._outPaused = true
  }

  resume(): void {
    if (!this._outPaused) return
    this._outPaused = false
    this._flush()
  }

  // ---- input ----

  /** Runs a parser call; a parse error becomes an error response (or closes after the current one). */
  private _feed(call: () => void): void {
    try {
      call()
    } catch (err) {
      this._onInputError(err)
    }
  }

  private _canTakeMore(): boolean {
    if (this._ignoreInput) return true
    if (this._parser.bufferedBytes > 0) return false
    const ex = this._current
    return !(ex !== undefined && ex._body === 'stream' && ex._controller !== undefined && (ex._controller.desiredSize ?? 1) <= 0)
  }

  private _maybeDrain(): void {
    if (!this._needDrain || this._closed || !this._canTakeMore()) return
    this._needDrain = false
    this._sink?.onDrain()
  }

  private _onHead(head: RequestHead): void {
    const ex: Exchange = {
      _head: head,
      _abort: new AbortController(),
      _body: 'none',
      _stream: undefined,
      _controller: undefined,
      _requestDone: false,
      _responseDone: false,
      _broken: false,
      _reader: undefined,
    }
    this._current = ex
    if (head.bodyKind !== 'none') {
      const method = head.method.toUpperCase()
      if (method === 'GET' || method === 'HEAD' || FORBIDDEN_METHODS.has(method)) {
        // A Request cannot carry a body for these; it is read and dropped to keep the stream in sync.
        ex._body = 'discard'
      } else {
        // Made now, not when the handler is called: body bytes may follow the head in this very chunk.
        // (start() runs synchronously inside the constructor, so the controller exists at once.)
        ex._body = 'stream'
        ex._stream = new ReadableStream<Uint8Array>(
          {
            start: (c) => {
              ex._controller = c
            },
            pull: () => this._maybeDrain(),
            cancel: () => {
              ex._body = 'discard'
              this._maybeDrain()
            },
          },
          { highWaterMark: this._bodyHwm, size: (c) => c.byteLength },
        )
      }
    }
    // Handlers run outside the parser's (and the peer's delivery) stack.
    queueMicrotask(() => void this._run(ex))
  }

  private _onBody(chunk: Uint8Array): void {
    const ex = this._current
    if (ex === undefined || ex._body !== 'stream' || ex._controller === undefined) return
    try {
      ex._controller.enqueue(chunk)
    } catch {
      // The stream was cancelled or errored by its reader: the rest is discarded.
      ex._body = 'discard'
    }
  }

  private _onMessageEnd(): void {
    const ex = this._current
    if (ex === undefined) return
    ex._requestDone = true
    // One request at a time: pipelined requests wait until this response is written.
    this._parser.pause()
    if (ex._body === 'stream') {
      try {
        ex._controller?.close()
      } catch {
        // already cancelled
      }
    }
    if (ex._responseDone) this._nextExchange()
  }

  private _onEof(): void {
    if (this._current === undefined) this._endOutput()
  }

  private _onInputError(err: unknown): void {
    this._ignoreInput = true
    this._parser.pause()
    const error = err instanceof Error ? err : new Error(String(err))
    const ex = this._current
    if (ex !== undefined) {
      if (!ex._responseDone) {
        // The request body was cut off or malformed: the handler's read fails; the response it
        // still gives is sent, and the connection closes after it.
        ex._broken = true
        if (ex._body === 'stream') {
          try {
            ex._controller?.error(error)
          } catch {
            // already closed
          }
        }
        ex._body = 'discard'
        return
      }
      // The response is out; only the rest of the request was bad.
      this._current = undefined
    } else {
      const status = err instanceof HttpError ? err.status : 400
      this._log.debug('bad request on a work stream', { proxy: this._opts.proxyName, error: error.message, status })
      // Parser errors name what was wrong with the request; anything else stays internal.
      const reason = reasonPhrase(status) || 'Bad Request'
      this._emitText(undefined, status, err instanceof HttpError ? `${reason}: ${error.message}` : reason, false)
    }
    this._endOutput()
    this._maybeClose()
  }

  // ---- one exchange ----

  private async _run(ex: Exchange): Promise<void> {
    const head = ex._head
    let response: Response | undefined
    let early: [number, string] | undefined
    if (FORBIDDEN_METHODS.has(head.method.toUpperCase())) early = [405, `${head.method} is not supported by this target`]
    else if (head.expect !== undefined && head.expect.toLowerCase() !== '100-continue') early = [417, 'Expectation Failed']
    let request: Request | undefined
    if (early === undefined) {
      try {
        request = this._buildRequest(ex)
      } catch (err) {
        early = [400, `Bad Request: ${(err as Error).message}`]
      }
    }
    if (early !== undefined || request === undefined) {
      this._finishBody(ex)
      const [status, text] = early ?? [400, 'Bad Request']
      this._emitText(head, status, text, head.keepAlive)
      this._responseWritten(ex, head.keepAlive)
      return
    }
    if (ex._body === 'stream' && head.expect !== undefined) this._emit(ResponseWriter.interim(100))
    const info: HandlerInfo = {
      proxyName: this._opts.proxyName ?? '',
      remoteAddr: this._opts.remoteAddr,
      remotePort: this._opts.remotePort,
      rawHeaders: head.headers,
    }
    try {
      const r: unknown = await this._handler(request, info)
      if (!(r instanceof Response)) throw new TypeError(`the handler returned ${r === null ? 'null' : typeof r}, not a Response`)
      if (r.type === 'error' || r.status < 200) throw new TypeError(`the handler returned a network error or status ${r.status}`)
      response = r
    } catch (err) {
      if (this._closed || this._current !== ex) return
      this._log.warn('handler failed', { proxy: this._opts.proxyName, error: err instanceof Error ? err.message : String(err) })
      this._finishBody(ex)
      const keepAlive = head.keepAlive && !ex._broken
      this._emitText(head, 500, 'Internal Server Error', keepAlive)
      this._responseWritten(ex, keepAlive)
      return
    }
    if (this._closed || this._current !== ex) {
      void response.body?.cancel().catch(() => {})
      return
    }
    await this._writeResponse(ex, response)
  }

  private _buildRequest(ex: Exchange): Request {
    const head = ex._head
    const url = requestURL(head)
    const init: RequestInit & { duplex?: 'half' } = { method: head.method, headers: head.headers, signal: ex._abort.signal }
    if (ex._stream !== undefined) {
      init.body = ex._stream
      // Required for a stream body by Chromium and undici: the request is sent while its body streams.
      init.duplex = 'half'
    }
    const request = new Request(url, init)
    restoreForbiddenHeaders(request, head.headers)
    return request
  }

  private async _writeResponse(ex: Exchange, response: Response): Promise<void> {
    const head = ex._head
    const w = new ResponseWriter({
      requestMethod: head.method,
      requestVersionMinor: head.versionMinor,
      keepAlive: head.keepAlive && !ex._broken,
    })
    let headBytes: Uint8Array
    try {
      headBytes = w.head({
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
        bodyLength: response.body === null ? 0 : undefined,
      })
    } catch (err) {
      this._log.warn('handler response cannot be sent', { proxy: this._opts.proxyName, error: (err as Error).message })
      void response.body?.cancel().catch(() => {})
      this._finishBody(ex)
      this._emitText(head, 500, 'Internal Server Error', head.keepAlive && !ex._broken)
      this._responseWritten(ex, head.keepAlive && !ex._broken)
      return
    }
    this._emit(headBytes)
    const body = response.body
    try {
      if (body !== null) {
        if (w.framing === 'none') {
          void body.cancel().catch(() => {})
        } else {
          const reader = body.getReader()
          ex._reader = reader
          for (;;) {
            await this._whenWritable()
            if (this._closed) return
            const { done, value } = await reader.read()
            if (done) break
            if (this._closed) return
            if (!(value instanceof Uint8Array)) throw new TypeError('a response body chunk is not a Uint8Array')
            for (const b of w.body(value)) this._emit(b)
          }
          ex._reader = undefined
        }
      }
      this._emit(w.end())
    } catch (err) {
      if (this._closed) return
      // Part of the response is out: the only honest signal left is to cut the stream.
      this._log.warn('response body failed', { proxy: this._opts.proxyName, error: err instanceof Error ? err.message : String(err) })
      void ex._reader?.cancel().catch(() => {})
      this.destroy(err instanceof Error ? err : new Error(String(err)))
      return
    }
    this._responseWritten(ex, w.keepAlive)
  }

  /** The request body is no longer wanted (the response is out): stop streaming it, keep parsing past it. */
  private _finishBody(ex: Exchange): void {
    if (ex._body === 'stream' && !ex._requestDone) {
      ex._body = 'discard'
      try {
        ex._controller?.error(new WsfrpError('ERR_CONN_ABORTED', 'the response was sent before the request body was read'))
      } catch {
        // already closed
      }
    }
    this._maybeDrain()
  }

  private _responseWritten(ex: Exchange, keepAlive: boolean): void {
    if (this._closed || this._current !== ex) return
    ex._responseDone = true
    this._finishBody(ex)
    // ignoreInput: the request turned bad after this response's head went out with keep-alive.
    if (!keepAlive || this._ignoreInput) {
      this._ignoreInput = true
      this._parser.pause()
      this._current = undefined
      this._endOutput()
      this._maybeDrain()
      this._maybeClose()
      return
    }
    if (ex._requestDone) this._nextExchange()
  }

  private _nextExchange(): void {
    this._current = undefined
    if (this._ignoreInput) {
      this._endOutput()
      this._maybeClose()
      return
    }
    // Parses held (pipelined) input; an end of input that was waiting for this gives onEof.
    this._feed(() => this._parser.resume())
    this._maybeDrain()
  }

  private _abortExchange(ex: Exchange, err: Error): void {
    ex._abort.abort(err)
    if (ex._body === 'stream') {
      try {
        ex._controller?.error(err)
      } catch {
        // already closed
      }
    }
    ex._body = 'discard'
    void ex._reader?.cancel(err).catch(() => {})
  }

  // ---- output ----

  private _emit(bytes: Uint8Array): void {
    if (this._closed || this._endPending || bytes.length === 0) return
    if (this._outPaused || this._outQueue.length > 0 || this._sink === undefined) this._outQueue.push(bytes)
    else this._sink.onData(bytes)
  }

  /** A complete short text/plain response. */
  private _emitText(req: RequestHead | undefined, status: number, text: string, keepAlive: boolean): void {
    const body = new TextEncoder().encode(`${text}\n`)
    const w = new ResponseWriter({ keepAlive, requestMethod: req?.method, requestVersionMinor: req?.versionMinor })
    this._emit(w.head({ status, headers: [['Content-Type', 'text/plain; charset=utf-8']], bodyLength: body.length }))
    for (const b of w.body(body)) this._emit(b)
    this._emit(w.end())
  }

  private _flush(): void {
    const sink = this._sink
    if (sink === undefined || this._closed) return
    while (!this._outPaused && this._outQueue.length > 0) {
      sink.onData(this._outQueue.shift()!)
      if (this._closed) return
    }
    if (this._outPaused) return
    if (this._endPending && !this._endDelivered) {
      this._endDelivered = true
      sink.onEnd()
      this._maybeClose()
    }
    this._wakeWriters()
  }

  private _whenWritable(): Promise<void> {
    if (!this._outPaused || this._closed) return Promise.resolve()
    return new Promise((resolve) => this._writableWaiters.push(resolve))
  }

  private _wakeWriters(): void {
    const w = this._writableWaiters
    if (w.length === 0) return
    this._writableWaiters = []
    for (const f of w) f()
  }

  /** Half-closes our side after the queued bytes (no response follows). */
  private _endOutput(): void {
    if (this._endPending) return
    this._endPending = true
    this._flush()
  }

  private _maybeClose(): void {
    if (this._closed || !this._endDelivered || !this._inputEnded) return
    this._closed = true
    const ex = this._current
    this._current = undefined
    if (ex !== undefined) this._abortExchange(ex, new WsfrpError('ERR_CONN_CLOSED', 'the connection closed'))
    queueMicrotask(() => this._sink?.onClose())
  }
}

/** The URL of a Request for `head`: origin-form targets are resolved against the Host field. */
function requestURL(head: RequestHead): string {
  const t = head.target
  if (t.startsWith('/')) {
    let host = 'localhost'
    for (const [name, value] of head.headers) {
      if (name.length === 4 && name.toLowerCase() === 'host') {
        host = value
        break
      }
    }
    if (!HOST_RE.test(host)) throw new HttpError('ERR_HTTP_PARSE', 400, 'invalid Host header')
    return new URL(`http://${host}${t}`).href
  }
  if (/^https?:\/\//i.test(t)) return new URL(t).href
  throw new HttpError('ERR_HTTP_PARSE', 400, `unsupported request target form: ${t.slice(0, 64)}`)
}

/**
 * Browsers filter "forbidden request-header names" out of `new Request()` (Fetch standard §4.6);
 * a server-side handler needs Host, Cookie and the rest. A Headers object made on its own has no
 * such guard, so when something was filtered the Request gets one of those as its own `headers`
 * property (shadowing the prototype getter on this one object). Node's Request filters nothing.
 */
function restoreForbiddenHeaders(request: Request, fields: HeaderField[]): void {
  let complete = true
  for (const [name] of fields) {
    if (!request.headers.has(name)) {
      complete = false
      break
    }
  }
  if (complete) return
  const all = new Headers()
  for (const [name, value] of fields) all.append(name, value)
  Object.defineProperty(request, 'headers', { value: all, enumerable: true, configurable: true })
}
