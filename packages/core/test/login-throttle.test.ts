import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LoginThrottle, throttleKey } from '@wsfrp/core'

const T = { timeout: 5_000 }

test('throttleKey: the IP without its port; IPv6 by /64', T, () => {
  assert.equal(throttleKey('10.0.0.1'), '10.0.0.1')
  assert.equal(throttleKey('10.0.0.1:5555'), '10.0.0.1')
  assert.equal(throttleKey('[2001:db8:1:2:3:4:5:6]:443'), '2001:db8:1:2::/64')
  assert.equal(throttleKey('2001:db8:1:2::9'), '2001:db8:1:2::/64')
  assert.equal(throttleKey('2001:0db8:0001:0002:ffff:0:0:1'), '2001:db8:1:2::/64')
  assert.equal(throttleKey('::1'), '0:0:0:0::/64')
  assert.equal(throttleKey('fe80::1%eth0'), 'fe80:0:0:0::/64')
  assert.equal(throttleKey('::ffff:10.1.2.3'), '10.1.2.3') // a dual-stack listener's IPv4 peer
  assert.equal(throttleKey('not an address'), 'not an address')
})

test('five failures in a burst, then refused until the bucket refills at 5 per window', T, () => {
  let now = 1_000_000
  const t = new LoginThrottle({ maxFailures: 5, windowMs: 60_000, now: () => now })
  for (let i = 0; i < 5; i++) {
    assert.equal(t.blocked('192.0.2.1:1000'), false, `attempt ${i + 1} is checked`)
    t.failed(`192.0.2.1:${1000 + i}`)
  }
  assert.equal(t.blocked('192.0.2.1:2000'), true, 'the sixth is refused unchecked, from any port')
  assert.equal(t.blocked('192.0.2.2:2000'), false, 'another address is not affected')
  now += 11_999
  assert.equal(t.blocked('192.0.2.1'), true, 'one token takes 12 s to come back')
  now += 1
  assert.equal(t.blocked('192.0.2.1'), false)
  t.failed('192.0.2.1')
  assert.equal(t.blocked('192.0.2.1'), true, 'sustained guessing: one try per 12 s')
  now += 60_000
  assert.equal(t.blocked('192.0.2.1'), false)
  assert.equal(t.size, 0, 'a full bucket is forgotten')
})

test('IPv6 addresses of one /64 share a bucket', T, () => {
  const t = new LoginThrottle({ maxFailures: 2, windowMs: 60_000, now: () => 0 })
  t.failed('2001:db8::1')
  t.failed('2001:db8::2')
  assert.equal(t.blocked('2001:db8::ffff'), true)
  assert.equal(t.blocked('2001:db8:0:1::1'), false)
})

test('maxFailures 0 turns it off; the table never grows past maxAddresses', T, () => {
  const off = new LoginThrottle({ maxFailures: 0 })
  for (let i = 0; i < 100; i++) off.failed('192.0.2.1')
  assert.equal(off.blocked('192.0.2.1'), false)
  assert.equal(off.size, 0)
  const small = new LoginThrottle({ maxFailures: 1, maxAddresses: 100, now: () => 0 })
  for (let i = 0; i < 1000; i++) small.failed(`10.0.${i >> 8}.${i & 255}`)
  assert.equal(small.size, 100)
  assert.equal(small.blocked('10.0.3.231'), true, 'the most recent failures are kept')
  assert.equal(small.blocked('10.0.0.0'), false, 'the oldest were forgotten')
  assert.throws(() => new LoginThrottle({ maxFailures: -1 }), RangeError)
  assert.throws(() => new LoginThrottle({ windowMs: 0 }), RangeError)
})

test('retryAfterMs: 0 while not blocked, then the time until one failure is forgiven', T, () => {
  let now = 0
  const t = new LoginThrottle({ maxFailures: 5, windowMs: 60_000, now: () => now })
  assert.equal(t.retryAfterMs('192.0.2.1'), 0, 'unknown address')
  for (let i = 0; i < 4; i++) t.failed('192.0.2.1')
  assert.equal(t.retryAfterMs('192.0.2.1'), 0, 'one failure left')
  t.failed('192.0.2.1')
  assert.equal(t.retryAfterMs('192.0.2.1'), 12_000)
  now += 5_000
  assert.equal(t.retryAfterMs('192.0.2.1'), 7_000)
  now += 7_000
  assert.equal(t.retryAfterMs('192.0.2.1'), 0)
  assert.equal(t.blocked('192.0.2.1'), false)
  assert.equal(new LoginThrottle({ maxFailures: 0 }).retryAfterMs('192.0.2.1'), 0, 'off')
})
