import type { Conn, ConnSink } from '../conn.js'
import { clearTimer, setTimer, type Timer } from '../timers.js'
import { WsfrpError } from '../errors.js'
import { noopLogger, type Logger } from '../log.js'
import { concatBytes } from '../bytes/concat.js'
import { resolveYamuxOptions, type ResolvedYamuxOptions, type YamuxOptions } from './config.js'
import { FrameDecoder, type FrameHandler } from './decoder.js'
import { Flag, FrameType, GoAwayCode, INITIAL_STREAM_WINDOW, encodeHeader } from './frame.js'
import { S_CLOSED, S_FIN_QUEUED, S_FIN_SENT, S_INBOUND, S_READY, S_STARTED } from './stream-state.js'
import { YamuxStream, type StreamHost } from './stream.js'

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
export interface YamuxSession {
  /** Resolves when the session has ended: undefined for an orderly end, else the cause. */
  readonly closed: Promise<Error | undefined>
  readonly writeHighWaterMark: number
  /** Streams currently open. */
  readonly numStreams: number
  /** Last measured round-trip time in ms, or -1 before the first ping. */
  readonly rtt: number
  /** True after close() or a fatal error. */
  readonly isClosedSession: boolean
  stats(): YamuxStats
  /** Opens a stream (sends SYN at once). Throws when the session is closed, after a GoAway, or at the limit. */
  open(): YamuxStream
  /** Measures the round trip; rejects with ERR_MUX_PING_TIMEOUT after `pingTimeout`. */
  ping(): Promise<number>
  /** Tells the peer we accept no new streams; existing streams go on (spec.md "GoAway"). */
  goAway(code?: GoAwayCode): void
  /** Sends GoAway, ends the transport after queued frames, and closes every stream. */
  close(err?: Error): void
}

// A function that returns its object, so `new YamuxSession(...)` keeps working for callers. The
// state lives in closure variables rather than `this._member` fields because this ships in the
// browser's service-worker bundle, whose size is budgeted: a local minifies to one or two letters
// and needs no `this.` at each of its ~200 uses. Same algorithm, same order of operations.
export const YamuxSession = function (transport: BatchingConn, options: YamuxOptions): YamuxSession {
  const opts: ResolvedYamuxOptions = resolveYamuxOptions(options)
  const log: Logger = options.logger ?? noopLogger
  const onStream = options.onStream
  const streams = new Map<number, YamuxStream>()
  let nextId = options.client ? 1 : 2
  let out: Uint8Array[] = []
  let outBytes = 0
  let flushScheduled = false
  let transportBlocked = false
  let ready: YamuxStream[] = []
  let readyHead = 0
  let drainList: YamuxStream[] = []
  let pumping = false
  let localGoAway = false
  let remoteGoAway = false
  let isClosed = false
  let unstarted = 0
  let budgetUsed = 0
  let bufferedBytes = 0
  let bytesIn = 0
  let bytesOut = 0
  const pings = new Map<number, PendingPing>()
  let nextPingId = 1
  let keepAliveTimer: Timer | undefined
  let lastRtt = -1
  /** Stream receiving the current Data frame's payload (undefined: discard it). */
  let payloadTarget: YamuxStream | undefined
  let payloadFlags = 0
  let resolveClosed!: (err: Error | undefined) => void

  // ---- receive path ---------------------------------------------------------------------------

  const onTransportData = (chunk: Uint8Array): void => {
    if (isClosed) return
    bytesIn += chunk.length
    try {
      decoder.push(chunk)
    } catch (err) {
      if (err instanceof WsfrpError && err.code === 'ERR_MUX_PROTOCOL') protocolError(err)
      else protocolError(new WsfrpError('ERR_MUX_PROTOCOL', `decoder failed: ${String(err)}`, { cause: err }), GoAwayCode.InternalError)
    }
  }

  const onStreamFrame = (type: number, flags: number, id: number, length: number): void => {
    let s = streams.get(id)
    if (flags & Flag.SYN) {
      if (s) throw new WsfrpError('ERR_MUX_PROTOCOL', `duplicate SYN for stream ${id}`)
      if (id === 0 || (id & 1) === (opts.client ? 1 : 0)) {
        throw new WsfrpError('ERR_MUX_PROTOCOL', `peer opened stream ${id} with our id parity`)
      }
      s = accept(id)
    }
    if (type === FrameType.Data) {
      payloadFlags = flags
      payloadTarget = undefined
      if (!s) return // a late frame for a stream we already dropped: discard its payload
      if (length > s._recvWindow) {
        throw new WsfrpError('ERR_MUX_PROTOCOL', `stream ${id}: ${length} bytes exceed the receive window of ${s._recvWindow}`)
      }
      s._recvWindow -= length
      payloadTarget = s
      return
    }
    if (!s) return
    if (length > 0) {
      const wasBlocked = s._sendWindow <= 0
      s._sendWindow += length
      if (s._sendWindow > 0xffffffff) throw new WsfrpError('ERR_MUX_PROTOCOL', `stream ${id}: send window overflow`)
      if (wasBlocked && s._sendQueued > 0) self._wantsToSend(s)
    }
    applyCloseFlags(s, flags)
  }

  const applyCloseFlags = (s: YamuxStream, flags: number): void => {
    if (flags & Flag.RST) s.close(new WsfrpError('ERR_MUX_STREAM_RESET', `stream ${s.id} was reset by the peer`))
    else if (flags & Flag.FIN) s._remoteEnd()
  }

  const accept = (id: number): YamuxStream | undefined => {
    if (localGoAway || streams.size >= opts.maxStreams || unstarted >= opts.acceptBacklog) {
      log.warn('refusing a new stream', {
        stream: id,
        reason: localGoAway ? 'going away' : unstarted >= opts.acceptBacklog ? 'accept backlog full' : 'stream limit',
      })
      enqueue(encodeHeader(FrameType.WindowUpdate, Flag.RST, id, 0))
      return undefined
    }
    const s = new YamuxStream(id, self, opts.maxStreamWindow, true)
    streams.set(id, s)
    unstarted++
    // ACK at once: newer Go yamux closes the whole session when a stream stays unACKed for 75 s
    // (frp-wire-protocol.md §4.2), so acceptance never waits for the application.
    enqueue(encodeHeader(FrameType.WindowUpdate, Flag.ACK, id, 0))
    if (onStream) {
      try {
        onStream(s)
      } catch (err) {
        log.error('onStream handler threw', { stream: id, error: String(err) })
        s.destroy(err instanceof Error ? err : new Error(String(err)))
      }
    } else {
      s.destroy()
    }
    return s
  }

  // ---- send path --------------------------------------------------------------------------------

  /**
   * Moves queued stream data into frames, round-robin over ready streams, one frame each per turn,
   * until the tick's batch is full or the transport pushes back.
   */
  const pump = (): void => {
    if (pumping || isClosed) return
    pumping = true
    try {
      const maxFrame = opts.maxSendFrame
      while (readyHead < ready.length && !transportBlocked && outBytes < opts.sessionWriteHighWaterMark) {
        const s = ready[readyHead++]!
        s._clearFlag(S_READY)
        if (s._hasFlag(S_CLOSED)) continue
        if (s._sendQueued > 0 && s._sendWindow > 0) {
          const payload = s._takeSendBytes(Math.min(maxFrame, s._sendWindow))
          enqueue(encodeHeader(FrameType.Data, 0, s.id, payload.length), payload)
          if (s._maybeDrain()) drainList.push(s)
        }
        if (s._sendQueued === 0 && s._hasFlag(S_FIN_QUEUED) && !s._hasFlag(S_FIN_SENT)) {
          enqueue(encodeHeader(FrameType.WindowUpdate, Flag.FIN, s.id, 0))
          s._finSent()
        } else if (s._sendQueued > 0 && s._sendWindow > 0) {
          s._setFlag(S_READY)
          ready.push(s)
        }
      }
      if (readyHead === ready.length) {
        ready.length = 0
        readyHead = 0
      } else if (readyHead > 1024) {
        ready = ready.slice(readyHead)
        readyHead = 0
      }
    } finally {
      pumping = false
    }
    // Drain callbacks run after the pump loop so that writes they make cannot re-enter it.
    if (drainList.length > 0) {
      const list = drainList
      drainList = []
      for (const s of list) if (!s.closed) s._sink?.onDrain()
    }
  }

  const enqueue = (header: Uint8Array, payload?: Uint8Array): void => {
    if (isClosed) return
    out.push(header)
    outBytes += header.length
    if (payload) {
      out.push(payload)
      outBytes += payload.length
    }
    if (!flushScheduled) {
      flushScheduled = true
      queueMicrotask(flushTask)
    }
  }

  const flushTask = (): void => {
    flushScheduled = false
    flush()
    if (!transportBlocked && readyHead < ready.length) pump()
  }

  const flush = (): void => {
    if (out.length === 0) return
    const chunks = out
    const total = outBytes
    out = []
    outBytes = 0
    bytesOut += total
    let ok: boolean
    try {
      ok = transport.writev ? transport.writev(chunks) : transport.write(concatBytes(chunks, total))
    } catch (err) {
      terminate(err instanceof Error ? err : new Error(String(err)), new WsfrpError('ERR_MUX_SESSION_CLOSED', 'transport write failed', { cause: err }))
      return
    }
    if (!ok) transportBlocked = true
  }

  // ---- keep-alive and teardown ------------------------------------------------------------------

  const scheduleKeepAlive = (): void => {
    if (opts.keepAliveInterval === 0 || isClosed) return
    keepAliveTimer = setTimer(() => {
      self.ping().then(scheduleKeepAlive, (err: Error) => {
        if (isClosed) return
        log.warn('keep-alive ping failed: closing the session', { error: err.message })
        transport.destroy(err)
        terminate(err, err)
      })
    }, opts.keepAliveInterval, { unref: true })
  }

  const protocolError = (err: WsfrpError, code: GoAwayCode = GoAwayCode.ProtocolError): void => {
    if (isClosed) return
    log.warn('yamux protocol error: closing the session', { error: err.message })
    out.push(encodeHeader(FrameType.GoAway, 0, 0, code))
    outBytes += 12
    flush()
    transport.end()
    terminate(err, err)
  }

  /**
   * Ends the session once: fails pending pings, closes every stream with `streamErr` and resolves
   * `closed` with `cause`.
   */
  const terminate = (cause: Error | undefined, streamErr: Error): void => {
    if (isClosed) return
    isClosed = true
    clearTimer(keepAliveTimer)
    for (const p of pings.values()) {
      clearTimer(p.timer)
      p.reject(streamErr)
    }
    pings.clear()
    for (const s of [...streams.values()]) s.close(streamErr)
    streams.clear()
    out = []
    ready = []
    readyHead = 0
    resolveClosed(cause)
  }

  const self: YamuxSession & StreamHost & FrameHandler = {
    closed: new Promise((resolve) => (resolveClosed = resolve)),
    writeHighWaterMark: opts.writeHighWaterMark,
    get numStreams() {
      return streams.size
    },
    get rtt() {
      return lastRtt
    },
    get isClosedSession() {
      return isClosed
    },
    stats: () => ({ streams: streams.size, receiveBufferedBytes: bufferedBytes, receiveBudgetUsed: budgetUsed, bytesIn, bytesOut }),

    open() {
      if (isClosed) throw new WsfrpError('ERR_MUX_SESSION_CLOSED', 'session is closed')
      if (remoteGoAway) throw new WsfrpError('ERR_MUX_GO_AWAY', 'peer sent GoAway: no new streams')
      if (localGoAway) throw new WsfrpError('ERR_MUX_GO_AWAY', 'session is going away: no new streams')
      if (streams.size >= opts.maxStreams) {
        throw new WsfrpError('ERR_MUX_STREAM_LIMIT', `stream limit reached (maxStreams = ${opts.maxStreams})`)
      }
      if (nextId > MAX_STREAM_ID) throw new WsfrpError('ERR_MUX_STREAMS_EXHAUSTED', 'stream ids exhausted')
      const id = nextId
      nextId += 2
      const s = new YamuxStream(id, self, opts.maxStreamWindow, false)
      streams.set(id, s)
      // Like Go, open with a WindowUpdate carrying SYN; its delta is our extra window (none yet).
      enqueue(encodeHeader(FrameType.WindowUpdate, Flag.SYN, id, 0))
      return s
    },

    ping() {
      if (isClosed) return Promise.reject(new WsfrpError('ERR_MUX_SESSION_CLOSED', 'session is closed'))
      const id = nextPingId
      nextPingId = nextPingId >= 0xffffffff ? 1 : nextPingId + 1
      return new Promise<number>((resolve, reject) => {
        const timer = setTimer(() => {
          pings.delete(id)
          reject(new WsfrpError('ERR_MUX_PING_TIMEOUT', `no ping answer within ${opts.pingTimeout} ms`))
        }, opts.pingTimeout)
        pings.set(id, { start: performance.now(), resolve, reject, timer })
        enqueue(encodeHeader(FrameType.Ping, Flag.SYN, 0, id))
      })
    },

    goAway(code = GoAwayCode.Normal) {
      if (isClosed || localGoAway) return
      localGoAway = true
      enqueue(encodeHeader(FrameType.GoAway, 0, 0, code))
    },

    close(err) {
      if (isClosed) return
      self.goAway(GoAwayCode.Normal)
      flush()
      transport.end()
      terminate(err, err ?? new WsfrpError('ERR_MUX_SESSION_CLOSED', 'session closed'))
    },

    // ---- FrameHandler (the decoder's callbacks) ---------------------------------------------------

    onFrame(type, flags, streamId, length) {
      if (isClosed) return
      switch (type) {
        case FrameType.Data:
        case FrameType.WindowUpdate:
          onStreamFrame(type, flags, streamId, length)
          return
        case FrameType.Ping:
          if (flags & Flag.SYN) enqueue(encodeHeader(FrameType.Ping, Flag.ACK, 0, length))
          else if (flags & Flag.ACK) {
            const p = pings.get(length)
            if (!p) return
            pings.delete(length)
            clearTimer(p.timer)
            lastRtt = performance.now() - p.start
            p.resolve(lastRtt)
          }
          return
        case FrameType.GoAway:
          remoteGoAway = true
          if (length !== GoAwayCode.Normal) log.warn('peer sent GoAway with an error', { code: length })
          else log.debug('peer sent GoAway')
          return
      }
    },
    onPayload(chunk) {
      payloadTarget?._receive(chunk)
    },
    /** FIN/RST on a Data frame apply after its payload. */
    onPayloadEnd() {
      const s = payloadTarget
      payloadTarget = undefined
      if (s) applyCloseFlags(s, payloadFlags)
    },

    // ---- StreamHost -------------------------------------------------------------------------------

    _started() {
      unstarted--
    },
    _wantsToSend(s) {
      if (isClosed || s._hasFlag(S_READY | S_CLOSED)) return
      if (s._sendQueued === 0 && !(s._hasFlag(S_FIN_QUEUED) && !s._hasFlag(S_FIN_SENT))) return
      if (s._sendQueued > 0 && s._sendWindow <= 0 && !s._hasFlag(S_FIN_QUEUED)) return
      s._setFlag(S_READY)
      ready.push(s)
      if (!pumping) pump()
    },
    _sendWindowUpdate(s, flags, delta) {
      enqueue(encodeHeader(FrameType.WindowUpdate, flags, s.id, delta))
    },
    _sendReset(s) {
      if (!isClosed) enqueue(encodeHeader(FrameType.WindowUpdate, Flag.RST, s.id, 0))
    },
    _growWindow(extra) {
      const granted = Math.max(0, Math.min(extra, opts.sessionReceiveBudget - budgetUsed))
      budgetUsed += granted
      return granted
    },
    _forget(s, grownBy) {
      if (streams.get(s.id) === s) streams.delete(s.id)
      budgetUsed -= grownBy
      if (s._hasFlag(S_INBOUND) && !s._hasFlag(S_STARTED)) unstarted--
    },
    _buffered(delta) {
      bufferedBytes += delta
    },
  }

  const decoder = new FrameDecoder(self, opts.maxStreamWindow)
  transport.start({
    onData: onTransportData,
    onDrain: () => {
      transportBlocked = false
      pump()
    },
    onEnd: () => {
      terminate(undefined, new WsfrpError('ERR_MUX_SESSION_CLOSED', 'transport ended'))
      transport.end()
    },
    onClose: (err) =>
      terminate(err, new WsfrpError('ERR_MUX_SESSION_CLOSED', err ? `transport closed: ${err.message}` : 'transport closed', { cause: err })),
  })
  scheduleKeepAlive()
  return self
} as unknown as new (transport: BatchingConn, options: YamuxOptions) => YamuxSession
