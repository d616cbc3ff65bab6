import type { Conn, ConnSink } from '../conn.js'
import { clearTimer, setTimer, type Timer } from '../timers.js'
import { WsfrpError } from '../errors.js'
import { noopLogger, type Logger } from '../log.js'
import { concatBytes } from '../bytes/concat.js'
import { resolveYamuxOptions, type ResolvedYamuxOptions, type YamuxOptions } from './config.js'
import { FrameDecoder, type FrameHandler } from './decoder.js'
import { Flag, FrameType, GoAwayCode, INITIAL_STREAM_WINDOW, encodeHeader } from './frame.js'
import { S_CLOSED, S_FIN_QUEUED, S_FIN_SENT, S_INBOUND, S_READY, S_STARTED, YamuxStream, type StreamHost } from './stream.js'

/** A transport Conn may offer `writev`: all frames of one tick as one write (one WebSocket message). */
type BatchingConn = Conn & { writev?(chunks: Uint8Array[]): boolean }

interface PendingPing {
  start: number
  resolve: (rttMs: number) => void
  reject: (err: Error) => void
  timer: Timer
}

/** Counters for metrics and tests. */
export interface YamuxStats {
  streams: number
  /** Bytes sitting in stream receive buffers (paused or not yet started streams). */
  receiveBufferedBytes: number
  /** Window growth currently granted out of `sessionReceiveBudget`. */
  receiveBudgetUsed: number
  bytesIn: number
  bytesOut: number
}

const MAX_STREAM_ID = 0xffffffff

/**
 * A yamux session over any Conn, wire-compatible with hashicorp/yamux (spec.md) as used by frp.
 *
 * Sending: frames produced in one tick are collected and handed to the transport in one write.
 * When the transport pushes back, streams keep their data in their own queues (bounded by their
 * write high-water mark), and only streams that have data and window are pumped again on drain.
 * Receiving: see YamuxStream. The session never pauses the transport (a stalled stream must not
 * stall the others), so memory is bounded by windows and the session receive budget instead.
 */
export class YamuxSession implements StreamHost, FrameHandler {
  private readonly _opts: ResolvedYamuxOptions
  private readonly _log: Logger
  private readonly _onStream: ((s: YamuxStream) => void) | undefined
  private readonly _streams = new Map<number, YamuxStream>()
  private readonly _decoder: FrameDecoder
  private _nextId: number
  private _out: Uint8Array[] = []
  private _outBytes = 0
  private _flushScheduled = false
  private _transportBlocked = false
  private _ready: YamuxStream[] = []
  private _readyHead = 0
  private _drainList: YamuxStream[] = []
  private _pumping = false
  private _localGoAway = false
  private _remoteGoAway = false
  private _isClosed = false
  private _unstarted = 0
  private _budgetUsed = 0
  private _bufferedBytes = 0
  private _bytesIn = 0
  private _bytesOut = 0
  private _pings = new Map<number, PendingPing>()
  private _nextPingId = 1
  private _keepAliveTimer: Timer | undefined = undefined
  private _lastRtt = -1
  /** Stream receiving the current Data frame's payload (undefined: discard it). */
  private _payloadTarget: YamuxStream | undefined = undefined
  private _payloadFlags = 0
  private _resolveClosed!: (err: Error | undefined) => void
  /** Resolves when the session has ended: undefined for an orderly end, else the cause. */
  readonly closed: Promise<Error | undefined>
  readonly writeHighWaterMark: number

  private readonly _transport: BatchingConn

  constructor(transport: BatchingConn, options: YamuxOptions) {
    this._transport = transport
    this._opts = resolveYamuxOptions(options)
    this._log = options.logger ?? noopLogger
    this._onStream = options.onStream
    this.writeHighWaterMark = this._opts.writeHighWaterMark
    this._nextId = options.client ? 1 : 2
    this._decoder = new FrameDecoder(this, this._opts.maxStreamWindow)
    this.closed = new Promise((resolve) => (this._resolveClosed = resolve))
    const sink: ConnSink = {
      onData: (chunk) => this._onTransportData(chunk),
      onDrain: () => {
        this._transportBlocked = false
        this._pump()
      },
      onEnd: () => {
        this._terminate(undefined, new WsfrpError('ERR_MUX_SESSION_CLOSED', 'transport ended'))
        this._transport.end()
      },
      onClose: (err) =>
        this._terminate(
          err,
          new WsfrpError('ERR_MUX_SESSION_CLOSED', err ? `transport closed: ${err.message}` : 'transport closed', {
            cause: err,
          }),
        ),
    }
    transport.start(sink)
    this._scheduleKeepAlive()
  }

  /** Streams currently open. */
  get numStreams(): number {
    return this._streams.size
  }

  /** Last measured round-trip time in ms, or -1 before the first ping. */
  get rtt(): number {
    return this._lastRtt
  }

  /** True after close() or a fatal error. */
  get isClosedSession(): boolean {
    return this._isClosed
  }

  stats(): YamuxStats {
    return {
      streams: this._streams.size,
      receiveBufferedBytes: this._bufferedBytes,
      receiveBudgetUsed: this._budgetUsed,
      bytesIn: this._bytesIn,
      bytesOut: this._bytesOut,
    }
  }

  /** Opens a stream (sends SYN at once). Throws when the session is closed, after a GoAway, or at the limit. */
  open(): YamuxStream {
    if (this._isClosed) throw new WsfrpError('ERR_MUX_SESSION_CLOSED', 'session is closed')
    if (this._remoteGoAway) throw new WsfrpError('ERR_MUX_GO_AWAY', 'peer sent GoAway: no new streams')
    if (this._localGoAway) throw new WsfrpError('ERR_MUX_GO_AWAY', 'session is going away: no new streams')
    if (this._streams.size >= this._opts.maxStreams) {
      throw new WsfrpError('ERR_MUX_STREAM_LIMIT', `stream limit reached (maxStreams = ${this._opts.maxStreams})`)
    }
    if (this._nextId > MAX_STREAM_ID) throw new WsfrpError('ERR_MUX_STREAMS_EXHAUSTED', 'stream ids exhausted')
    const id = this._nextId
    this._nextId += 2
    const s = new YamuxStream(id, this, this._opts.maxStreamWindow, false)
    this._streams.set(id, s)
    // Like Go, open with a WindowUpdate carrying SYN; its delta is our extra window (none yet).
    this._enqueue(encodeHeader(FrameType.WindowUpdate, Flag.SYN, id, 0))
    return s
  }

  /** Measures the round trip; rejects with ERR_MUX_PING_TIMEOUT after `pingTimeout`. */
  ping(): Promise<number> {
    if (this._isClosed) return Promise.reject(new WsfrpError('ERR_MUX_SESSION_CLOSED', 'session is closed'))
    const id = this._nextPingId
    this._nextPingId = this._nextPingId >= 0xffffffff ? 1 : this._nextPingId + 1
    return new Promise<number>((resolve, reject) => {
      const timer = setTimer(() => {
        this._pings.delete(id)
        reject(new WsfrpError('ERR_MUX_PING_TIMEOUT', `no ping answer within ${this._opts.pingTimeout} ms`))
      }, this._opts.pingTimeout)
      this._pings.set(id, { start: performance.now(), resolve, reject, timer })
      this._enqueue(encodeHeader(FrameType.Ping, Flag.SYN, 0, id))
    })
  }

  /** Tells the peer we accept no new streams; existing streams go on (spec.md "GoAway"). */
  goAway(code: GoAwayCode = GoAwayCode.Normal): void {
    if (this._isClosed || this._localGoAway) return
    this._localGoAway = true
    this._enqueue(encodeHeader(FrameType.GoAway, 0, 0, code))
  }

  /** Sends GoAway, ends the transport after queued frames, and closes every stream. */
  close(err?: Error): void {
    if (this._isClosed) return
    this.goAway(GoAwayCode.Normal)
    this._flush()
    this._transport.end()
    this._terminate(err, err ?? new WsfrpError('ERR_MUX_SESSION_CLOSED', 'session closed'))
  }

  // ---- receive path ---------------------------------------------------------------------------

  private _onTransportData(chunk: Uint8Array): void {
    if (this._isClosed) return
    this._bytesIn += chunk.length
    try {
      this._decoder.push(chunk)
    } catch (err) {
      if (err instanceof WsfrpError && err.code === 'ERR_MUX_PROTOCOL') this._protocolError(err)
      else this._protocolError(new WsfrpError('ERR_MUX_PROTOCOL', `internal error while decoding: ${String(err)}`, { cause: err }), GoAwayCode.InternalError)
    }
  }

  /** @internal FrameHandler */
  onFrame(type: number, flags: number, streamId: number, length: number): void {
    if (this._isClosed) return
    switch (type) {
      case FrameType.Data:
      case FrameType.WindowUpdate:
        this._onStreamFrame(type, flags, streamId, length)
        return
      case FrameType.Ping:
        if (flags & Flag.SYN) this._enqueue(encodeHeader(FrameType.Ping, Flag.ACK, 0, length))
        else if (flags & Flag.ACK) {
          const p = this._pings.get(length)
          if (!p) return
          this._pings.delete(length)
          clearTimer(p.timer)
          this._lastRtt = performance.now() - p.start
          p.resolve(this._lastRtt)
        }
        return
      case FrameType.GoAway:
        this._remoteGoAway = true
        if (length !== GoAwayCode.Normal) this._log.warn('peer sent GoAway with an error', { code: length })
        else this._log.debug('peer sent GoAway')
        return
    }
  }

  private _onStreamFrame(type: number, flags: number, id: number, length: number): void {
    let s = this._streams.get(id)
    if (flags & Flag.SYN) {
      if (s) throw new WsfrpError('ERR_MUX_PROTOCOL', `duplicate SYN for stream ${id}`)
      if (id === 0 || (id & 1) === (this._opts.client ? 1 : 0)) {
        throw new WsfrpError('ERR_MUX_PROTOCOL', `peer opened stream ${id} with our id parity`)
      }
      s = this._accept(id)
    }
    if (type === FrameType.Data) {
      this._payloadFlags = flags
      this._payloadTarget = undefined
      if (!s) return // a late frame for a stream we already dropped: discard its payload
      if (length > s._recvWindow) {
        throw new WsfrpError('ERR_MUX_PROTOCOL', `stream ${id}: ${length} bytes exceed the receive window of ${s._recvWindow}`)
      }
      s._recvWindow -= length
      this._payloadTarget = s
      return
    }
    if (!s) return
    if (length > 0) {
      const wasBlocked = s._sendWindow <= 0
      s._sendWindow += length
      if (s._sendWindow > 0xffffffff) throw new WsfrpError('ERR_MUX_PROTOCOL', `stream ${id}: send window overflow`)
      if (wasBlocked && s._sendQueued > 0) this._wantsToSend(s)
    }
    this._applyCloseFlags(s, flags)
  }

  /** @internal FrameHandler */
  onPayload(chunk: Uint8Array): void {
    this._payloadTarget?._receive(chunk)
  }

  /** @internal FrameHandler: FIN/RST on a Data frame apply after its payload. */
  onPayloadEnd(): void {
    const s = this._payloadTarget
    this._payloadTarget = undefined
    if (s) this._applyCloseFlags(s, this._payloadFlags)
  }

  private _applyCloseFlags(s: YamuxStream, flags: number): void {
    if (flags & Flag.RST) s.close(new WsfrpError('ERR_MUX_STREAM_RESET', `stream ${s.id} was reset by the peer`))
    else if (flags & Flag.FIN) s._remoteEnd()
  }

  private _accept(id: number): YamuxStream | undefined {
    if (this._localGoAway || this._streams.size >= this._opts.maxStreams || this._unstarted >= this._opts.acceptBacklog) {
      this._log.warn('refusing a new stream', {
        stream: id,
        reason: this._localGoAway ? 'going away' : this._unstarted >= this._opts.acceptBacklog ? 'accept backlog full' : 'stream limit',
      })
      this._enqueue(encodeHeader(FrameType.WindowUpdate, Flag.RST, id, 0))
      return undefined
    }
    const s = new YamuxStream(id, this, this._opts.maxStreamWindow, true)
    this._streams.set(id, s)
    this._unstarted++
    // ACK at once: newer Go yamux closes the whole session when a stream stays unACKed for 75 s
    // (frp-wire-protocol.md §4.2), so acceptance never waits for the application.
    this._enqueue(encodeHeader(FrameType.WindowUpdate, Flag.ACK, id, 0))
    if (this._onStream) {
      try {
        this._onStream(s)
      } catch (err) {
        this._log.error('onStream handler threw', { stream: id, error: String(err) })
        s.destroy(err instanceof Error ? err : new Error(String(err)))
      }
    } else {
      s.destroy()
    }
    return s
  }

  // ---- StreamHost -------------------------------------------------------------------------------

  /** @internal */
  _started(_s: YamuxStream): void {
    this._unstarted--
  }

  /** @internal */
  _wantsToSend(s: YamuxStream): void {
    if (this._isClosed || s._hasFlag(S_READY | S_CLOSED)) return
    if (s._sendQueued === 0 && !(s._hasFlag(S_FIN_QUEUED) && !s._hasFlag(S_FIN_SENT))) return
    if (s._sendQueued > 0 && s._sendWindow <= 0 && !s._hasFlag(S_FIN_QUEUED)) return
    s._setFlag(S_READY)
    this._ready.push(s)
    if (!this._pumping) this._pump()
  }

  /** @internal */
  _sendWindowUpdate(s: YamuxStream, flags: number, delta: number): void {
    this._enqueue(encodeHeader(FrameType.WindowUpdate, flags, s.id, delta))
  }

  /** @internal */
  _sendReset(s: YamuxStream): void {
    if (!this._isClosed) this._enqueue(encodeHeader(FrameType.WindowUpdate, Flag.RST, s.id, 0))
  }

  /** @internal */
  _growWindow(extra: number): number {
    const granted = Math.max(0, Math.min(extra, this._opts.sessionReceiveBudget - this._budgetUsed))
    this._budgetUsed += granted
    return granted
  }

  /** @internal */
  _forget(s: YamuxStream, grownBy: number): void {
    if (this._streams.get(s.id) === s) this._streams.delete(s.id)
    this._budgetUsed -= grownBy
    if (s._hasFlag(S_INBOUND) && !s._hasFlag(S_STARTED)) this._unstarted--
  }

  /** @internal */
  _buffered(delta: number): void {
    this._bufferedBytes += delta
  }

  // ---- send path --------------------------------------------------------------------------------

  /**
   * Moves queued stream data into frames, round-robin over ready streams, one frame each per turn,
   * until the tick's batch is full or the transport pushes back.
   */
  private _pump(): void {
    if (this._pumping || this._isClosed) return
    this._pumping = true
    try {
      const maxFrame = this._opts.maxSendFrame
      while (this._readyHead < this._ready.length && !this._transportBlocked && this._outBytes < this._opts.sessionWriteHighWaterMark) {
        const s = this._ready[this._readyHead++]!
        s._clearFlag(S_READY)
        if (s._hasFlag(S_CLOSED)) continue
        if (s._sendQueued > 0 && s._sendWindow > 0) {
          const payload = s._takeSendBytes(Math.min(maxFrame, s._sendWindow))
          this._enqueue(encodeHeader(FrameType.Data, 0, s.id, payload.length), payload)
          if (s._maybeDrain()) this._drainList.push(s)
        }
        if (s._sendQueued === 0 && s._hasFlag(S_FIN_QUEUED) && !s._hasFlag(S_FIN_SENT)) {
          this._enqueue(encodeHeader(FrameType.WindowUpdate, Flag.FIN, s.id, 0))
          s._finSent()
        } else if (s._sendQueued > 0 && s._sendWindow > 0) {
          s._setFlag(S_READY)
          this._ready.push(s)
        }
      }
      if (this._readyHead === this._ready.length) {
        this._ready.length = 0
        this._readyHead = 0
      } else if (this._readyHead > 1024) {
        this._ready = this._ready.slice(this._readyHead)
        this._readyHead = 0
      }
    } finally {
      this._pumping = false
    }
    // Drain callbacks run after the pump loop so that writes they make cannot re-enter it.
    if (this._drainList.length > 0) {
      const list = this._drainList
      this._drainList = []
      for (const s of list) if (!s.closed) s._sink?.onDrain()
    }
  }

  private _enqueue(header: Uint8Array, payload?: Uint8Array): void {
    if (this._isClosed) return
    this._out.push(header)
    this._outBytes += header.length
    if (payload) {
      this._out.push(payload)
      this._outBytes += payload.length
    }
    if (!this._flushScheduled) {
      this._flushScheduled = true
      queueMicrotask(this._flushTask)
    }
  }

  private readonly _flushTask = (): void => {
    this._flushScheduled = false
    this._flush()
    if (!this._transportBlocked && this._readyHead < this._ready.length) this._pump()
  }

  private _flush(): void {
    if (this._out.length === 0) return
    const chunks = this._out
    const total = this._outBytes
    this._out = []
    this._outBytes = 0
    this._bytesOut += total
    let ok: boolean
    try {
      ok = this._transport.writev ? this._transport.writev(chunks) : this._transport.write(concatBytes(chunks, total))
    } catch (err) {
      this._terminate(err instanceof Error ? err : new Error(String(err)), new WsfrpError('ERR_MUX_SESSION_CLOSED', 'transport write failed', { cause: err }))
      return
    }
    if (!ok) this._transportBlocked = true
  }

  // ---- keep-alive and teardown ------------------------------------------------------------------

  private _scheduleKeepAlive(): void {
    if (this._opts.keepAliveInterval === 0 || this._isClosed) return
    this._keepAliveTimer = setTimer(() => {
      this.ping().then(
        () => this._scheduleKeepAlive(),
        (err: Error) => {
          if (this._isClosed) return
          this._log.warn('keep-alive ping failed: closing the session', { error: err.message })
          this._transport.destroy(err)
          this._terminate(err, err)
        },
      )
    }, this._opts.keepAliveInterval, { unref: true })
  }

  private _protocolError(err: WsfrpError, code: GoAwayCode = GoAwayCode.ProtocolError): void {
    if (this._isClosed) return
    this._log.warn('yamux protocol error: closing the session', { error: err.message })
    this._out.push(encodeHeader(FrameType.GoAway, 0, 0, code))
    this._outBytes += 12
    this._flush()
    this._transport.end()
    this._terminate(err, err)
  }

  /**
   * Ends the session once: fails pending pings, closes every stream with `streamErr` and resolves
   * `closed` with `cause`.
   */
  private _terminate(cause: Error | undefined, streamErr: Error): void {
    if (this._isClosed) return
    this._isClosed = true
    clearTimer(this._keepAliveTimer)
    for (const p of this._pings.values()) {
      clearTimer(p.timer)
      p.reject(streamErr)
    }
    this._pings.clear()
    for (const s of [...this._streams.values()]) s.close(streamErr)
    this._streams.clear()
    this._out = []
    this._ready = []
    this._readyHead = 0
    this._resolveClosed(cause)
  }
}
