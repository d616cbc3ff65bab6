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
  private sink: ConnSink | undefined
  private readonly queue: Uint8Array[] = []
  private ended = false
  private endDelivered = false
  private closed: { err: Error | undefined } | undefined
  private drainPending = false
  private paused = false
  private flushScheduled = false

  constructor(private readonly inner: Conn) {}

  get canPause(): boolean {
    return this.inner.canPause
  }

  start(sink: ConnSink): void {
    if (this.sink !== undefined) throw new WsfrpError('ERR_CONN_CLOSED', 'Conn.start() called twice')
    this.sink = sink
    // Deliver in a microtask, not inside start(): callers finish their own setup after start().
    this.scheduleFlush()
  }

  write(chunk: Uint8Array): boolean {
    return this.inner.write(chunk)
  }

  end(): void {
    this.inner.end()
  }

  destroy(err?: Error): void {
    this.inner.destroy(err)
  }

  pause(): void {
    this.paused = true
    this.inner.pause()
  }

  resume(): void {
    this.paused = false
    // The inner Conn resumes only once the queue is empty (in flush), to keep order.
    this.scheduleFlush()
  }

  // --- events from the inner Conn (forwarded by readMessage's sink) ---

  onData(chunk: Uint8Array): void {
    if (this.closed !== undefined || this.sink === DEAD_SINK) return
    if (this.sink !== undefined && !this.paused && this.queue.length === 0 && !this.flushScheduled) {
      this.sink.onData(chunk)
    } else {
      this.queue.push(chunk)
    }
  }

  onDrain(): void {
    if (this.sink !== undefined) this.sink.onDrain()
    else this.drainPending = true
  }

  onEnd(): void {
    this.ended = true
    this.scheduleFlushIfIdle()
  }

  onClose(err: Error | undefined): void {
    // A failed or destroyed Conn drops what it had not delivered (as a destroyed Node stream does),
    // so that a paused consumer still learns about the failure; a clean close keeps the order.
    if (err !== undefined) this.queue.length = 0
    this.closed = { err }
    this.scheduleFlushIfIdle()
  }

  private scheduleFlushIfIdle(): void {
    if (this.sink !== undefined) this.scheduleFlush()
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    queueMicrotask(() => {
      this.flushScheduled = false
      this.flush()
    })
  }

  private flush(): void {
    const sink = this.sink
    if (sink === undefined) return
    if (this.drainPending) {
      this.drainPending = false
      sink.onDrain()
    }
    while (!this.paused && this.queue.length > 0) sink.onData(this.queue.shift()!)
    if (this.queue.length > 0) return
    if (this.ended && !this.endDelivered) {
      this.endDelivered = true
      sink.onEnd()
    }
    if (this.closed !== undefined) {
      const { err } = this.closed
      this.closed = undefined
      this.sink = DEAD_SINK
      sink.onClose(err)
      return
    }
    if (!this.paused) this.inner.resume()
  }
}

const noop = (): void => {}
const DEAD_SINK: ConnSink = { onData: noop, onDrain: noop, onEnd: noop, onClose: noop }
