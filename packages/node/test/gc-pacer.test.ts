import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PerformanceObserver, constants } from 'node:perf_hooks'
import { DEFAULT_GC_PACE_BYTES, enableGcPacer, gcPaceFromEnv, noteReadBytes } from '../src/gc-pacer.js'

/** Resolves with the kind of the next garbage collection V8 reports. */
function nextGc(): Promise<number> {
  return new Promise((resolve) => {
    // GC entries are delivered later and do not keep the event loop alive by themselves.
    const alive = setInterval(() => {}, 1000)
    const obs = new PerformanceObserver((list) => {
      const e = list.getEntries()[0] as unknown as { detail?: { kind?: number } } | undefined
      obs.disconnect()
      clearInterval(alive)
      resolve(e?.detail?.kind ?? -1)
    })
    obs.observe({ entryTypes: ['gc'] })
  })
}

test('after the paced number of read bytes a young-generation collection runs', { timeout: 10_000 }, async () => {
  assert.equal(enableGcPacer(1024 * 1024), true)
  try {
    const seen = nextGc()
    noteReadBytes(512 * 1024)
    noteReadBytes(512 * 1024)
    assert.equal(await seen, constants.NODE_PERFORMANCE_GC_MINOR)
  } finally {
    enableGcPacer(0)
  }
})

test('WSFRP_GC_PACE_MIB: default, MiB values, 0 for off, and a clear error for anything else', () => {
  assert.equal(gcPaceFromEnv({}), DEFAULT_GC_PACE_BYTES)
  assert.equal(gcPaceFromEnv({ WSFRP_GC_PACE_MIB: '' }), DEFAULT_GC_PACE_BYTES)
  assert.equal(gcPaceFromEnv({ WSFRP_GC_PACE_MIB: '2' }), 2 * 1024 * 1024)
  assert.equal(gcPaceFromEnv({ WSFRP_GC_PACE_MIB: '0' }), 0)
  assert.throws(() => gcPaceFromEnv({ WSFRP_GC_PACE_MIB: 'lots' }), /WSFRP_GC_PACE_MIB must be a number of MiB from 0 to 4096, got "lots"/)
  assert.throws(() => gcPaceFromEnv({ WSFRP_GC_PACE_MIB: '-1' }), RangeError)
  assert.throws(() => enableGcPacer(-5), RangeError)
})
