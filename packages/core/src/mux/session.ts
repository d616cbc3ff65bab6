import type { Conn, ConnSink } from '../conn.js'
import { clearTimer, setTimer, type Timer } from '../timers.js'
import { WsfrpError } from '../errors.js'
import { noopLogger, type Logger } from '../log.js'
import { concatBytes } from '../bytes/concat.js'
import { resolveYamuxOptions, type ResolvedYamuxOptions, type YamuxOptions } from './config.js'
import { FrameDecoder, type FrameHandler } from './decoder.js'
import { Flag, FrameType, GoAwayCode, INITIAL_STREAM_WINDOW, encodeHeader } from './frame.js'
import { StreamFlags as SF, YamuxStream, type StreamHost } from './stream.js'

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
  private readonly opts: ResolvedYamuxOptions
  private readonly log: Logger
  private readonly onStream: ((s: YamuxStream) => void) | undefined
  private readonly streams = new Map<number, YamuxStream>()
  private readonly decoder: FrameDecoder
  private nextId: number
  private out: Uint8Array[] = []
  private outBytes = 0
  private flushScheduled = false
  private transportBlocked = false
  private ready: YamuxStream[] = []
  private readyHead = 0
  private drainList: YamuxStream[] = []
  private pumping = false
  private localGoAway = false
  private remoteGoAway = false
  private isClosed = false
  private unstarted = 0
  private budgetUsed = 0
  private bufferedBytes = 0
  private bytesIn = 0
  private bytesOut = 0
  private pings = new Map<number, PendingPing>()
  private nextPingId = 1
  private keepAliveTimer: Timer | undefined = undefined
  private lastRtt = -1
  /** Stream receiving the current Data frame's payload (undefined: discard it). */
  private payloadTarget: YamuxStream | undefined = undefined
  private payloadFlags = 0
  private resolveClosed!: (err: Error | undefined) => void
  /** Resolves when the session has ended: undefined for an orderly end, else the cause. */
  readonly closed: Promise<Error | undefined>
  readonly writeHighWaterMark: number

  constructor(
    private readonly transport: BatchingConn,
    options: YamuxOptions,
  ) {
    this.opts = resolveYamuxOptions(options)
    this.log = options.logger ?? noopLogger
    this.onStream = options.onStream
    this.writeHighWaterMark = this.opts.writeHighWaterMark
    this.nextId = options.client ? 1 : 2
    this.decoder = new FrameDecoder(this, this.opts.maxStreamWindow)
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve))
    const sink: ConnSink = {
      onData: (chunk) => this.onTransportData(chunk),
      onDrain: () => {
        this.transportBlocked = false
        this.pump()
      },
      onEnd: () => {
        this.terminate(undefined, new WsfrpError('ERR_MUX_SESSION_CLOSED', 'transport ended'))
        this.transport.end()
      },
      onClose: (err) =>
        this.terminate(
          err,
          new WsfrpError('ERR_MUX_SESSION_CLOSED', err ? `transport closed: ${err.message}` : 'transport closed', {
            cause: err,
          }),
        ),
    }
    transport.start(sink)
    this.scheduleKeepAlive()
  }

  /** Streams currently open. */
  get numStreams(): number {
    return this.streams.size
  }

  /** Last measured round-trip time in ms, or -1 before the first ping. */
  get rtt(): number {
    return this.lastRtt
  }

  /** True after close() or a fatal error. */
  get isClosedSession(): boolean {
    return this.isClosed
  }

  stats(): YamuxStats {
    return {
      streams: this.streams.size,
      receiveBufferedBytes: this.bufferedBytes,
      receiveBudgetUsed: this.budgetUsed,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
    }
  }

  /** Opens a stream (sends SYN at once). Throws when the session is closed, after a GoAway, or at the limit. */
  open(): YamuxStream {
    if (this.isClosed) throw new WsfrpError('ERR_MUX_SESSION_CLOSED', 'session is closed')
    if (this.remoteGoAway) throw new WsfrpError('ERR_MUX_GO_AWAY', 'peer sent GoAway: no new streams')
    if (this.localGoAway) throw new WsfrpError('ERR_MUX_GO_AWAY', 'session is going away: no new streams')
    if (this.streams.size >= this.opts.maxStreams) {
      throw new WsfrpError('ERR_MUX_STREAM_LIMIT', `stream limit reached (maxStreams = ${this.opts.maxStreams})`)
    }
    if (this.nextId > MAX_STREAM_ID) throw new WsfrpError('ERR_MUX_STREAMS_EXHAUSTED', 'stream ids exhausted')
    const id = this.nextId
    this.nextId += 2
    const s = new YamuxStream(id, this, this.opts.maxStreamWindow, false)
    this.streams.set(id, s)
    // Like Go, open with a WindowUpdate carrying SYN; its delta is our extra window (none yet).
    this.enqueue(encodeHeader(FrameType.WindowUpdate, Flag.SYN, id, 0))
    return s
  }

  /** Measures the round trip; rejects with ERR_MUX_PING_TIMEOUT after `pingTimeout`. */
  ping(): Promise<number> {
    if (this.isClosed) return Promise.reject(new WsfrpError('ERR_MUX_SESSION_CLOSED', 'session is closed'))
    const id = this.nextPingId
    this.nextPingId = this.nextPingId >= 0xffffffff ? 1 : this.nextPingId + 1
    return new Promise<number>((resolve, reject) => {
      const timer = setTimer(() => {
        this.pings.delete(id)
        reject(new WsfrpError('ERR_MUX_PING_TIMEOUT', `no ping answer within ${this.opts.pingTimeout} ms`))
      }, this.opts.pingTimeout)
      this.pings.set(id, { start: performance.now(), resolve, reject, timer })
      this.enqueue(encodeHeader(FrameType.Ping, Flag.SYN, 0, id))
    })
  }

  /** Tells the peer we accept no new streams; existing streams go on (spec.md "GoAway"). */
  goAway(code: GoAwayCode = GoAwayCode.Normal): void {
    if (this.isClosed || this.localGoAway) return
    this.localGoAway = true
    this.enqueue(encodeHeader(FrameType.GoAway, 0, 0, code))
  }

  /** Sends GoAway, ends the transport after queued frames, and closes every stream. */
  close(err?: Error): void {
    if (this.isClosed) return
    this.goAway(GoAwayCode.Normal)
    this.flush()
    this.transport.end()
    this.terminate(err, err ?? new WsfrpError('ERR_MUX_SESSION_CLOSED', 'session closed'))
  }

  // ---- receive path ---------------------------------------------------------------------------

  private onTransportData(chunk: Uint8Array): void {
    if (this.isClosed) return
    this.bytesIn += chunk.length
    try {
      this.decoder.push(chunk)
    } catch (err) {
      if (err instanceof WsfrpError && err.code === 'ERR_MUX_PROTOCOL') this.protocolError(err)
      else this.protocolError(new WsfrpError('ERR_MUX_PROTOCOL', `internal error while decoding: ${String(err)}`, { cause: err }), GoAwayCode.InternalError)
    }
  }

  /** @internal FrameHandler */
  onFrame(type: number, flags: number, streamId: number, length: number): void {
    if (this.isClosed) return
    switch (type) {
      case FrameType.Data:
      case FrameType.WindowUpdate:
        this.onStreamFrame(type, flags, streamId, length)
        return
      case FrameType.Ping:
        if (flags & Flag.SYN) this.enqueue(encodeHeader(FrameType.Ping, Flag.ACK, 0, length))
        else if (flags & Flag.ACK) {
          const p = this.pings.get(length)
          if (!p) return
          this.pings.delete(length)
          clearTimer(p.timer)
          this.lastRtt = performance.now() - p.start
          p.resolve(this.lastRtt)
        }
        return
      case FrameType.GoAway:
        this.remoteGoAway = true
        if (length !== GoAwayCode.Normal) this.log.warn('peer sent GoAway with an error', { code: length })
        else this.log.debug('peer sent GoAway')
        return
    }
  }

  private onStreamFrame(type: number, flags: number, id: number, length: number): void {
    let s = this.streams.get(id)
    if (flags & Flag.SYN) {
      if (s) throw new WsfrpError('ERR_MUX_PROTOCOL', `duplicate SYN for stream ${id}`)
      if (id === 0 || (id & 1) === (this.opts.client ? 1 : 0)) {
        throw new WsfrpError('ERR_MUX_PROTOCOL', `peer opened stream ${id} with our id parity`)
      }
      s = this.accept(id)
    }
    if (type === FrameType.Data) {
      this.payloadFlags = flags
      this.payloadTarget = undefined
      if (!s) return // a late frame for a stream we already dropped: discard its payload
      if (length > s.recvWindow) {
        throw new WsfrpError('ERR_MUX_PROTOCOL', `stream ${id}: ${length} bytes exceed the receive window of ${s.recvWindow}`)
      }
      s.recvWindow -= length
      this.payloadTarget = s
      return
    }
    if (!s) return
    if (length > 0) {
      const wasBlocked = s.sendWindow <= 0
      s.sendWindow += length
      if (s.sendWindow > 0xffffffff) throw new WsfrpError('ERR_MUX_PROTOCOL', `stream ${id}: send window overflow`)
      if (wasBlocked && s.sendQueued > 0) this.wantsToSend(s)
    }
    this.applyCloseFlags(s, flags)
  }

  /** @internal FrameHandler */
  onPayload(chunk: Uint8Array): void {
    this.payloadTarget?.receive(chunk)
  }

  /** @internal FrameHandler: FIN/RST on a Data frame apply after its payload. */
  onPayloadEnd(): void {
    const s = this.payloadTarget
    this.payloadTarget = undefined
    if (s) this.applyCloseFlags(s, this.payloadFlags)
  }

  private applyCloseFlags(s: YamuxStream, flags: number): void {
    if (flags & Flag.RST) s.close(new WsfrpError('ERR_MUX_STREAM_RESET', `stream ${s.id} was reset by the peer`))
    else if (flags & Flag.FIN) s.remoteEnd()
  }

  private accept(id: number): YamuxStream | undefined {
    if (this.localGoAway || this.streams.size >= this.opts.maxStreams || this.unstarted >= this.opts.acceptBacklog) {
      this.log.warn('refusing a new stream', {
        stream: id,
        reason: this.localGoAway ? 'going away' : this.unstarted >= this.opts.acceptBacklog ? 'accept backlog full' : 'stream limit',
      })
      this.enqueue(encodeHeader(FrameType.WindowUpdate, Flag.RST, id, 0))
      return undefined
    }
    const s = new YamuxStream(id, this, this.opts.maxStreamWindow, true)
    this.streams.set(id, s)
    this.unstarted++
    // ACK at once: newer Go yamux closes the whole session when a stream stays unACKed for 75 s
    // (frp-wire-protocol.md §4.2), so acceptance never waits for the application.
    this.enqueue(encodeHeader(FrameType.WindowUpdate, Flag.ACK, id, 0))
    if (this.onStream) {
      try {
        this.onStream(s)
      } catch (err) {
        this.log.error('onStream handler threw', { stream: id, error: String(err) })
        s.destroy(err instanceof Error ? err : new Error(String(err)))
      }
    } else {
      s.destroy()
    }
    return s
  }

  // ---- StreamHost -------------------------------------------------------------------------------

  /** @internal */
  started(_s: YamuxStream): void {
    this.unstarted--
  }

  /** @internal */
  wantsToSend(s: YamuxStream): void {
    if (this.isClosed || s.hasFlag(SF.READY | SF.CLOSED)) return
    if (s.sendQueued === 0 && !(s.hasFlag(SF.FIN_QUEUED) && !s.hasFlag(SF.FIN_SENT))) return
    if (s.sendQueued > 0 && s.sendWindow <= 0 && !s.hasFlag(SF.FIN_QUEUED)) return
    s.setFlag(SF.READY)
    this.ready.push(s)
    if (!this.pumping) this.pump()
  }

  /** @internal */
  sendWindowUpdate(s: YamuxStream, flags: number, delta: number): void {
    this.enqueue(encodeHeader(FrameType.WindowUpdate, flags, s.id, delta))
  }

  /** @internal */
  sendReset(s: YamuxStream): void {
    if (!this.isClosed) this.enqueue(encodeHeader(FrameType.WindowUpdate, Flag.RST, s.id, 0))
  }

  /** @internal */
  growWindow(extra: number): number {
    const granted = Math.max(0, Math.min(extra, this.opts.sessionReceiveBudget - this.budgetUsed))
    this.budgetUsed += granted
    return granted
  }

  /** @internal */
  forget(s: YamuxStream, grownBy: number): void {
    if (this.streams.get(s.id) === s) this.streams.delete(s.id)
    this.budgetUsed -= grownBy
    if (s.hasFlag(SF.INBOUND) && !s.hasFlag(SF.STARTED)) this.unstarted--
  }

  /** @internal */
  buffered(delta: number): void {
    this.bufferedBytes += delta
  }

  // ---- send path --------------------------------------------------------------------------------

  /**
   * Moves queued stream data into frames, round-robin over ready streams, one frame each per turn,
   * until the tick's batch is full or the transport pushes back.
   */
  private pump(): void {
    if (this.pumping || this.isClosed) return
    this.pumping = true
    try {
      const maxFrame = this.opts.maxSendFrame
      while (this.readyHead < this.ready.length && !this.transportBlocked && this.outBytes < this.opts.sessionWriteHighWaterMark) {
        const s = this.ready[this.readyHead++]!
        s.clearFlag(SF.READY)
        if (s.hasFlag(SF.CLOSED)) continue
        if (s.sendQueued > 0 && s.sendWindow > 0) {
          const payload = s.takeSendBytes(Math.min(maxFrame, s.sendWindow))
          this.enqueue(encodeHeader(FrameType.Data, 0, s.id, payload.length), payload)
          if (s.maybeDrain()) this.drainList.push(s)
        }
        if (s.sendQueued === 0 && s.hasFlag(SF.FIN_QUEUED) && !s.hasFlag(SF.FIN_SENT)) {
          this.enqueue(encodeHeader(FrameType.WindowUpdate, Flag.FIN, s.id, 0))
          s.finSent()
        } else if (s.sendQueued > 0 && s.sendWindow > 0) {
          s.setFlag(SF.READY)
          this.ready.push(s)
        }
      }
      if (this.readyHead === this.ready.length) {
        this.ready.length = 0
        this.readyHead = 0
      } else if (this.readyHead > 1024) {
        this.ready = this.ready.slice(this.readyHead)
        this.readyHead = 0
      }
    } finally {
      this.pumping = false
    }
    // Drain callbacks run after the pump loop so that writes they make cannot re-enter it.
    if (this.drainList.length > 0) {
      const list = this.drainList
      this.drainList = []
      for (const s of list) if (!s.closed) s.sink?.onDrain()
    }
  }

  private enqueue(header: Uint8Array, payload?: Uint8Array): void {
    if (this.isClosed) return
    this.out.push(header)
    this.outBytes += header.length
    if (payload) {
      this.out.push(payload)
      this.outBytes += payload.length
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true
      queueMicrotask(this.flushTask)
    }
  }

  private readonly flushTask = (): void => {
    this.flushScheduled = false
    this.flush()
    if (!this.transportBlocked && this.readyHead < this.ready.length) this.pump()
  }

  private flush(): void {
    if (this.out.length === 0) return
    const chunks = this.out
    const total = this.outBytes
    this.out = []
    this.outBytes = 0
    this.bytesOut += total
    let ok: boolean
    try {
      ok = this.transport.writev ? this.transport.writev(chunks) : this.transport.write(concatBytes(chunks, total))
    } catch (err) {
      this.terminate(err instanceof Error ? err : new Error(String(err)), new WsfrpError('ERR_MUX_SESSION_CLOSED', 'transport write failed', { cause: err }))
      return
    }
    if (!ok) this.transportBlocked = true
  }

  // ---- keep-alive and teardown ------------------------------------------------------------------

  private scheduleKeepAlive(): void {
    if (this.opts.keepAliveInterval === 0 || this.isClosed) return
    this.keepAliveTimer = setTimer(() => {
      this.ping().then(
        () => this.scheduleKeepAlive(),
        (err: Error) => {
          if (this.isClosed) return
          this.log.warn('keep-alive ping failed: closing the session', { error: err.message })
          this.transport.destroy(err)
          this.terminate(err, err)
        },
      )
    }, this.opts.keepAliveInterval, { unref: true })
  }

  private protocolError(err: WsfrpError, code: GoAwayCode = GoAwayCode.ProtocolError): void {
    if (this.isClosed) return
    this.log.warn('yamux protocol error: closing the session', { error: err.message })
    this.out.push(encodeHeader(FrameType.GoAway, 0, 0, code))
    this.outBytes += 12
    this.flush()
    this.transport.end()
    this.terminate(err, err)
  }

  /**
   * Ends the session once: fails pending pings, closes every stream with `streamErr` and resolves
   * `closed` with `cause`.
   */
  private terminate(cause: Error | undefined, streamErr: Error): void {
    if (this.isClosed) return
    this.isClosed = true
    clearTimer(this.keepAliveTimer)
    for (const p of this.pings.values()) {
      clearTimer(p.timer)
      p.reject(streamErr)
    }
    this.pings.clear()
    for (const s of [...this.streams.values()]) s.close(streamErr)
    this.streams.clear()
    this.out = []
    this.ready = []
    this.readyHead = 0
    this.resolveClosed(cause)
  }
}
