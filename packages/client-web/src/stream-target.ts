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
  private sink: ConnSink | undefined
  private readonly log: Logger
  private readable: ReadableStreamDefaultController<Uint8Array> | undefined
  private writable: WritableStreamDefaultController | undefined
  private readableOpen = true
  private needDrain = false
  private inputEnded = false
  private outputEnded = false
  private paused = false
  private waiters: (() => void)[] = []
  private closed = false

  constructor(
    private readonly handler: StreamHandler,
    private readonly opts: StreamTargetOptions,
  ) {
    this.log = opts.logger ?? noopLogger
  }

  start(sink: ConnSink): void {
    if (this.sink !== undefined) throw new Error('streamTarget: start() called twice')
    this.sink = sink
    const hwm = this.opts.highWaterMark ?? DEFAULT_HWM
    const readable = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.readable = c
        },
        pull: () => this.maybeDrain(),
        cancel: () => {
          // The handler wants no more input: what still comes is dropped, without stalling the stream.
          this.readableOpen = false
          this.maybeDrain()
        },
      },
      { highWaterMark: hwm, size: (c) => c.byteLength },
    )
    const writable = new WritableStream<Uint8Array>({
      start: (c) => {
        this.writable = c
      },
      write: async (chunk) => {
        if (!(chunk instanceof Uint8Array)) throw new TypeError('streamTarget: chunks must be Uint8Arrays')
        while (this.paused && !this.closed) await new Promise<void>((r) => this.waiters.push(r))
        if (this.closed) throw new WsfrpError('ERR_CONN_CLOSED', 'the connection is closed')
        // A copy: WritableStream callers may reuse the buffer once write() resolved, and the bytes
        // may still be queued in yamux then.
        if (chunk.length > 0) this.sink?.onData(chunk.slice())
      },
      close: () => {
        if (this.closed) return
        this.outputEnded = true
        this.sink?.onEnd()
        this.maybeClose()
      },
      abort: (reason) => {
        this.destroy(new WsfrpError('ERR_CONN_ABORTED', 'the stream handler aborted the connection', { cause: reason }))
      },
    })
    const conn: StreamConnection = {
      readable,
      writable,
      proxyName: this.opts.proxyName ?? '',
      remoteAddr: this.opts.remoteAddr,
      remotePort: this.opts.remotePort,
    }
    queueMicrotask(() => {
      Promise.resolve()
        .then(() => this.handler(conn))
        .catch((err: unknown) => {
          const error = err instanceof Error ? err : new Error(String(err))
          this.log.warn('stream handler failed', { proxy: this.opts.proxyName, error: error.message })
          this.destroy(error)
        })
    })
  }

  write(chunk: Uint8Array): boolean {
    if (this.closed || this.inputEnded) return false
    if (!this.readableOpen || this.readable === undefined) return true
    try {
      this.readable.enqueue(chunk)
    } catch {
      this.readableOpen = false
      return true
    }
    if ((this.readable.desiredSize ?? 1) > 0) return true
    this.needDrain = true
    return false
  }

  end(): void {
    if (this.closed || this.inputEnded) return
    this.inputEnded = true
    if (this.readableOpen) {
      this.readableOpen = false
      try {
        this.readable?.close()
      } catch {
        // cancelled by the handler
      }
    }
    this.maybeClose()
  }

  destroy(err?: Error): void {
    if (this.closed) return
    this.closed = true
    const reason = err ?? new WsfrpError('ERR_CONN_CLOSED', 'the connection was destroyed')
    if (this.readableOpen) {
      this.readableOpen = false
      try {
        this.readable?.error(reason)
      } catch {
        // already closed
      }
    }
    try {
      this.writable?.error(reason)
    } catch {
      // already closed
    }
    this.wake()
    queueMicrotask(() => this.sink?.onClose(err))
  }

  pause(): void {
    this.paused = true
  }

  resume(): void {
    this.paused = false
    this.wake()
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  private maybeDrain(): void {
    if (!this.needDrain || this.closed) return
    if (this.readableOpen && this.readable !== undefined && (this.readable.desiredSize ?? 1) <= 0) return
    this.needDrain = false
    this.sink?.onDrain()
  }

  private maybeClose(): void {
    if (this.closed || !this.inputEnded || !this.outputEnded) return
    this.closed = true
    queueMicrotask(() => this.sink?.onClose())
  }
}
