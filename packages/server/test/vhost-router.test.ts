import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isWsfrpError } from '@wsfrp/core'
import { VhostRouter, candidateDomains, normalizeHost } from '../src/vhost/router.js'

const T = { timeout: 5_000 }

function errText(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    assert.ok(isWsfrpError(err, 'ERR_PROXY'), `expected ERR_PROXY, got ${String(err)}`)
    return err.message
  }
  assert.fail('did not throw')
}

test('router: exact host, case-insensitive, port and trailing dot ignored', T, () => {
  const r = new VhostRouter<string>()
  r.add({ domain: 'App.Example.com' }, 'app')
  assert.equal(r.match('app.example.com', '/')?.value, 'app')
  assert.equal(r.match('APP.EXAMPLE.COM:8080', '/x')?.value, 'app')
  assert.equal(r.match('app.example.com.', '/')?.value, 'app')
  assert.equal(r.match('other.example.com', '/'), undefined)
  assert.equal(r.match('', '/'), undefined)
  assert.deepEqual(r.match('app.example.com', '/')?.key, { domain: 'app.example.com', location: '/', httpUser: '' })
})

test('router: host normalisation and the wildcard walk never try a two-label *.com', T, () => {
  assert.equal(normalizeHost('[::1]:8080'), '[::1]')
  assert.equal(normalizeHost('Example.COM:80'), 'example.com')
  assert.deepEqual(candidateDomains('a.b.example.com'), ['a.b.example.com', '*.b.example.com', '*.example.com', '*'])
  assert.deepEqual(candidateDomains('example.com'), ['example.com', '*'])
  assert.deepEqual(candidateDomains('localhost'), ['localhost', '*'])
})

test('router: wildcards, most specific first, then the "*" catch-all', T, () => {
  const r = new VhostRouter<string>()
  r.add({ domain: '*.example.com' }, 'wide')
  r.add({ domain: '*.b.example.com' }, 'narrow')
  assert.equal(r.match('x.b.example.com', '/')?.value, 'narrow')
  assert.equal(r.match('a.x.b.example.com', '/')?.value, 'narrow')
  assert.equal(r.match('c.example.com', '/')?.value, 'wide')
  // A wildcard does not cover its apex.
  assert.equal(r.match('example.com', '/'), undefined)
  r.add({ domain: 'x.b.example.com' }, 'exact')
  assert.equal(r.match('x.b.example.com', '/')?.value, 'exact')
  r.add({ domain: '*' }, 'all')
  assert.equal(r.match('example.com', '/')?.value, 'all')
  assert.equal(r.match('unrelated.org', '/')?.value, 'all')
  assert.equal(r.match('c.example.com', '/')?.value, 'wide')
})

test('router: a two-label wildcard cannot be registered, nor a "*" inside a label', T, () => {
  const r = new VhostRouter<string>()
  assert.match(errText(() => r.add({ domain: '*.com' }, 'x')), /at least two labels/)
  assert.match(errText(() => r.add({ domain: 'a*.example.com' }, 'x')), /not a valid host name.*only allowed as the whole first label/)
  assert.match(errText(() => r.add({ domain: 'a.*.example.com' }, 'x')), /not a valid host name/)
  assert.match(errText(() => r.add({ domain: 'bad host' }, 'x')), /not a valid host name/)
  assert.match(errText(() => r.add({ domain: '' }, 'x')), /domain is empty/)
  assert.equal(r.size, 0)
})

test('router: locations are prefixes, the longest wins, empty means "/"', T, () => {
  const r = new VhostRouter<string>()
  r.add({ domain: 'h.test', location: '' }, 'root')
  r.add({ domain: 'h.test', location: '/api' }, 'api')
  r.add({ domain: 'h.test', location: '/api/v2' }, 'v2')
  r.add({ domain: 'h.test', location: '/b' }, 'b')
  assert.equal(r.match('h.test', '/')?.value, 'root')
  assert.equal(r.match('h.test', '/index.html')?.value, 'root')
  assert.equal(r.match('h.test', '/api')?.value, 'api')
  assert.equal(r.match('h.test', '/api/v1/x')?.value, 'api')
  assert.equal(r.match('h.test', '/api/v2/x')?.value, 'v2')
  // frp matches plain string prefixes: /apix is under /api.
  assert.equal(r.match('h.test', '/apix')?.value, 'api')
  assert.equal(r.match('h.test', '/b/c')?.value, 'b')
  assert.match(errText(() => r.add({ domain: 'h.test', location: 'api' }, 'x')), /must start with "\/"/)
})

test('router: without a "/" route, paths outside every location do not match', T, () => {
  const r = new VhostRouter<string>()
  r.add({ domain: 'h.test', location: '/only' }, 'only')
  assert.equal(r.match('h.test', '/'), undefined)
  assert.equal(r.match('h.test', '/only/x')?.value, 'only')
})

test('router: route_by_http_user routes come first for their user, then routes without a user', T, () => {
  const r = new VhostRouter<string>()
  r.add({ domain: 'h.test' }, 'anyone')
  r.add({ domain: 'h.test', httpUser: 'alice' }, 'alice')
  r.add({ domain: 'h.test', location: '/admin', httpUser: 'bob' }, 'bob-admin')
  assert.equal(r.match('h.test', '/', 'alice')?.value, 'alice')
  assert.equal(r.match('h.test', '/', 'carol')?.value, 'anyone')
  assert.equal(r.match('h.test', '/')?.value, 'anyone')
  assert.equal(r.match('h.test', '/admin', 'bob')?.value, 'bob-admin')
  assert.equal(r.match('h.test', '/other', 'bob')?.value, 'anyone')
  assert.deepEqual(r.match('h.test', '/', 'alice')?.key, { domain: 'h.test', location: '/', httpUser: 'alice' })
  // Per candidate host: a user route of a wildcard loses against a user-less exact route.
  r.add({ domain: '*.w.test', httpUser: 'alice' }, 'wild-alice')
  r.add({ domain: 'x.w.test' }, 'exact')
  assert.equal(r.match('x.w.test', '/', 'alice')?.value, 'exact')
  assert.equal(r.match('y.w.test', '/', 'alice')?.value, 'wild-alice')
})

test('router: a taken domain + location + user is a conflict with a clear message', T, () => {
  const r = new VhostRouter<string>()
  r.add({ domain: 'test.local' }, 'first')
  assert.equal(errText(() => r.add({ domain: 'TEST.local', location: '' }, 'second')), 'router config conflict: domain test.local location / is already in use')
  assert.equal(errText(() => r.add({ domain: 'test.local', location: '/' }, 'second')), 'router config conflict: domain test.local location / is already in use')
  // Another location, or another user, is a different key.
  r.add({ domain: 'test.local', location: '/x' }, 'second')
  r.add({ domain: 'test.local', httpUser: 'u' }, 'third')
  assert.equal(errText(() => r.add({ domain: 'test.local', httpUser: 'u' }, 'fourth')), 'router config conflict: domain test.local location / http user u is already in use')
  assert.equal(r.match('test.local', '/')?.value, 'first')
})

test('router: group members share a key round-robin; a wrong group_key is "group auth failed"', T, () => {
  const r = new VhostRouter<string>()
  r.add({ domain: 'g.test' }, 'm1', { name: 'web', key: 'k' })
  r.add({ domain: 'g.test' }, 'm2', { name: 'web', key: 'k' })
  r.add({ domain: 'g.test' }, 'm3', { name: 'web', key: 'k' })
  const seen = [1, 2, 3, 4, 5, 6].map(() => r.match('g.test', '/')?.value)
  assert.deepEqual(seen, ['m1', 'm2', 'm3', 'm1', 'm2', 'm3'])
  assert.match(errText(() => r.add({ domain: 'g.test' }, 'm4', { name: 'web', key: 'wrong' })), /^group auth failed/)
  assert.match(errText(() => r.add({ domain: 'g.test' }, 'm5', { name: 'other', key: 'k' })), /^router config conflict/)
  assert.match(errText(() => r.add({ domain: 'g.test' }, 'm6')), /^router config conflict/)
  // A single proxy's route cannot be joined by a group either.
  r.add({ domain: 'single.test' }, 's')
  assert.match(errText(() => r.add({ domain: 'single.test' }, 'g', { name: 'web', key: 'k' })), /^router config conflict/)
  // Leaving the group: the rest keep serving; the last one out frees the key.
  assert.equal(r.remove({ domain: 'g.test' }, 'm2'), true)
  assert.deepEqual([1, 2, 3, 4].map(() => r.match('g.test', '/')?.value).sort(), ['m1', 'm1', 'm3', 'm3'])
  r.remove({ domain: 'g.test' }, 'm1')
  r.remove({ domain: 'g.test' }, 'm3')
  assert.equal(r.match('g.test', '/'), undefined)
  r.add({ domain: 'g.test' }, 'new', { name: 'other', key: 'z' })
  assert.equal(r.match('g.test', '/')?.value, 'new')
})

test('router: remove frees exactly its key and reports unknown ones', T, () => {
  const r = new VhostRouter<string>()
  r.add({ domain: 'a.test' }, 'a')
  r.add({ domain: 'a.test', location: '/x' }, 'ax')
  assert.equal(r.size, 2)
  assert.equal(r.remove({ domain: 'a.test', location: '/x' }, 'other'), false)
  assert.equal(r.remove({ domain: 'nope.test' }, 'a'), false)
  assert.equal(r.remove({ domain: 'a.test', location: '/x' }, 'ax'), true)
  assert.equal(r.match('a.test', '/x/1')?.value, 'a')
  assert.equal(r.size, 1)
  r.add({ domain: 'a.test', location: '/x' }, 'again')
  assert.equal(r.match('a.test', '/x/1')?.value, 'again')
})

test('router: reserved paths never match and cannot be registered as locations', T, () => {
  const reserved = (p: string): boolean => p === '/~!frp' || p === '/tunnel' || p.startsWith('/_wsfrp/')
  const r = new VhostRouter<string>({ reserved })
  r.add({ domain: '*' }, 'all')
  assert.equal(r.match('any.test', '/~!frp'), undefined)
  assert.equal(r.match('any.test', '/tunnel'), undefined)
  assert.equal(r.match('any.test', '/_wsfrp/api/status'), undefined)
  assert.equal(r.match('any.test', '/tunnel/x')?.value, 'all')
  assert.equal(r.match('any.test', '/')?.value, 'all')
  assert.equal(errText(() => r.add({ domain: 'h.test', location: '/~!frp' }, 'x')), 'location /~!frp is reserved by the server')
  assert.match(errText(() => r.add({ domain: 'h.test', location: '/_wsfrp/x' }, 'x')), /reserved/)
})
