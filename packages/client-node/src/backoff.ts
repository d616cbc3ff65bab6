/**
 * Reconnect delays: exponential backoff with full jitter (a uniformly random delay between 0 and an
 * exponentially growing ceiling). Jitter spreads the reconnects of many clients after a server
 * restart, so they do not all arrive in the same instant.
 */

/** Options of {@link backoffDelay}; every value in milliseconds. */
export interface BackoffOptions {
  /** Ceiling of the first retry. Default 1,000. */
  initialDelayMs?: number
  /** Largest ceiling. Default 30,000. */
  maxDelayMs?: number
  /** Uniform random source in [0, 1). Default `Math.random` (inject a fixed one in tests). */
  random?: () => number
}

/** Defaults of {@link BackoffOptions}. */
export const BACKOFF_DEFAULTS = { initialDelayMs: 1_000, maxDelayMs: 30_000 } as const

/**
 * The ceiling for retry number `attempt` (0 for the first retry): `initialDelayMs × 2^attempt`,
 * capped at `maxDelayMs`.
 */
export function backoffCeiling(attempt: number, opts: BackoffOptions = {}): number {
  const initial = opts.initialDelayMs ?? BACKOFF_DEFAULTS.initialDelayMs
  const max = opts.maxDelayMs ?? BACKOFF_DEFAULTS.maxDelayMs
  // 2^attempt overflows to Infinity for huge attempts; min() keeps it at the cap.
  return Math.min(max, initial * 2 ** Math.max(0, attempt))
}

/** The delay before retry number `attempt`, in whole ms: `floor(random() × ceiling)`. */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}): number {
  const r = (opts.random ?? Math.random)()
  // A random source outside [0, 1) must not produce a negative or overlong wait.
  const clamped = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0
  const ceiling = backoffCeiling(attempt, opts)
  return Math.min(Math.floor(clamped * ceiling), ceiling)
}
