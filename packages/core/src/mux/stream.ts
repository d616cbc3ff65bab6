import type { Conn, ConnSink } from '../conn.js'
import { WsfrpError } from '../errors.js'
import { INITIAL_STREAM_WINDOW } from './frame.js'
import {
  S_CLOSED,
  S_DELIVERY_SCHEDULED,
  S_END_DELIVERED,
  S_FIN_QUEUED,
  S_FIN_SENT,
  S_NEED_DRAIN,
  S_PAUSED,
  S_REMOTE_FIN,
  S_STARTED,
  S_INBOUND,
} from './stream-state.js'

/** What a stream needs from its session. */
export interface StreamHost {
  readonly writeHighWaterMark: number
  /** The stream has queued data or a FIN to send. */
  _wantsToSend(s: YamuxStream): void
  _sendWindowUpdate(s: YamuxStream, flags: number, delta: number): void
  _sendReset(s: YamuxStream): void
  /** Asks for `extra` bytes of window growth; returns how many were granted. */
  _growWindow(extra: number): number
  /** The stream is gone: remove it and give back its budget. */
  _forget(s: YamuxStream, grownBy: number): void
  /** Bytes moved in or out of stream receive buffers (for the session-wide gauge). */
  _buffered(delta: number): void
  /** A peer-opened stream was started (leaves the accept backlog). */
  _started(s: YamuxStream): void
}


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
  private _state = 0
  /** @internal */ _sink: ConnSink | undefined = undefined
  /** @internal Peer credit left: bytes we may still send. */ _sendWindow = INITIAL_STREAM_WINDOW
  private _sendQueue: Uint8Array[] | undefined = undefined
  /** Offset into _sendQueue[0] already framed. */ private _sendHeadOffset = 0
  /** @internal */ _sendQueued = 0
  /** @internal Credit we granted that the peer has not used yet. */ _recvWindow = INITIAL_STREAM_WINDOW
  /** Window target: what we top the credit up to. */ private _window = INITIAL_STREAM_WINDOW
  private _recvBuf: Uint8Array[] | undefined = undefined
  private _recvBuffered = 0
  private _closeError: Error | undefined = undefined

  /** @internal */
  constructor(
    /** The yamux stream id (odd when opened by the client side). */
    readonly id: number,
    private readonly _host: StreamHost,
    private readonly _maxWindow: number,
    inbound: boolean,
  ) {
    if (inbound) this._state |= S_INBOUND
  }

  /** True once the stream is finished in both directions or was reset. */
  get closed(): boolean {
    return (this._state & S_CLOSED) !== 0
  }

  start(sink: ConnSink): void {
    if (this._sink) throw new WsfrpError('ERR_CONN_CLOSED', `stream ${this.id}: start() called twice`)
    this._sink = sink
    this._state |= S_STARTED
    if (this._state & S_INBOUND && !(this._state & S_CLOSED)) this._host._started(this)
    if (this._state & S_CLOSED) {
      const err = this._closeError
      queueMicrotask(() => sink.onClose(err))
      return
    }
    if (this._recvBuffered > 0 || this._state & S_REMOTE_FIN) this._scheduleDelivery()
  }

  write(chunk: Uint8Array): boolean {
    // After close a write is a no-op (the Conn contract: every method after close is harmless);
    // after end() it is a caller bug that would otherwise lose data silently.
    if (this._state & S_CLOSED) return false
    if (this._state & S_FIN_QUEUED) throw new WsfrpError('ERR_CONN_CLOSED', `stream ${this.id}: write after end`)
    if (chunk.length > 0) {
      ;(this._sendQueue ??= []).push(chunk)
      this._sendQueued += chunk.length
      this._host._wantsToSend(this)
    }
    if (this._sendQueued >= this._host.writeHighWaterMark) {
      this._state |= S_NEED_DRAIN
      return false
    }
    return true
  }

  end(): void {
    if (this._state & (S_FIN_QUEUED | S_CLOSED)) return
    this._state |= S_FIN_QUEUED
    this._host._wantsToSend(this)
  }

  destroy(err?: Error): void {
    if (this._state & S_CLOSED) return
    if ((this._state & (S_FIN_SENT | S_REMOTE_FIN)) !== (S_FIN_SENT | S_REMOTE_FIN)) this._host._sendReset(this)
    this.close(err)
  }

  /** Sends RST: the peer sees a reset, not an orderly end. */
  reset(): void {
    this.destroy()
  }

  pause(): void {
    this._state |= S_PAUSED
  }

  resume(): void {
    if (!(this._state & S_PAUSED)) return
    this._state &= ~S_PAUSED
    if (this._recvBuffered > 0 || this._state & S_REMOTE_FIN) this._scheduleDelivery()
  }

  // ---- used by the session ------------------------------------------------------------------

  /** @internal */
  _hasFlag(f: number): boolean {
    return (this._state & f) !== 0
  }
  /** @internal */
  _setFlag(f: number): void {
    this._state |= f
  }
  /** @internal */
  _clearFlag(f: number): void {
    this._state &= ~f
  }

  /** @internal Payload bytes of a Data frame for this stream (already checked against the window). */
  _receive(piece: Uint8Array): void {
    if (this._state & (S_CLOSED | S_REMOTE_FIN)) return
    if (this._recvBuffered === 0 && (this._state & (S_STARTED | S_PAUSED | S_DELIVERY_SCHEDULED)) === S_STARTED) {
      this._sink!.onData(piece)
      this._consumed()
      return
    }
    ;(this._recvBuf ??= []).push(piece)
    this._recvBuffered += piece.length
    this._host._buffered(piece.length)
  }

  /** @internal The peer half-closed. */
  _remoteEnd(): void {
    if (this._state & (S_CLOSED | S_REMOTE_FIN)) return
    this._state |= S_REMOTE_FIN
    if (this._recvBuffered === 0 && (this._state & (S_STARTED | S_PAUSED | S_DELIVERY_SCHEDULED)) === S_STARTED) {
      this._deliverEnd()
    }
  }

  /** @internal The FIN frame went out. */
  _finSent(): void {
    this._state |= S_FIN_SENT
    if (this._state & S_END_DELIVERED) this.close(undefined)
  }

  /** @internal Takes up to `max` bytes off the send queue, without copying when one chunk suffices. */
  _takeSendBytes(max: number): Uint8Array {
    const q = this._sendQueue!
    const head = q[0]!
    const avail = head.length - this._sendHeadOffset
    let out: Uint8Array
    if (avail >= max || q.length === 1) {
      const n = Math.min(avail, max)
      out = head.subarray(this._sendHeadOffset, this._sendHeadOffset + n)
      this._sendHeadOffset += n
      if (this._sendHeadOffset === head.length) {
        q.shift()
        this._sendHeadOffset = 0
      }
      // An idle stream keeps no empty array around (10,000 idle streams: every byte counts).
      if (q.length === 0) this._sendQueue = undefined
    } else {
      // Several small writes: copy them into one frame rather than paying a header for each.
      const n = Math.min(max, this._sendQueued)
      out = new Uint8Array(n)
      let filled = 0
      while (filled < n) {
        const c = q[0]!
        const take = Math.min(c.length - this._sendHeadOffset, n - filled)
        out.set(c.subarray(this._sendHeadOffset, this._sendHeadOffset + take), filled)
        filled += take
        this._sendHeadOffset += take
        if (this._sendHeadOffset === c.length) {
          q.shift()
          this._sendHeadOffset = 0
        }
      }
    }
    if (q.length === 0) this._sendQueue = undefined
    this._sendQueued -= out.length
    this._sendWindow -= out.length
    return out
  }

  /** @internal Called by the session after it took bytes: tells a blocked writer it may go on. */
  _maybeDrain(): boolean {
    if (this._state & S_NEED_DRAIN && this._sendQueued < this._host.writeHighWaterMark) {
      this._state &= ~S_NEED_DRAIN
      return true
    }
    return false
  }

  /** @internal Tears the stream down (reset by the peer, session gone, or local destroy). */
  close(err: Error | undefined): void {
    if (this._state & S_CLOSED) return
    this._state |= S_CLOSED
    this._closeError = err
    if (this._recvBuffered > 0) this._host._buffered(-this._recvBuffered)
    this._recvBuf = undefined
    this._recvBuffered = 0
    this._sendQueue = undefined
    this._sendQueued = 0
    this._host._forget(this, this._window - INITIAL_STREAM_WINDOW)
    const sink = this._sink
    if (sink) sink.onClose(err)
  }

  private _scheduleDelivery(): void {
    if (this._state & (S_DELIVERY_SCHEDULED | S_CLOSED)) return
    this._state |= S_DELIVERY_SCHEDULED
    // Deliver outside the caller's stack: resume() and start() must not re-enter the sink.
    queueMicrotask(() => {
      this._state &= ~S_DELIVERY_SCHEDULED
      this._deliverBuffered()
    })
  }

  private _deliverBuffered(): void {
    const buf = this._recvBuf
    while (buf && buf.length > 0 && (this._state & (S_PAUSED | S_CLOSED | S_STARTED)) === S_STARTED) {
      const piece = buf.shift()!
      this._recvBuffered -= piece.length
      this._host._buffered(-piece.length)
      this._sink!.onData(piece)
    }
    if (this._recvBuf && this._recvBuf.length === 0) this._recvBuf = undefined
    if (this._state & S_CLOSED) return
    this._consumed()
    if (this._recvBuffered === 0 && (this._state & (S_REMOTE_FIN | S_PAUSED | S_STARTED)) === (S_REMOTE_FIN | S_STARTED)) {
      this._deliverEnd()
    }
  }

  private _deliverEnd(): void {
    if (this._state & (S_END_DELIVERED | S_CLOSED)) return
    this._state |= S_END_DELIVERED
    this._sink!.onEnd()
    if (this._state & S_FIN_SENT) this.close(undefined)
  }

  /**
   * Tops the peer's credit back up once half the window was consumed (Go does the same), and grows
   * the window when the peer had nearly exhausted it: the stream is read faster than it is filled.
   */
  private _consumed(): void {
    if (this._state & (S_CLOSED | S_REMOTE_FIN)) return
    let delta = this._window - this._recvWindow - this._recvBuffered
    if (delta < this._window / 2) return
    if (this._recvWindow < this._window / 4 && this._window < this._maxWindow) {
      const want = Math.min(this._window, this._maxWindow - this._window)
      const got = this._host._growWindow(want)
      this._window += got
      delta += got
    }
    this._recvWindow += delta
    this._host._sendWindowUpdate(this, 0, delta)
  }
}
