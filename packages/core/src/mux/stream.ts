import type { Conn, ConnSink } from '../conn.js'
import { WsfrpError } from '../errors.js'
import { INITIAL_STREAM_WINDOW } from './frame.js'

/** What a stream needs from its session. */
export interface StreamHost {
  readonly writeHighWaterMark: number
  /** The stream has queued data or a FIN to send. */
  wantsToSend(s: YamuxStream): void
  sendWindowUpdate(s: YamuxStream, flags: number, delta: number): void
  sendReset(s: YamuxStream): void
  /** Asks for `extra` bytes of window growth; returns how many were granted. */
  growWindow(extra: number): number
  /** The stream is gone: remove it and give back its budget. */
  forget(s: YamuxStream, grownBy: number): void
  /** Bytes moved in or out of stream receive buffers (for the session-wide gauge). */
  buffered(delta: number): void
  /** A peer-opened stream was started (leaves the accept backlog). */
  started(s: YamuxStream): void
}

const S_FIN_QUEUED = 1 // end() was called
const S_FIN_SENT = 2
const S_REMOTE_FIN = 4 // the peer's FIN arrived
const S_END_DELIVERED = 8
const S_CLOSED = 16
const S_PAUSED = 32
const S_NEED_DRAIN = 64
const S_DELIVERY_SCHEDULED = 128
const S_READY = 256 // in the session's ready queue
const S_INBOUND = 512 // opened by the peer
const S_STARTED = 1024

/**
 * One yamux stream, as a Conn. Created by `YamuxSession.open()` or handed to `onStream`.
 *
 * Receive: data goes straight to the sink while it flows, and is buffered (within the stream's
 * window) while paused or not yet started. Window credit is given back only as the application
 * consumes bytes, so a stalled reader stops its own sender and nobody else.
 * Send: `write()` queues; the session moves queued bytes into frames as window and transport allow.
 */
export class YamuxStream implements Conn {
  /** Always true: pausing stops window credit, so the peer stops sending. */
  get canPause(): boolean {
    return true
  }
  /** @internal */ state = 0
  /** @internal */ sink: ConnSink | undefined = undefined
  /** @internal Peer credit left: bytes we may still send. */ sendWindow = INITIAL_STREAM_WINDOW
  /** @internal */ sendQueue: Uint8Array[] | undefined = undefined
  /** @internal Offset into sendQueue[0] already framed. */ sendHeadOffset = 0
  /** @internal */ sendQueued = 0
  /** @internal Credit we granted that the peer has not used yet. */ recvWindow = INITIAL_STREAM_WINDOW
  /** @internal Window target: what we top the credit up to. */ window = INITIAL_STREAM_WINDOW
  private recvBuf: Uint8Array[] | undefined = undefined
  private recvBuffered = 0
  private closeError: Error | undefined = undefined

  /** @internal */
  constructor(
    /** The yamux stream id (odd when opened by the client side). */
    readonly id: number,
    private readonly host: StreamHost,
    private readonly maxWindow: number,
    inbound: boolean,
  ) {
    if (inbound) this.state |= S_INBOUND
  }

  /** True once the stream is finished in both directions or was reset. */
  get closed(): boolean {
    return (this.state & S_CLOSED) !== 0
  }

  start(sink: ConnSink): void {
    if (this.sink) throw new WsfrpError('ERR_CONN_CLOSED', `stream ${this.id}: start() called twice`)
    this.sink = sink
    this.state |= S_STARTED
    if (this.state & S_INBOUND && !(this.state & S_CLOSED)) this.host.started(this)
    if (this.state & S_CLOSED) {
      const err = this.closeError
      queueMicrotask(() => sink.onClose(err))
      return
    }
    if (this.recvBuffered > 0 || this.state & S_REMOTE_FIN) this.scheduleDelivery()
  }

  write(chunk: Uint8Array): boolean {
    // After close a write is a no-op (the Conn contract: every method after close is harmless);
    // after end() it is a caller bug that would otherwise lose data silently.
    if (this.state & S_CLOSED) return false
    if (this.state & S_FIN_QUEUED) throw new WsfrpError('ERR_CONN_CLOSED', `stream ${this.id}: write after end`)
    if (chunk.length > 0) {
      ;(this.sendQueue ??= []).push(chunk)
      this.sendQueued += chunk.length
      this.host.wantsToSend(this)
    }
    if (this.sendQueued >= this.host.writeHighWaterMark) {
      this.state |= S_NEED_DRAIN
      return false
    }
    return true
  }

  end(): void {
    if (this.state & (S_FIN_QUEUED | S_CLOSED)) return
    this.state |= S_FIN_QUEUED
    this.host.wantsToSend(this)
  }

  destroy(err?: Error): void {
    if (this.state & S_CLOSED) return
    if ((this.state & (S_FIN_SENT | S_REMOTE_FIN)) !== (S_FIN_SENT | S_REMOTE_FIN)) this.host.sendReset(this)
    this.close(err)
  }

  /** Sends RST: the peer sees a reset, not an orderly end. */
  reset(): void {
    this.destroy()
  }

  pause(): void {
    this.state |= S_PAUSED
  }

  resume(): void {
    if (!(this.state & S_PAUSED)) return
    this.state &= ~S_PAUSED
    if (this.recvBuffered > 0 || this.state & S_REMOTE_FIN) this.scheduleDelivery()
  }

  // ---- used by the session ------------------------------------------------------------------

  /** @internal */
  hasFlag(f: number): boolean {
    return (this.state & f) !== 0
  }
  /** @internal */
  setFlag(f: number): void {
    this.state |= f
  }
  /** @internal */
  clearFlag(f: number): void {
    this.state &= ~f
  }

  /** @internal Payload bytes of a Data frame for this stream (already checked against the window). */
  receive(piece: Uint8Array): void {
    if (this.state & (S_CLOSED | S_REMOTE_FIN)) return
    if (this.recvBuffered === 0 && (this.state & (S_STARTED | S_PAUSED | S_DELIVERY_SCHEDULED)) === S_STARTED) {
      this.sink!.onData(piece)
      this.consumed()
      return
    }
    ;(this.recvBuf ??= []).push(piece)
    this.recvBuffered += piece.length
    this.host.buffered(piece.length)
  }

  /** @internal The peer half-closed. */
  remoteEnd(): void {
    if (this.state & (S_CLOSED | S_REMOTE_FIN)) return
    this.state |= S_REMOTE_FIN
    if (this.recvBuffered === 0 && (this.state & (S_STARTED | S_PAUSED | S_DELIVERY_SCHEDULED)) === S_STARTED) {
      this.deliverEnd()
    }
  }

  /** @internal The FIN frame went out. */
  finSent(): void {
    this.state |= S_FIN_SENT
    if (this.state & S_END_DELIVERED) this.close(undefined)
  }

  /** @internal Takes up to `max` bytes off the send queue, without copying when one chunk suffices. */
  takeSendBytes(max: number): Uint8Array {
    const q = this.sendQueue!
    const head = q[0]!
    const avail = head.length - this.sendHeadOffset
    let out: Uint8Array
    if (avail >= max || q.length === 1) {
      const n = Math.min(avail, max)
      out = head.subarray(this.sendHeadOffset, this.sendHeadOffset + n)
      this.sendHeadOffset += n
      if (this.sendHeadOffset === head.length) {
        q.shift()
        this.sendHeadOffset = 0
      }
      // An idle stream keeps no empty array around (10,000 idle streams: every byte counts).
      if (q.length === 0) this.sendQueue = undefined
    } else {
      // Several small writes: copy them into one frame rather than paying a header for each.
      const n = Math.min(max, this.sendQueued)
      out = new Uint8Array(n)
      let filled = 0
      while (filled < n) {
        const c = q[0]!
        const take = Math.min(c.length - this.sendHeadOffset, n - filled)
        out.set(c.subarray(this.sendHeadOffset, this.sendHeadOffset + take), filled)
        filled += take
        this.sendHeadOffset += take
        if (this.sendHeadOffset === c.length) {
          q.shift()
          this.sendHeadOffset = 0
        }
      }
    }
    if (q.length === 0) this.sendQueue = undefined
    this.sendQueued -= out.length
    this.sendWindow -= out.length
    return out
  }

  /** @internal Called by the session after it took bytes: tells a blocked writer it may go on. */
  maybeDrain(): boolean {
    if (this.state & S_NEED_DRAIN && this.sendQueued < this.host.writeHighWaterMark) {
      this.state &= ~S_NEED_DRAIN
      return true
    }
    return false
  }

  /** @internal Tears the stream down (reset by the peer, session gone, or local destroy). */
  close(err: Error | undefined): void {
    if (this.state & S_CLOSED) return
    this.state |= S_CLOSED
    this.closeError = err
    if (this.recvBuffered > 0) this.host.buffered(-this.recvBuffered)
    this.recvBuf = undefined
    this.recvBuffered = 0
    this.sendQueue = undefined
    this.sendQueued = 0
    this.host.forget(this, this.window - INITIAL_STREAM_WINDOW)
    const sink = this.sink
    if (sink) sink.onClose(err)
  }

  private scheduleDelivery(): void {
    if (this.state & (S_DELIVERY_SCHEDULED | S_CLOSED)) return
    this.state |= S_DELIVERY_SCHEDULED
    // Deliver outside the caller's stack: resume() and start() must not re-enter the sink.
    queueMicrotask(() => {
      this.state &= ~S_DELIVERY_SCHEDULED
      this.deliverBuffered()
    })
  }

  private deliverBuffered(): void {
    const buf = this.recvBuf
    while (buf && buf.length > 0 && (this.state & (S_PAUSED | S_CLOSED | S_STARTED)) === S_STARTED) {
      const piece = buf.shift()!
      this.recvBuffered -= piece.length
      this.host.buffered(-piece.length)
      this.sink!.onData(piece)
    }
    if (this.recvBuf && this.recvBuf.length === 0) this.recvBuf = undefined
    if (this.state & S_CLOSED) return
    this.consumed()
    if (this.recvBuffered === 0 && (this.state & (S_REMOTE_FIN | S_PAUSED | S_STARTED)) === (S_REMOTE_FIN | S_STARTED)) {
      this.deliverEnd()
    }
  }

  private deliverEnd(): void {
    if (this.state & (S_END_DELIVERED | S_CLOSED)) return
    this.state |= S_END_DELIVERED
    this.sink!.onEnd()
    if (this.state & S_FIN_SENT) this.close(undefined)
  }

  /**
   * Tops the peer's credit back up once half the window was consumed (Go does the same), and grows
   * the window when the peer had nearly exhausted it: the stream is read faster than it is filled.
   */
  private consumed(): void {
    if (this.state & (S_CLOSED | S_REMOTE_FIN)) return
    let delta = this.window - this.recvWindow - this.recvBuffered
    if (delta < this.window / 2) return
    if (this.recvWindow < this.window / 4 && this.window < this.maxWindow) {
      const want = Math.min(this.window, this.maxWindow - this.window)
      const got = this.host.growWindow(want)
      this.window += got
      delta += got
    }
    this.recvWindow += delta
    this.host.sendWindowUpdate(this, 0, delta)
  }
}

export const StreamFlags = {
  FIN_QUEUED: S_FIN_QUEUED,
  FIN_SENT: S_FIN_SENT,
  REMOTE_FIN: S_REMOTE_FIN,
  CLOSED: S_CLOSED,
  READY: S_READY,
  INBOUND: S_INBOUND,
  STARTED: S_STARTED,
} as const
