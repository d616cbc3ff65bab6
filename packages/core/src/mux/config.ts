import { WsfrpError } from '../errors.js'
import type { Logger } from '../log.js'
import { INITIAL_STREAM_WINDOW } from './frame.js'
import type { YamuxStream } from './stream.js'

/** Options of a yamux session. Every limit has a default; see docs/LIMITS.md. */
export interface YamuxOptions {
  /** True on the side that dials (frpc): it opens odd stream ids, the other side even ones. */
  client: boolean
  /** Called for each stream the peer opens, after it was ACKed (at once, as newer Go yamux requires). */
  onStream?: (stream: YamuxStream) => void
  /**
   * Largest receive window a stream may grow to, in bytes. Default 6 MiB (frp ≥ 0.50 sets
   * MaxStreamWindowSize to 6 MiB). Windows start at 256 KiB and grow only while the stream is read
   * faster than the peer can fill it.
   */
  maxStreamWindow?: number
  /**
   * Session-wide budget, in bytes, for receive-window growth beyond the initial 256 KiB of each
   * stream. Bounds memory when the transport cannot pause (browser WebSocket). Default 64 MiB.
   * Worst-case buffered receive bytes = maxStreams × 256 KiB + sessionReceiveBudget.
   */
  sessionReceiveBudget?: number
  /** Most streams open at once, both directions. New ones beyond it are refused (RST / error). Default 8192. */
  maxStreams?: number
  /** Most peer-opened streams not yet started by the application. Beyond it they are reset. Default 256 (Go's AcceptBacklog). */
  acceptBacklog?: number
  /** Keep-alive ping interval in ms; 0 disables. Default 30,000 (frp ≥ 0.58.1). */
  keepAliveInterval?: number
  /** A ping unanswered for this long, in ms, fails the session. Default 10,000 (Go's ConnectionWriteTimeout). */
  pingTimeout?: number
  /** Bytes a stream may queue before `write()` returns false. Default 64 KiB. */
  writeHighWaterMark?: number
  /** Bytes of frames the session collects per transport write before it waits. Default 256 KiB. */
  sessionWriteHighWaterMark?: number
  /** Largest Data frame payload we send, in bytes (fairness between streams). Default 64 KiB. */
  maxSendFrame?: number
  logger?: Logger
}

export type ResolvedYamuxOptions = Required<Omit<YamuxOptions, 'onStream' | 'logger'>>

export const YAMUX_DEFAULTS: Omit<ResolvedYamuxOptions, 'client'> = {
  maxStreamWindow: 6 * 1024 * 1024,
  sessionReceiveBudget: 64 * 1024 * 1024,
  maxStreams: 8192,
  acceptBacklog: 256,
  keepAliveInterval: 30_000,
  pingTimeout: 10_000,
  writeHighWaterMark: 64 * 1024,
  sessionWriteHighWaterMark: 256 * 1024,
  maxSendFrame: 64 * 1024,
}

/** Fills defaults and rejects impossible values with a readable reason. */
export function resolveYamuxOptions(o: YamuxOptions): ResolvedYamuxOptions {
  const r: ResolvedYamuxOptions = { ...YAMUX_DEFAULTS, client: o.client }
  const problems: string[] = []
  const take = (k: keyof typeof YAMUX_DEFAULTS, min: number, max = 0x7fffffff): void => {
    const v = o[k]
    if (v === undefined) return
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      problems.push(`${k} must be an integer from ${min} to ${max}, got ${String(v)}`)
      return
    }
    r[k] = v
  }
  take('maxStreamWindow', INITIAL_STREAM_WINDOW)
  take('sessionReceiveBudget', 0, Number.MAX_SAFE_INTEGER)
  take('maxStreams', 1)
  take('acceptBacklog', 1)
  take('keepAliveInterval', 0)
  take('pingTimeout', 1)
  take('writeHighWaterMark', 1)
  take('sessionWriteHighWaterMark', 1)
  take('maxSendFrame', 1, 16 * 1024 * 1024)
  if (problems.length > 0) throw new WsfrpError('ERR_CONFIG', `invalid yamux options: ${problems.join('; ')}`)
  return r
}
