/**
 * Read exactly one frp message from a Conn, then hand the Conn on with every byte that followed.
 *
 * frp streams change format after their first message: after StartWorkConn a work stream carries
 * the user's raw bytes, after LoginResp the control stream continues AES-CFB encrypted. The peer
 * sends those bytes without waiting, so they often share a chunk with the message. A Conn can only
 * be started once, so instead of handing back the bytes alone this returns a continuation Conn that
 * delivers those bytes first and then everything else the original Conn delivers.
 *
 * This works on any Conn (a yamux stream, a WebSocket, a memory pair) and knows nothing of yamux.
 */
import type { Conn, ConnSink } from '../conn.js'
import { WsfrpError } from '../errors.js'
import type { MessageCodecOptions } from './codec.js'
import { MessageReader } from './reader.js'
import type { Message } from './types.js'

export interface ReadMessageOptions extends MessageCodecOptions {
  /** Aborting rejects the read and destroys the Conn. Use `AbortSignal.timeout(ms)` for a deadline. */
  signal?: AbortSignal
}

export interface ReadMessageResult {
  msg: Message
  /**
   * The original Conn's continuation: it delivers {@link rest} first, then every later event of the
   * original Conn. Writes, `end()`, `destroy()`, `pause()` go straight to the original. Not started yet.
   */
  conn: Conn
  /**
   * The bytes that arrived after the message in the same chunk, for inspection only: `conn`
   * already delivers them, do not feed them anywhere again.
   */
  rest: Uint8Array
}

/**
 * Starts `conn`, reads one message and resolves with it and the continuation Conn. The original
 * Conn is paused (when it can be) between the message and the continuation's `start()`.
 *
 * Rejects, after destroying `conn`, with: `ERR_MSG_PROTOCOL` / `ERR_MSG_TOO_LARGE` on bad bytes
 * (also when the peer ends inside a message); `ERR_CONN_CLOSED` when the Conn ends or closes before
 * a message; the signal's reason (or `ERR_CONN_ABORTED`) when `signal` aborts.
 */
export function readMessage(conn: Conn, opts?: ReadMessageOptions): Promise<ReadMessageResult> {
  const reader = new MessageReader(opts)
  const signal = opts?.signal
  return new Promise<ReadMessageResult>((resolve, reject) => {
    if (signal?.aborted) {
      const err = abortError(signal)
      conn.destroy(err)
      reject(err)
      return
    }
    const cont = new ContinuationConn(conn)
    let settled = false
    const onAbort = (): void => fail(abortError(signal!))
    const fail = (err: Error): void => {
      if (settled) return
      settled = true
      signal?.removeEventListener('abort', onAbort)
      conn.destroy(err)
      reject(err)
    }
    const sink: ConnSink = {
      onData(chunk) {
        if (settled) return cont.onData(chunk)
        let r
        try {
          r = reader.pushOne(chunk)
        } catch (err) {
          return fail(err as Error)
        }
        if (r.msg === undefined) return
        settled = true
        signal?.removeEventListener('abort', onAbort)
        conn.pause()
        if (r.rest.length > 0) cont.onData(r.rest)
        resolve({ msg: r.msg, conn: cont, rest: r.rest })
      },
      onDrain() {
        cont.onDrain()
      },
      onEnd() {
        if (settled) return cont.onEnd()
        fail(
          reader.bufferedBytes > 0
            ? new WsfrpError('ERR_MSG_PROTOCOL', `stream ended inside an frp message (${reader.bufferedBytes} bytes held)`)
            : new WsfrpError('ERR_CONN_CLOSED', 'stream ended before an frp message'),
        )
      },
      onClose(err) {
        if (settled) return cont.onClose(err)
        // Not through fail(): the conn is closed already, destroying it again is pointless.
        settled = true
        signal?.removeEventListener('abort', onAbort)
        reject(
          isTyped(err) ? err : new WsfrpError('ERR_CONN_CLOSED', 'stream closed before an frp message', { cause: err }),
        )
      },
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    conn.start(sink)
  })
}

function isTyped(err: unknown): err is WsfrpError {
  return err instanceof WsfrpError
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason
  if (reason instanceof Error) return reason
  return new WsfrpError('ERR_CONN_ABORTED', 'reading an frp message was aborted', { cause: reason })
}

/**
 * A Conn over an already-started Conn: queues what arrives before its own `start()` and replays it,
 * then passes events through. Keeps the original paused while its own queue is not empty.
 */
class ContinuationConn implements Conn {
  private _sink: ConnSink | undefined
  private readonly _queue: Uint8Array[] = []
  private _ended = false
  private _endDelivered = false
  private _closed: { err: Error | undefined } | undefined
  private _drainPending = false
  private _paused = false
  private _flushScheduled = false

  private readonly _inner: Conn

  constructor(inner: Conn) {
    this._inner = inner
  }

  get canPause(): boolean {
    return this._inner.canPause
  }

  start(sink: ConnSink): void {
    if (this._sink !== undefined) throw new WsfrpError('ERR_CONN_CLOSED', 'Conn.start() called twice')
    this._sink = sink
    // Deliver in a microtask, not inside start(): callers finish their own setup after start().
    this._scheduleFlush()
  }

  write(chunk: Uint8Array): boolean {
    return this._inner.write(chunk)
  }

  end(): void {
    this._inner.end()
  }

  destroy(err?: Error): void {
    this._inner.destroy(err)
  }

  pause(): void {
    this._paused = true
    this._inner.pause()
  }

  resume(): void {
    this._paused = false
    // The inner Conn resumes only once the queue is empty (in flush), to keep order.
    this._scheduleFlush()
  }

  // --- events from the inner Conn (forwarded by readMessage's sink) ---

  onData(chunk: Uint8Array): void {
    if (this._closed !== undefined || this._sink === DEAD_SINK) return
    if (this._sink !== undefined && !this._paused && this._queue.length === 0 && !this._flushScheduled) {
      this._sink.onData(chunk)
    } else {
      this._queue.push(chunk)
    }
  }

  onDrain(): void {
    if (this._sink !== undefined) this._sink.onDrain()
    else this._drainPending = true
  }

  onEnd(): void {
    this._ended = true
    this._scheduleFlushIfIdle()
  }

  onClose(err: Error | undefined): void {
    // A failed or destroyed Conn drops what it had not delivered (as a destroyed Node stream does),
    // so that a paused consumer still learns about the failure; a clean close keeps the order.
    if (err !== undefined) this._queue.length = 0
    this._closed = { err }
    this._scheduleFlushIfIdle()
  }

  private _scheduleFlushIfIdle(): void {
    if (this._sink !== undefined) this._scheduleFlush()
  }

  private _scheduleFlush(): void {
    if (this._flushScheduled) return
    this._flushScheduled = true
    queueMicrotask(() => {
      this._flushScheduled = false
      this._flush()
    })
  }

  private _flush(): void {
    const sink = this._sink
    if (sink === undefined) return
    if (this._drainPending) {
      this._drainPending = false
      sink.onDrain()
    }
    while (!this._paused && this._queue.length > 0) sink.onData(this._queue.shift()!)
    if (this._queue.length > 0) return
    if (this._ended && !this._endDelivered) {
      this._endDelivered = true
      sink.onEnd()
    }
    if (this._closed !== undefined) {
      const { err } = this._closed
      this._closed = undefined
      this._sink = DEAD_SINK
      sink.onClose(err)
      return
    }
    if (!this._paused) this._inner.resume()
  }
}

const noop = (): void => {}
const DEAD_SINK: ConnSink = { onData: noop, onDrain: noop, onEnd: noop, onClose: noop }
