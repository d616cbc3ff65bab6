import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLogger } from '@wsfrp/client-node'

const T = { timeout: 5_000 }
const NOW = (): Date => new Date(2025, 0, 2, 3, 4, 5, 6)

test('one line per event: time, level tag, prefixes, message, fields', T, () => {
  const lines: string[] = []
  const log = createLogger({ write: (l) => lines.push(l), now: NOW })
  log.child('[abc123]').child('[ssh]').info('tcp proxy running', { remote: ':6000', n: 2, ok: true, text: 'two words' })
  assert.deepEqual(lines, ['2025-01-02 03:04:05.006 [I] [abc123] [ssh] tcp proxy running remote=:6000 n=2 ok=true text="two words"'])
})

test('levels filter; trace and debug are off by default', T, () => {
  const lines: string[] = []
  const log = createLogger({ write: (l) => lines.push(l), now: NOW })
  log.trace('t')
  log.debug('d')
  log.info('i')
  log.warn('w')
  log.error('e')
  assert.deepEqual(lines.map((l) => l.slice(24)), ['[I] i', '[W] w', '[E] e'])
  assert.equal(log.enabled('debug'), false)
  const all: string[] = []
  createLogger({ level: 'trace', write: (l) => all.push(l) }).trace('x')
  assert.equal(all.length, 1)
})

test('secret-looking fields are redacted and server text cannot forge lines', T, () => {
  const lines: string[] = []
  const log = createLogger({ write: (l) => lines.push(l), now: NOW })
  log.warn('proxy start error: evil\n2025-01-01 00:00:00.000 [I] forged', { token: 'hunter2', http_pwd: 'x', privilege_key: 'y', error: 'a\nb' })
  assert.equal(lines.length, 1)
  assert.ok(!lines[0]!.includes('hunter2'))
  assert.ok(!lines[0]!.includes('\n'))
  assert.match(lines[0]!, /evil\\x0a2025/)
  assert.match(lines[0]!, /token=<redacted> http_pwd=<redacted> privilege_key=<redacted> error="a\\nb"$/)
})

test('log.to = a file appends lines there', T, () => {
  const dir = mkdtempSync(join(tmpdir(), 'wsfrpc-log-'))
  try {
    const file = join(dir, 'client.log')
    const log = createLogger({ to: file, now: NOW })
    log.info('first')
    log.child('[p]').error('second')
    log.close()
    log.info('after close is dropped')
    assert.equal(readFileSync(file, 'utf8'), '2025-01-02 03:04:05.006 [I] first\n2025-01-02 03:04:05.006 [E] [p] second\n')
    assert.throws(() => createLogger({ to: join(dir, 'missing-dir', 'x.log') }), /cannot open log file .*missing-dir/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
