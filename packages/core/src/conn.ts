import { WsfrpError } from './errors.js'

/**
 * The byte pipe every hop implements: a WebSocket, a TCP socket, a yamux stream, an in-memory pair.
 *
 * Shaped after Node's `write`/`end`/`destroy` and `'data'/'drain'/'end'/'close'` so that Node developers
 * read it without a glossary, but delivered through one handler object (undici's DispatchHandler
 * pattern) so the hot path allocates no event per chunk.
 */
export interface ConnSink {
  /** A chunk of bytes from the peer. The receiver owns the chunk; the producer never reuses it. */
  onData(chunk: Uint8Array): void
  /** After `write()` returned false: the write buffer has drained and writing may go on. */
  onDrain(): void
  /** The peer half-closed: no more `onData` follows. Writing is still allowed. */
  onEnd(): void
  /**
   * Called exactly once, last: both directions are finished (`err` undefined) or the conn failed or
   * was destroyed (`err` set, unless destroyed locally without an error).
   */
  onClose(err?: Error): void
}

export interface Conn {
  /** Installs the sink. Called once; no data is delivered before it, and none is lost. */
  start(sink: ConnSink): void
  /**
   * Queues bytes. Returns false when the caller should stop and wait for `sink.onDrain()`; the bytes
   * were still accepted. The caller must not modify `chunk` afterwards.
   */
  write(chunk: Uint8Array): boolean
  /** Half-close after all queued bytes are sent (TCP FIN, yamux FIN). Reading goes on. */
  end(): void
  /** Tears down both directions now; queued bytes may be lost. `onClose(err)` follows. */
  destroy(err?: Error): void
  /** Stops `onData` delivery (and, for a flow-controlled conn, stops crediting the peer). */
  pause(): void
  resume(): void
  /**
   * False when the source cannot be paused (a browser WebSocket): `pause()` is then a no-op and only
   * the yamux windows bound what is buffered.
   */
  readonly canPause: boolean
}

/** Options of {@link pipe}. */
export interface PipeOptions {
  /** Aborting destroys both conns and rejects with `WsfrpError('ERR_CONN_ABORTED')`. */
  signal?: AbortSignal
}

/**
 * Copies bytes both ways between `a` and `b` until both directions have ended.
 *
 * - Backpressure: when a write returns false the source is paused until the sink's `onDrain`. A source
 *   with `canPause === false` keeps being written to (its memory is bounded elsewhere, e.g. by yamux
 *   windows).
 * - Half-close: `onEnd` of one side becomes `end()` of the other, so a FIN travels through.
 * - Resolves once both conns closed cleanly. Rejects, after destroying both, on the first error of either
 *   side, on a clean close of one side before its data direction ended (truncation), when data arrives for a
 *   side that is already closed, or on abort (`ERR_CONN_ABORTED`).
 *
 * Starts both conns: neither may have been started before.
 */
export function pipe(a: Conn, b: Conn, opts?: PipeOptions): Promise<void> {
  // Closures, not classes: this ships in the size-budgeted service-worker bundle, where a closure
  // variable minifies to one letter and every `this.x` costs five bytes more.
  return new Promise<void>((resolve, reject) => {
    const signal = opts?.signal
    let settled = false
    let onAbort: (() => void) | undefined
    const sa: PipeSide = { _paused: false, _ended: false, _closed: false }
    const sb: PipeSide = { _paused: false, _ended: false, _closed: false }

    const detach = (): void => {
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort)
    }

    const fail = (err: Error): void => {
      if (settled) return
      settled = true
      detach()
      if (!sa._closed) a.destroy(err)
      if (!sb._closed) b.destroy(err)
      reject(err)
    }

    /** The sink installed on `conn`: forwards what `conn` reads to `otherConn`. */
    const sink = (me: PipeSide, conn: Conn, other: PipeSide, otherConn: Conn): ConnSink => ({
      onData(chunk) {
        if (other._closed) {
          // The other side can take no more bytes (e.g. a WebSocket, which has no half-close, closed
          // after its peer ended): dropping them silently would truncate the stream unnoticed.
          fail(new WsfrpError('ERR_CONN_CLOSED', 'pipe: data arrived for a side that is already closed'))
          return
        }
        if (!otherConn.write(chunk) && conn.canPause && !me._paused) {
          me._paused = true
          conn.pause()
        }
      },
      onDrain() {
        // This conn's write buffer drained: the other side may deliver again.
        if (other._paused) {
          other._paused = false
          otherConn.resume()
        }
      },
      onEnd() {
        me._ended = true
        if (!other._closed) otherConn.end()
      },
      onClose(err) {
        me._closed = true
        if (err !== undefined) fail(err)
        else if (!me._ended) fail(new WsfrpError('ERR_CONN_CLOSED', 'pipe: connection closed before its data ended'))
        else if (!settled && sa._closed && sb._closed) {
          settled = true
          detach()
          resolve()
        }
      },
    })

    // Start both before looking at the signal: a conn that was never started may never release its
    // resources, and destroy() of a started conn is the one path every implementation handles.
    a.start(sink(sa, a, sb, b))
    b.start(sink(sb, b, sa, a))
    if (signal !== undefined) {
      onAbort = () => fail(abortError(signal))
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
    }
  })
}

/** One direction's state in a {@link pipe}. */
interface PipeSide {
  /** This conn was paused by the pipe because the other side's write returned false. */
  _paused: boolean
  /** This conn delivered onEnd: its read direction is finished. */
  _ended: boolean
  _closed: boolean
}

function abortError(signal: AbortSignal): WsfrpError {
  return new WsfrpError('ERR_CONN_ABORTED', 'pipe aborted', { cause: signal.reason })
}

/**
 * A Conn that passes everything through to `inner`, installing itself as `inner`'s sink. The base
 * for wrappers that count or limit a connection (the server's traffic counters, a user's connection
 * limit): a subclass overrides only the calls it cares about and calls `super` to pass them on.
 *
 * {@link onFinish} is the one place to release what the wrapper holds: it runs exactly once, when
 * the conn closed (before the sink's `onClose`), or at `destroy()` of a conn that was never started
 * (no `onClose` will ever come through it then). Wrapping costs one object per connection and
 * nothing per chunk.
 */
export class ForwardingConn implements Conn, ConnSink {
  /** The sink of whoever started this conn; undefined until `start()`. */
  protected sink: ConnSink | undefined
  private finished = false

  constructor(protected readonly inner: Conn) {}

  get canPause(): boolean {
    return this.inner.canPause
  }

  start(sink: ConnSink): void {
    this.sink = sink
    this.inner.start(this)
  }

  write(chunk: Uint8Array): boolean {
    return this.inner.write(chunk)
  }

  end(): void {
    this.inner.end()
  }

  destroy(err?: Error): void {
    if (this.sink === undefined) this.finish()
    this.inner.destroy(err)
  }

  pause(): void {
    this.inner.pause()
  }

  resume(): void {
    this.inner.resume()
  }

  onData(chunk: Uint8Array): void {
    this.sink!.onData(chunk)
  }

  onDrain(): void {
    this.sink!.onDrain()
  }

  onEnd(): void {
    this.sink!.onEnd()
  }

  onClose(err?: Error): void {
    this.finish()
    this.sink!.onClose(err)
  }

  /** Runs once when the conn is finished (see the class comment). Does nothing by default. */
  protected onFinish(): void {}

  private finish(): void {
    if (this.finished) return
    this.finished = true
    this.onFinish()
  }
}
