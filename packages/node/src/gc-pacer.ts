import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/**
 * Memory pacing for the tunnel processes.
 *
 * Every chunk a socket reads is a fresh off-heap ArrayBuffer (Node allocates one per read, and `ws`
 * another whenever a message spans reads). They die within milliseconds, but V8 frees them only at
 * a garbage collection, and with a small JS heap the only collection that comes is the one V8
 * starts when external memory has grown by 64 MB since the last one. A process moving 300 MiB/s
 * therefore carries ~64 MiB of dead buffers on top of its live set, and glibc keeps much of it as
 * fragmented heap afterwards. Measured on the tunnel bench: idle 48–61 MiB, peak 110–137 MiB.
 *
 * The pacer runs a young-generation collection (a scavenge, typically 0.2–1 ms with our small
 * heaps) after every `everyBytes` of transport traffic (reads, and WebSocket messages sent), so
 * dead buffers are returned long before V8's own trigger. At 300 MiB/s and the default 4 MiB that is ~75 scavenges a second, a few per cent
 * of one core. Only young collections are forced: a forced full collection is one stop-the-world
 * pause (V8's own are incremental), which showed up in request latency; the old generation is kept
 * small by the bins' --heap-growing-percent instead. Enabled by the wsfrps and wsfrpc command
 * lines; a library user decides for their own process (`enableGcPacer()`), since the collector is
 * process-wide.
 */

/** Default transport bytes between two paced collections (docs/LIMITS.md `WSFRP_GC_PACE_MIB`). */
export const DEFAULT_GC_PACE_BYTES = 4 * 1024 * 1024

type GcFn = (opts?: { type?: 'minor' | 'major' }) => void

let gc: GcFn | undefined
let every = DEFAULT_GC_PACE_BYTES
let left = DEFAULT_GC_PACE_BYTES
let pending = false

function collect(): void {
  pending = false
  gc?.({ type: 'minor' })
}

/**
 * Turns pacing on for this process. Returns false when the runtime offers no collector to call
 * (then nothing changes). `everyBytes` of 0 turns pacing off again.
 */
export function enableGcPacer(everyBytes: number = DEFAULT_GC_PACE_BYTES): boolean {
  if (!Number.isInteger(everyBytes) || everyBytes < 0) throw new RangeError(`gc pace must be a byte count >= 0, got ${everyBytes}`)
  if (everyBytes === 0) {
    gc = undefined
    return true
  }
  if (gc === undefined) {
    const g = (globalThis as { gc?: GcFn }).gc
    if (typeof g === 'function') gc = g
    else {
      try {
        // The documented way to reach V8's collector without a command-line flag: the flag only
        // has to be set when a context is created, and the function is taken from a fresh one.
        setFlagsFromString('--expose-gc')
        const fn = runInNewContext('typeof gc === "function" ? gc : undefined') as GcFn | undefined
        if (typeof fn !== 'function') return false
        gc = fn
      } catch {
        return false
      }
    }
  }
  every = left = everyBytes
  return true
}

/** Called by the transports with the size of every chunk they read (and of every WebSocket message they send). */
export function noteReadBytes(n: number): void {
  if (gc === undefined) return
  left -= n
  if (left > 0) return
  left = every
  if (!pending) {
    pending = true
    // After the current I/O callback: the chunk in hand is still referenced on this stack.
    setImmediate(collect)
  }
}

/**
 * The command lines' setting: `WSFRP_GC_PACE_MIB` (MiB between paced collections; 0 turns pacing
 * off), else the default. A malformed value is an error, not a silent default.
 */
export function gcPaceFromEnv(env: Record<string, string | undefined>): number {
  const raw = env['WSFRP_GC_PACE_MIB']
  if (raw === undefined || raw === '') return DEFAULT_GC_PACE_BYTES
  const mib = Number(raw)
  if (!Number.isFinite(mib) || mib < 0 || mib > 4096) throw new RangeError(`WSFRP_GC_PACE_MIB must be a number of MiB from 0 to 4096, got "${raw}"`)
  return Math.round(mib * 1024 * 1024)
}
