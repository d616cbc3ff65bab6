/**
 * Timers behind one opaque handle type. The core compiles without Node or DOM types, where
 * `setTimeout` returns `unknown`; code that also sees Node's or the DOM's declarations (tests,
 * other packages) then disagrees about the handle's type. Going through these two functions keeps
 * every caller independent of the runtime's timer type.
 */
export type Timer = { readonly __brand: 'wsfrp.timer' }

/**
 * Runs `fn` once after `ms`. With `unref`, the timer does not keep a Node process alive (for
 * keep-alive and heartbeat timers: the transport itself already does while it is open).
 */
export function setTimer(fn: () => void, ms: number, opts?: { unref?: boolean }): Timer {
  const t = setTimeout(fn, ms)
  if (opts?.unref) (t as { unref?: () => void } | undefined)?.unref?.()
  return t as unknown as Timer
}

export function clearTimer(t: Timer | undefined): void {
  if (t !== undefined) clearTimeout(t as never)
}
