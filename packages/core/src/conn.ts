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
  return new Promise<void>((resolve, reject) => {
    new Pipe(a, b, opts?.signal, resolve, reject)
  })
}

/** One pipe's shared state; its two sinks are installed on `a` and `b`. */
class Pipe {
  private _settled = false
  private readonly _sa: PipeSink
  private readonly _sb: PipeSink
  private readonly _onAbort: (() => void) | undefined

  constructor(
    a: Conn,
    b: Conn,
    private readonly _signal: AbortSignal | undefined,
    private readonly _resolve: () => void,
    private readonly _reject: (err: Error) => void,
  ) {
    this._sa = new PipeSink(this, a)
    this._sb = new PipeSink(this, b)
    this._sa.other = this._sb
    this._sb.other = this._sa
    // Start both before looking at the signal: a conn that was never started may never release its
    // resources, and destroy() of a started conn is the one path every implementation handles.
    a.start(this._sa)
    b.start(this._sb)
    if (_signal !== undefined) {
      this._onAbort = () => this.fail(abortError(_signal))
      if (_signal.aborted) this._onAbort()
      else _signal.addEventListener('abort', this._onAbort, { once: true })
    }
  }

  fail(err: Error): void {
    if (this._settled) return
    this._settled = true
    this._detach()
    if (!this._sa.closed) this._sa.conn.destroy(err)
    if (!this._sb.closed) this._sb.conn.destroy(err)
    this._reject(err)
  }

  closed(): void {
    if (this._settled || !this._sa.closed || !this._sb.closed) return
    this._settled = true
    this._detach()
    this._resolve()
  }

  private _detach(): void {
    if (this._onAbort !== undefined) this._signal?.removeEventListener('abort', this._onAbort)
  }
}

/** The sink installed on `conn`: forwards what `conn` reads to the other side. */
class PipeSink implements ConnSink {
  other!: PipeSink
  /** This conn was paused by the pipe because the other side's write returned false. */
  paused = false
  /** This conn delivered onEnd: its read direction is finished. */
  ended = false
  closed = false

  constructor(
    private readonly _pipe: Pipe,
    readonly conn: Conn,
  ) {}

  onData(chunk: Uint8Array): void {
    const other = this.other
    if (other.closed) {
      // The other side can take no more bytes (e.g. a WebSocket, which has no half-close, closed after
      // its peer ended): dropping them silently would truncate the stream unnoticed.
      this._pipe.fail(new WsfrpError('ERR_CONN_CLOSED', 'pipe: data arrived for a side that is already closed'))
      return
    }
    if (!other.conn.write(chunk) && this.conn.canPause && !this.paused) {
      this.paused = true
      this.conn.pause()
    }
  }

  onDrain(): void {
    // This conn's write buffer drained: the other side may deliver again.
    const other = this.other
    if (other.paused) {
      other.paused = false
      other.conn.resume()
    }
  }

  onEnd(): void {
    this.ended = true
    if (!this.other.closed) this.other.conn.end()
  }

  onClose(err?: Error): void {
    this.closed = true
    if (err !== undefined) this._pipe.fail(err)
    else if (!this.ended) {
      this._pipe.fail(new WsfrpError('ERR_CONN_CLOSED', 'pipe: connection closed before its data ended'))
    } else this._pipe.closed()
  }
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
