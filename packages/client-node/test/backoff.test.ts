import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BACKOFF_DEFAULTS, backoffCeiling, backoffDelay } from '@wsfrp/client-node'

const T = { timeout: 5_000 }

test('the ceiling doubles from 1 s and stops at 30 s', T, () => {
  assert.deepEqual(BACKOFF_DEFAULTS, { initialDelayMs: 1_000, maxDelayMs: 30_000 })
  const ceilings = Array.from({ length: 8 }, (_, i) => backoffCeiling(i))
  assert.deepEqual(ceilings, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000])
  // No overflow to Infinity/NaN for absurd attempt numbers.
  assert.equal(backoffCeiling(10_000), 30_000)
  assert.equal(backoffCeiling(-3), 1_000)
})

test('full jitter: the delay is floor(random × ceiling), from an injected random source', T, () => {
  const seq = [0, 0.5, 0.999, 0.25, 0.75, 0.1]
  let i = 0
  const random = (): number => seq[i++ % seq.length]!
  const delays = seq.map((_, attempt) => backoffDelay(attempt, { random }))
  assert.deepEqual(delays, [0, 1_000, 3_996, 2_000, 12_000, 3_000])
})

test('custom initial and cap (tests use short ones)', T, () => {
  const random = (): number => 0.5
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((a) => backoffDelay(a, { initialDelayMs: 10, maxDelayMs: 50, random })),
    [5, 10, 20, 25, 25],
  )
})

test('a random source outside [0, 1) cannot produce a negative or overlong delay', T, () => {
  assert.equal(backoffDelay(0, { random: () => -1 }), 0)
  assert.equal(backoffDelay(0, { random: () => 7 }), 1_000)
  assert.equal(backoffDelay(2, { random: () => Number.NaN }), 0)
})

test('the default random source stays within [0, ceiling)', T, () => {
  for (let a = 0; a < 200; a++) {
    const d = backoffDelay(a % 8)
    assert.ok(Number.isInteger(d) && d >= 0 && d < backoffCeiling(a % 8), `attempt ${a}: ${d}`)
  }
})
