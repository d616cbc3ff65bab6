/**
 * Stream handler targets: the local end of a tcp proxy's work streams is a JavaScript function that
 * gets the connection as a WHATWG stream pair.
 */
import { WsfrpError, noopLogger, type Conn, type ConnSink, type Logger } from '@wsfrp/core'

/** One proxied TCP connection, as streams. */
export interface StreamConnection {
  /** Bytes from the remote client. Closes when the client half-closes; errors when the connection fails. */
  readable: ReadableStream<Uint8Array>
  /**
   * Bytes to the remote client. `close()` half-closes (the client sees EOF and may go on sending);
   * `abort()` resets the connection. Each chunk is copied, so the caller may reuse its buffer.
   */
  writable: WritableStream<Uint8Array>
  /** Proxy name and the client's address as frps saw it, when known. */
  proxyName: string
  remoteAddr: string | undefined
  remotePort: number | undefined
}

/**
 * Handles one TCP connection. It may return at once and keep using the streams; a throw or a
 * rejection resets the connection.
 */
export type StreamHandler = (conn: StreamConnection) => void | Promise<void>

/** Options of {@link streamTarget}. */
export interface StreamTargetOptions {
  /**
   * Bytes queued in `readable` before the work stream stops being credited (the server then stops
   * sending). Default 64 KiB (65,536).
   */
  highWaterMark?: number
  proxyName?: string
  remoteAddr?: string
  remotePort?: number
  logger?: Logger
}

const DEFAULT_HWM = 64 * 1024

/**
 * A Conn whose far side is `handler`: `pipe(workStream, streamTarget(handler))`.
 * Backpressure runs both ways: a full `readable` makes `write()` return false (pipe pauses the work
 * stream), and while the work stream cannot take more, `writable`'s writes stay pending.
 */
export function streamTarget(handler: StreamHandler, opts?: StreamTargetOptions): Conn {
  return new StreamConn(handler, opts ?? {})
}

class StreamConn implements Conn {
  readonly canPause = true
  private _sink: ConnSink | undefined
  private readonly _log: Logger
  private _readable: ReadableStreamDefaultController<Uint8Array> | undefined
  private _writable: WritableStreamDefaultController | undefined
  private _readableOpen = true
  private _needDrain = false
  private _inputEnded = false
  private _outputEnded = false
  private _paused = false
  private _waiters: (() => void)[] = []
  private _closed = false

  private readonly _handler: StreamHandler
  private readonly _opts: StreamTargetOptions

  constructor(handler: StreamHandler, opts: StreamTargetOptions) {
    this._handler = handler
    this._opts = opts
    this._log = opts.logger ?? noopLogger
  }

  start(sink: ConnSink): void {
    if (this._sink !== undefined) throw new Error('streamTarget: start() called twice')
    this._sink = sink
    const hwm = this._opts.highWaterMark ?? DEFAULT_HWM
    const readable = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this._readable = c
        },
        pull: () => this._maybeDrain(),
        cancel: () => {
          // The handler wants no more input: what still comes is dropped, without stalling the stream.
          this._readableOpen = false
          this._maybeDrain()
        },
      },
      { highWaterMark: hwm, size: (c) => c.byteLength },
    )
    const writable = new WritableStream<Uint8Array>({
      start: (c) => {
        this._writable = c
      },
      write: async (chunk) => {
        if (!(chunk instanceof Uint8Array)) throw new TypeError('streamTarget: chunks must be Uint8Arrays')
        while (this._paused && !this._closed) await new Promise<void>((r) => this._waiters.push(r))
        if (this._closed) throw new WsfrpError('ERR_CONN_CLOSED', 'the connection is closed')
        // A copy: WritableStream callers may reuse the buffer once write() resolved, and the bytes
        // may still be queued in yamux then.
        if (chunk.length > 0) this._sink?.onData(chunk.slice())
      },
      close: () => {
        if (this._closed) return
        this._outputEnded = true
        this._sink?.onEnd()
        this._maybeClose()
      },
      abort: (reason) => {
        this.destroy(new WsfrpError('ERR_CONN_ABORTED', 'the stream handler aborted the connection', { cause: reason }))
      },
    })
    const conn: StreamConnection = {
      readable,
      writable,
      proxyName: this._opts.proxyName ?? '',
      remoteAddr: this._opts.remoteAddr,
      remotePort: this._opts.remotePort,
    }
    queueMicrotask(() => {
      Promise.resolve()
        .then(() => this._handler(conn))
        .catch((err: unknown) => {
          const error = err instanceof Error ? err : new Error(String(err))
          this._log.warn('stream handler failed', { proxy: this._opts.proxyName, error: error.message })
          this.destroy(error)
        })
    })
  }

  write(chunk: Uint8Array): boolean {
    if (this._closed || this._inputEnded) return false
    if (!this._readableOpen || this._readable === undefined) return true
    try {
      this._readable.enqueue(chunk)
    } catch {
      this._readableOpen = false
      return true
    }
    if ((this._readable.desiredSize ?? 1) > 0) return true
    this._needDrain = true
    return false
  }

  end(): void {
    if (this._closed || this._inputEnded) return
    this._inputEnded = true
    if (this._readableOpen) {
      this._readableOpen = false
      try {
        this._readable?.close()
      } catch {
        // cancelled by the handler
      }
    }
    this._maybeClose()
  }

  destroy(err?: Error): void {
    if (this._closed) return
    this._closed = true
    const reason = err ?? new WsfrpError('ERR_CONN_CLOSED', 'the connection was destroyed')
    if (this._readableOpen) {
      this._readableOpen = false
      try {
        this._readable?.error(reason)
      } catch {
        // already closed
      }
    }
    try {
      this._writable?.error(reason)
    } catch {
      // already closed
    }
    this._wake()
    queueMicrotask(() => this._sink?.onClose(err))
  }

  pause(): void {
    this._paused = true
  }

  resume(): void {
    this._paused = false
    this._wake()
  }

  private _wake(): void {
    const w = this._waiters
    this._waiters = []
    for (const f of w) f()
  }

  private _maybeDrain(): void {
    if (!this._needDrain || this._closed) return
    if (this._readableOpen && this._readable !== undefined && (this._readable.desiredSize ?? 1) <= 0) return
    this._needDrain = false
    this._sink?.onDrain()
  }

  private _maybeClose(): void {
    if (this._closed || !this._inputEnded || !this._outputEnded) return
    this._closed = true
    queueMicrotask(() => this._sink?.onClose())
  }
}
