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
// An exchange's request body state: a const enum, inlined as numbers (strings would repeat in the bundle).
const enum BodyState {
  None,
  Stream,
  Discard,
}
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
export function handlerTarget(handler: FetchHandler, opts: HandlerTargetOptions = {}): Conn {
  // A closure rather than a class: this code ships in the size-budgeted service-worker bundle, and
  // closure variables minify to one letter where every `this._x` access would cost six bytes more.
  const log = opts.logger ?? noopLogger
  const bodyHwm = opts.bodyHighWaterMark ?? DEFAULT_BODY_HWM
  if (!(bodyHwm >= 1)) throw new RangeError(`bodyHighWaterMark must be >= 1, got ${bodyHwm}`)
  const proxyName = opts.proxyName
  let sink: ConnSink | undefined
  let current: Exchange | undefined

  // Input side (bytes from the peer).
  let needDrain = false
  let inputEnded = false
  /** No more input is parsed: a parse error, or the response said Connection: close. */
  let ignoreInput = false

  // Output side (bytes to the peer).
  let outPaused = false
  let outQueue: Uint8Array[] = []
  let endPending = false
  let endDelivered = false
  let writableWaiters: (() => void)[] = []

  let closed = false

  const warn = (what: string, err: unknown): void =>
    log.warn(what, { proxy: proxyName, error: err instanceof Error ? err.message : String(err) })

  // ---- input ----

  /** Runs a parser call; a parse error becomes an error response (or closes after the current one). */
  const feed = (call: () => void): void => {
    try {
      call()
    } catch (err) {
      onInputError(err)
    }
  }

  const canTakeMore = (): boolean => {
    if (ignoreInput) return true
    if (parser.bufferedBytes > 0) return false
    const ex = current
    return !(ex !== undefined && ex._body === BodyState.Stream && ex._controller !== undefined && (ex._controller.desiredSize ?? 1) <= 0)
  }

  const maybeDrain = (): void => {
    if (!needDrain || closed || !canTakeMore()) return
    needDrain = false
    sink?.onDrain()
  }

  const parser = new RequestParser(
    {
      onHead(head) {
        const ex: Exchange = {
          _head: head,
          _abort: new AbortController(),
          _body: BodyState.None,
          _stream: undefined,
          _controller: undefined,
          _requestDone: false,
          _responseDone: false,
          _broken: false,
          _reader: undefined,
        }
        current = ex
        if (head.bodyKind !== 'none') {
          const method = head.method.toUpperCase()
          if (method === 'GET' || method === 'HEAD' || FORBIDDEN_METHODS.has(method)) {
            // A Request cannot carry a body for these; it is read and dropped to keep the stream in sync.
            ex._body = BodyState.Discard
          } else {
            // Made now, not when the handler is called: body bytes may follow the head in this very chunk.
            // (start() runs synchronously inside the constructor, so the controller exists at once.)
            ex._body = BodyState.Stream
            ex._stream = new ReadableStream<Uint8Array>(
              {
                start: (c) => {
                  ex._controller = c
                },
                pull: maybeDrain,
                cancel: () => {
                  ex._body = BodyState.Discard
                  maybeDrain()
                },
              },
              { highWaterMark: bodyHwm, size: (c) => c.byteLength },
            )
          }
        }
        // Handlers run outside the parser's (and the peer's delivery) stack.
        queueMicrotask(() => void run(ex))
      },
      onBody(chunk) {
        const ex = current
        if (ex === undefined || ex._body !== BodyState.Stream || ex._controller === undefined) return
        try {
          ex._controller.enqueue(chunk)
        } catch {
          // The stream was cancelled or errored by its reader: the rest is discarded.
          ex._body = BodyState.Discard
        }
      },
      onMessageEnd() {
        const ex = current
        if (ex === undefined) return
        ex._requestDone = true
        // One request at a time: pipelined requests wait until this response is written.
        parser.pause()
        if (ex._body === BodyState.Stream) {
          try {
            ex._controller?.close()
          } catch {
            // already cancelled
          }
        }
        if (ex._responseDone) nextExchange()
      },
      onEof() {
        if (current === undefined) endOutput()
      },
    },
    opts,
  )

  const onInputError = (err: unknown): void => {
    ignoreInput = true
    parser.pause()
    const error = err instanceof Error ? err : new Error(String(err))
    const ex = current
    if (ex !== undefined) {
      if (!ex._responseDone) {
        // The request body was cut off or malformed: the handler's read fails; the response it
        // still gives is sent, and the connection closes after it.
        ex._broken = true
        failBody(ex, error)
        return
      }
      // The response is out; only the rest of the request was bad.
      current = undefined
    } else {
      const status = err instanceof HttpError ? err.status : 400
      log.debug('bad request on a work stream', { proxy: proxyName, error: error.message, status })
      // Parser errors name what was wrong with the request; anything else stays internal.
      const reason = reasonPhrase(status) || 'Bad Request'
      emitText(undefined, status, err instanceof HttpError ? `${reason}: ${error.message}` : reason, false)
    }
    endOutput()
    maybeClose()
  }

  /** Errors a streamed request body (its reader's read rejects) and drops the rest of it. */
  const failBody = (ex: Exchange, err: Error): void => {
    if (ex._body === BodyState.Stream) {
      try {
        ex._controller?.error(err)
      } catch {
        // already closed
      }
    }
    ex._body = BodyState.Discard
  }

  // ---- one exchange ----

  const run = async (ex: Exchange): Promise<void> => {
    const head = ex._head
    let response: Response | undefined
    let early: [number, string] | undefined
    if (FORBIDDEN_METHODS.has(head.method.toUpperCase())) early = [405, `${head.method} is not supported`]
    else if (head.expect !== undefined && head.expect.toLowerCase() !== '100-continue') early = [417, 'Expectation Failed']
    let request: Request | undefined
    if (early === undefined) {
      try {
        request = buildRequest(ex)
      } catch (err) {
        early = [400, `Bad Request: ${(err as Error).message}`]
      }
    }
    if (early !== undefined || request === undefined) {
      const [status, text] = early ?? [400, 'Bad Request']
      failResponse(ex, status, text)
      return
    }
    if (ex._body === BodyState.Stream && head.expect !== undefined) emit(ResponseWriter.interim(100))
    const info: HandlerInfo = {
      proxyName: proxyName ?? '',
      remoteAddr: opts.remoteAddr,
      remotePort: opts.remotePort,
      rawHeaders: head.headers,
    }
    try {
      const r: unknown = await handler(request, info)
      if (!(r instanceof Response) || r.type === 'error' || r.status < 200) {
        throw new TypeError(`the handler returned ${r instanceof Response ? `status ${r.status}` : r === null ? 'null' : typeof r}, not a usable Response`)
      }
      response = r
    } catch (err) {
      if (closed || current !== ex) return
      warn('handler failed', err)
      failResponse(ex, 500, 'Internal Server Error')
      return
    }
    if (closed || current !== ex) {
      cancel(response.body)
      return
    }
    await writeResponse(ex, response)
  }

  /** Answers `ex` with a short text response instead of the handler's. */
  const failResponse = (ex: Exchange, status: number, text: string): void => {
    const keepAlive = ex._head.keepAlive && !ex._broken
    finishBody(ex)
    emitText(ex._head, status, text, keepAlive)
    responseWritten(ex, keepAlive)
  }

  const buildRequest = (ex: Exchange): Request => {
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

  const writeResponse = async (ex: Exchange, response: Response): Promise<void> => {
    const head = ex._head
    const w = new ResponseWriter({
      requestMethod: head.method,
      requestVersionMinor: head.versionMinor,
      keepAlive: head.keepAlive && !ex._broken,
    })
    let headBytes: Uint8Array
    const body = response.body
    try {
      headBytes = w.head({
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
        bodyLength: body === null ? 0 : undefined,
      })
    } catch (err) {
      warn('handler response cannot be sent', err)
      cancel(body)
      failResponse(ex, 500, 'Internal Server Error')
      return
    }
    emit(headBytes)
    try {
      if (body !== null) {
        if (w.framing === 'none') {
          cancel(body)
        } else {
          const reader = body.getReader()
          ex._reader = reader
          for (;;) {
            await whenWritable()
            if (closed) return
            const { done, value } = await reader.read()
            if (done) break
            if (closed) return
            if (!(value instanceof Uint8Array)) throw new TypeError('a response body chunk is not a Uint8Array')
            for (const b of w.body(value)) emit(b)
          }
          ex._reader = undefined
        }
      }
      emit(w.end())
    } catch (err) {
      if (closed) return
      // Part of the response is out: the only honest signal left is to cut the stream.
      warn('response body failed', err)
      cancel(ex._reader)
      destroy(err instanceof Error ? err : new Error(String(err)))
      return
    }
    responseWritten(ex, w.keepAlive)
  }

  /** The request body is no longer wanted (the response is out): stop streaming it, keep parsing past it. */
  const finishBody = (ex: Exchange): void => {
    if (!ex._requestDone) failBody(ex, new WsfrpError('ERR_CONN_ABORTED', 'response sent before the request body was read'))
    maybeDrain()
  }

  const responseWritten = (ex: Exchange, keepAlive: boolean): void => {
    if (closed || current !== ex) return
    ex._responseDone = true
    finishBody(ex)
    // ignoreInput: the request turned bad after this response's head went out with keep-alive.
    if (!keepAlive || ignoreInput) {
      ignoreInput = true
      parser.pause()
      current = undefined
      endOutput()
      maybeDrain()
      maybeClose()
      return
    }
    if (ex._requestDone) nextExchange()
  }

  const nextExchange = (): void => {
    current = undefined
    if (ignoreInput) {
      endOutput()
      maybeClose()
      return
    }
    // Parses held (pipelined) input; an end of input that was waiting for this gives onEof.
    feed(() => parser.resume())
    maybeDrain()
  }

  /** Ends the exchange in progress, if any, with `err`: its signal aborts and its streams error. */
  const abortCurrent = (err: Error): void => {
    const ex = current
    current = undefined
    if (ex === undefined) return
    ex._abort.abort(err)
    failBody(ex, err)
    void ex._reader?.cancel(err).catch(() => {})
  }

  // ---- output ----

  const emit = (bytes: Uint8Array): void => {
    if (closed || endPending || bytes.length === 0) return
    if (outPaused || outQueue.length > 0 || sink === undefined) outQueue.push(bytes)
    else sink.onData(bytes)
  }

  /** A complete short text/plain response. */
  const emitText = (req: RequestHead | undefined, status: number, text: string, keepAlive: boolean): void => {
    const body = new TextEncoder().encode(`${text}\n`)
    const w = new ResponseWriter({ keepAlive, requestMethod: req?.method, requestVersionMinor: req?.versionMinor })
    emit(w.head({ status, headers: [['Content-Type', 'text/plain; charset=utf-8']], bodyLength: body.length }))
    for (const b of w.body(body)) emit(b)
    emit(w.end())
  }

  const flush = (): void => {
    if (sink === undefined || closed) return
    while (!outPaused && outQueue.length > 0) {
      sink.onData(outQueue.shift()!)
      if (closed) return
    }
    if (outPaused) return
    if (endPending && !endDelivered) {
      endDelivered = true
      sink.onEnd()
      maybeClose()
    }
    wakeWriters()
  }

  const whenWritable = (): Promise<void> | undefined =>
    outPaused && !closed ? new Promise((resolve) => writableWaiters.push(resolve)) : undefined

  const wakeWriters = (): void => {
    const w = writableWaiters
    writableWaiters = []
    for (const f of w) f()
  }

  /** Half-closes our side after the queued bytes (no response follows). */
  const endOutput = (): void => {
    if (endPending) return
    endPending = true
    flush()
  }

  const maybeClose = (): void => {
    if (closed || !endDelivered || !inputEnded) return
    closed = true
    abortCurrent(new WsfrpError('ERR_CONN_CLOSED', 'the connection closed'))
    queueMicrotask(() => sink?.onClose())
  }

  const destroy = (err?: Error): void => {
    if (closed) return
    closed = true
    outQueue = []
    abortCurrent(err ?? new WsfrpError('ERR_CONN_CLOSED', 'the connection was destroyed'))
    wakeWriters()
    queueMicrotask(() => sink?.onClose(err))
  }

  return {
    canPause: true,
    start(s) {
      if (sink !== undefined) throw new Error('handlerTarget: start() called twice')
      sink = s
    },
    write(chunk) {
      if (closed || inputEnded) return false
      if (ignoreInput) return true
      feed(() => parser.push(chunk))
      if (canTakeMore()) return true
      needDrain = true
      return false
    },
    end() {
      if (closed || inputEnded) return
      inputEnded = true
      if (ignoreInput) maybeClose()
      // The check runs once the held input is parsed: onEof, or an error for a cut-off request.
      else feed(() => parser.finish())
    },
    destroy,
    pause() {
      outPaused = true
    },
    resume() {
      if (!outPaused) return
      outPaused = false
      flush()
    },
  }
}

/**
 * Serves `handler` on `conn` (e.g. a work stream or a test's memory pair) until the connection
 * ends: `pipe(conn, handlerTarget(handler, opts))`.
 */
export function serveHttp(conn: Conn, handler: FetchHandler, opts?: HandlerTargetOptions): Promise<void> {
  return pipe(conn, handlerTarget(handler, opts))
}

/** Cancels a response body or its reader that will not be read (any error is moot by then). */
function cancel(body: { cancel(reason?: unknown): Promise<void> } | null | undefined): void {
  void body?.cancel().catch(() => {})
}

/** One request and its response. */
interface Exchange {
  _head: RequestHead
  _abort: AbortController
  /** The request body: streamed to the handler, discarded (handler done, GET with a body), or none. */
  _body: BodyState
  _stream: ReadableStream<Uint8Array> | undefined
  _controller: ReadableStreamDefaultController<Uint8Array> | undefined
  _requestDone: boolean
  _responseDone: boolean
  /** The request turned out malformed (mid-body): close after the response. */
  _broken: boolean
  _reader: ReadableStreamDefaultReader<Uint8Array> | undefined
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
