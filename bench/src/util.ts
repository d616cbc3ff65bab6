import { performance } from 'node:perf_hooks'

export const MiB = 1024 * 1024

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export function fmt(n: number, digits = 2): string {
  return n.toFixed(digits)
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now()
  const value = await fn()
  return { ms: performance.now() - t0, value }
}

/** Prints a progress/status line to stderr so stdout keeps only results. */
export function status(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`)
}

export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc
  if (!g) throw new Error('run with --expose-gc')
  g()
  g()
}
