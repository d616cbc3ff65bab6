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
    const cont = continuation(conn)
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
            ? new WsfrpError('ERR_MSG_PROTOCOL', 'stream ended inside an frp message')
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

/** A {@link Conn} that also takes the events of the Conn it continues. */
type ContinuationConn = Conn & ConnSink

/**
 * A Conn over an already-started Conn: queues what arrives before its own `start()` and replays it,
 * then passes events through. Keeps the original paused while its own queue is not empty. Closures
 * rather than a class: this ships in the service-worker bundle, whose size is budgeted.
 */
function continuation(inner: Conn): ContinuationConn {
  let sink: ConnSink | undefined
  const queue: Uint8Array[] = []
  let ended = false
  let endDelivered = false
  let closed: { err: Error | undefined } | undefined
  let drainPending = false
  let paused = false
  let flushScheduled = false

  const scheduleFlush = (): void => {
    if (flushScheduled) return
    flushScheduled = true
    queueMicrotask(() => {
      flushScheduled = false
      flush()
    })
  }
  const scheduleFlushIfIdle = (): void => {
    if (sink !== undefined) scheduleFlush()
  }
  const flush = (): void => {
    const s = sink
    if (s === undefined) return
    if (drainPending) {
      drainPending = false
      s.onDrain()
    }
    while (!paused && queue.length > 0) s.onData(queue.shift()!)
    if (queue.length > 0) return
    if (ended && !endDelivered) {
      endDelivered = true
      s.onEnd()
    }
    if (closed !== undefined) {
      const { err } = closed
      closed = undefined
      sink = DEAD_SINK
      s.onClose(err)
      return
    }
    if (!paused) inner.resume()
  }

  return {
    get canPause() {
      return inner.canPause
    },
    start(s) {
      if (sink !== undefined) throw new WsfrpError('ERR_CONN_CLOSED', 'Conn.start() called twice')
      sink = s
      // Deliver in a microtask, not inside start(): callers finish their own setup after start().
      scheduleFlush()
    },
    write: (chunk) => inner.write(chunk),
    end: () => inner.end(),
    destroy: (err) => inner.destroy(err),
    pause() {
      paused = true
      inner.pause()
    },
    resume() {
      paused = false
      // The inner Conn resumes only once the queue is empty (in flush), to keep order.
      scheduleFlush()
    },

    // --- events from the inner Conn (forwarded by readMessage's sink) ---

    onData(chunk) {
      if (closed !== undefined || sink === DEAD_SINK) return
      if (sink !== undefined && !paused && queue.length === 0 && !flushScheduled) sink.onData(chunk)
      else queue.push(chunk)
    },
    onDrain() {
      if (sink !== undefined) sink.onDrain()
      else drainPending = true
    },
    onEnd() {
      ended = true
      scheduleFlushIfIdle()
    },
    onClose(err) {
      // A failed or destroyed Conn drops what it had not delivered (as a destroyed Node stream
      // does), so that a paused consumer still learns about the failure; a clean close keeps the order.
      if (err !== undefined) queue.length = 0
      closed = { err }
      scheduleFlushIfIdle()
    },
  }
}

const noop = (): void => {}
const DEAD_SINK: ConnSink = { onData: noop, onDrain: noop, onEnd: noop, onClose: noop }
