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
export function streamTarget(handler: StreamHandler, opts: StreamTargetOptions = {}): Conn {
  // A closure rather than a class: it ships in the size-budgeted service-worker bundle, where every
  // `this._x` access costs six bytes more than a closure variable.
  let sink: ConnSink | undefined
  let readableCtl: ReadableStreamDefaultController<Uint8Array> | undefined
  let writableCtl: WritableStreamDefaultController | undefined
  let readableOpen = true
  let needDrain = false
  let inputEnded = false
  let outputEnded = false
  let paused = false
  let waiters: (() => void)[] = []
  let closed = false

  const wake = (): void => {
    const w = waiters
    waiters = []
    for (const f of w) f()
  }

  const maybeDrain = (): void => {
    if (!needDrain || closed) return
    if (readableOpen && readableCtl !== undefined && (readableCtl.desiredSize ?? 1) <= 0) return
    needDrain = false
    sink?.onDrain()
  }

  const maybeClose = (): void => {
    if (closed || !inputEnded || !outputEnded) return
    closed = true
    queueMicrotask(() => sink?.onClose())
  }

  /** Ends the readable side (no more input for the handler) with `err`, or closes it cleanly. */
  const endReadable = (err?: Error): void => {
    if (!readableOpen) return
    readableOpen = false
    try {
      if (err === undefined) readableCtl?.close()
      else readableCtl?.error(err)
    } catch {
      // cancelled by the handler, or already closed
    }
  }

  const destroy = (err?: Error): void => {
    if (closed) return
    closed = true
    const reason = err ?? new WsfrpError('ERR_CONN_CLOSED', 'the connection was destroyed')
    endReadable(reason)
    try {
      writableCtl?.error(reason)
    } catch {
      // already closed
    }
    wake()
    queueMicrotask(() => sink?.onClose(err))
  }

  return {
    canPause: true,
    start(s) {
      if (sink !== undefined) throw new Error('streamTarget: start() called twice')
      sink = s
      const readable = new ReadableStream<Uint8Array>(
        {
          start: (c) => {
            readableCtl = c
          },
          pull: maybeDrain,
          cancel: () => {
            // The handler wants no more input: what still comes is dropped, without stalling the stream.
            readableOpen = false
            maybeDrain()
          },
        },
        { highWaterMark: opts.highWaterMark ?? DEFAULT_HWM, size: (c) => c.byteLength },
      )
      const writable = new WritableStream<Uint8Array>({
        start: (c) => {
          writableCtl = c
        },
        write: async (chunk) => {
          if (!(chunk instanceof Uint8Array)) throw new TypeError('streamTarget: chunks must be Uint8Arrays')
          while (paused && !closed) await new Promise<void>((r) => waiters.push(r))
          if (closed) throw new WsfrpError('ERR_CONN_CLOSED', 'the connection is closed')
          // A copy: WritableStream callers may reuse the buffer once write() resolved, and the bytes
          // may still be queued in yamux then.
          if (chunk.length > 0) sink?.onData(chunk.slice())
        },
        close: () => {
          if (closed) return
          outputEnded = true
          sink?.onEnd()
          maybeClose()
        },
        abort: (reason) => {
          destroy(new WsfrpError('ERR_CONN_ABORTED', 'the stream handler aborted', { cause: reason }))
        },
      })
      const conn: StreamConnection = {
        readable,
        writable,
        proxyName: opts.proxyName ?? '',
        remoteAddr: opts.remoteAddr,
        remotePort: opts.remotePort,
      }
      queueMicrotask(() => {
        Promise.resolve()
          .then(() => handler(conn))
          .catch((err: unknown) => {
            const error = err instanceof Error ? err : new Error(String(err))
            ;(opts.logger ?? noopLogger).warn('stream handler failed', { proxy: opts.proxyName, error: error.message })
            destroy(error)
          })
      })
    },
    write(chunk) {
      if (closed || inputEnded) return false
      if (!readableOpen || readableCtl === undefined) return true
      try {
        readableCtl.enqueue(chunk)
      } catch {
        readableOpen = false
        return true
      }
      if ((readableCtl.desiredSize ?? 1) > 0) return true
      needDrain = true
      return false
    },
    end() {
      if (closed || inputEnded) return
      inputEnded = true
      endReadable()
      maybeClose()
    },
    destroy,
    pause() {
      paused = true
    },
    resume() {
      paused = false
      wake()
    },
  }
}
