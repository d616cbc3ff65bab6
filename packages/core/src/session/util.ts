import type { Conn } from '../conn.js'
import { clearTimer, setTimer } from '../timers.js'
import { WsfrpError } from '../errors.js'
import { readMessage, type ReadMessageResult } from '../msg/read-message.js'
import type { MessageCodecOptions } from '../msg/codec.js'

/** readMessage with a deadline: on timeout the conn is destroyed and the promise rejects with ERR_TIMEOUT. */
export function readMessageWithin(conn: Conn, ms: number, what: string, codec?: MessageCodecOptions): Promise<ReadMessageResult> {
  if (ms <= 0) return readMessage(conn, codec)
  let timedOut = false
  const timeout = (o?: { cause?: unknown }): WsfrpError => new WsfrpError('ERR_TIMEOUT', `${what}: no message within ${ms} ms`, o)
  const timer = setTimer(() => {
    timedOut = true
    conn.destroy(timeout())
  }, ms)
  return readMessage(conn, codec).then(
    (r) => {
      clearTimer(timer)
      return r
    },
    (err: unknown) => {
      clearTimer(timer)
      if (timedOut) throw timeout({ cause: err })
      throw err
    },
  )
}

/** Compares two strings in time that depends only on their lengths (token checks). */
export function constantTimeEqual(a: string, b: string): boolean {
  const ea = new TextEncoder().encode(a)
  const eb = new TextEncoder().encode(b)
  let diff = ea.length ^ eb.length
  const n = Math.max(ea.length, eb.length)
  for (let i = 0; i < n; i++) diff |= (ea[i] ?? 0) ^ (eb[i] ?? 0)
  return diff === 0
}

/** Parses frp's "X.Y.Z" and compares with a minimum; fewer than 3 numeric parts counts as 0.0.0 (frp does). */
export function versionAtLeast(version: string | undefined, min: [number, number, number]): boolean {
  const parts = (version ?? '').split('.')
  if (parts.length < 3) return false
  const nums = parts.slice(0, 3).map((p) => (/^\d+$/.test(p) ? Number(p) : NaN))
  if (nums.some((n) => Number.isNaN(n))) return false
  for (let i = 0; i < 3; i++) {
    if (nums[i]! > min[i]!) return true
    if (nums[i]! < min[i]!) return false
  }
  return true
}

/** 16 lowercase hex characters, like frps's run ids. */
export function randomRunId(): string {
  const b = crypto.getRandomValues(new Uint8Array(8))
  let s = ''
  for (const x of b) s += x.toString(16).padStart(2, '0')
  return s
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000)
}

/** Keeps a promise's rejection from becoming unhandled while its result is still awaited elsewhere. */
export function swallow(p: Promise<unknown>): void {
  p.catch(() => {})
}
