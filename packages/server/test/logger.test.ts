import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createLogger } from '@wsfrp/server'

const AT = new Date(2024, 0, 2, 3, 4, 5, 6)

function capture(level?: 'trace' | 'debug' | 'info' | 'warn' | 'error') {
  const lines: string[] = []
  const log = createLogger({ level, write: (l) => lines.push(l), now: () => AT, color: false })
  return { log, lines }
}

test('lines carry time, level tag, prefixes, message and fields', { timeout: 5_000 }, () => {
  const { log, lines } = capture('debug')
  log.child('[abc123]').child('[ssh]').info('proxy registered', { remote: ':6000', n: 3, ok: true, skip: undefined, text: 'two words' })
  assert.deepEqual(lines, ['2024-01-02 03:04:05.006 [I] [abc123] [ssh] proxy registered remote=:6000 n=3 ok=true text="two words"'])
})

test('the level threshold filters lines; trace is below debug', { timeout: 5_000 }, () => {
  const { log, lines } = capture('info')
  log.trace('t')
  log.debug('d')
  log.info('i')
  log.warn('w')
  log.error('e')
  assert.deepEqual(
    lines.map((l) => l.slice(24)),
    ['[I] i', '[W] w', '[E] e'],
  )
  assert.equal(log.enabled('debug'), false)
  const t = capture('trace')
  t.log.trace('x')
  assert.equal(t.lines.length, 1)
})

test('secret-looking fields are redacted and control characters cannot forge lines', { timeout: 5_000 }, () => {
  const { log, lines } = capture()
  log.warn('login refused\n2024-01-01 [I] fake line', { token: 'abc', privilege_key: 'def', password: 'x', user: 'bob\r\nEVIL' })
  assert.equal(lines.length, 1)
  assert.ok(!lines[0]!.includes('\n') && !lines[0]!.includes('\r'))
  assert.ok(!/abc|def/.test(lines[0]!.replace('login refused', '')))
  assert.match(lines[0]!, /token=<redacted> privilege_key=<redacted> password=<redacted> user="bob\\r\\nEVIL"/)
})

test('a throwing sink never throws into the caller', { timeout: 5_000 }, () => {
  const log = createLogger({ write: () => { throw new Error('EPIPE') } })
  assert.doesNotThrow(() => log.error('x'))
})
