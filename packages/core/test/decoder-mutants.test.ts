/**
 * Tests of the tests: the yamux decoder's own suite (mux-decoder.test.ts) must catch a broken
 * decoder. Each mutant is a copy of the core sources with one deliberate bug in mux/decoder.ts; the
 * decoder suite runs against it in a child process and must fail, or hang and be killed, never pass.
 * A hang counts as caught because scripts/test.mjs ends a stuck run (its stall watchdog), so CI
 * fails either way. The copies live under packages/core/.mutants/ (skipped by the test lister,
 * removed afterwards) so that fast-check and tsx resolve from the repository's node_modules.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const core = fileURLToPath(new URL('..', import.meta.url))
const base = join(core, '.mutants', String(process.pid))
/** A mutant that survives longer than this is stuck in a loop: killed and counted as caught. */
const HANG_MS = 20_000

after(() => rmSync(base, { recursive: true, force: true }))

interface Mutant {
  name: string
  /** Where to break the decoder: written loosely (member names may change), must match once. */
  find: RegExp
  replace: string
}

const MUTANTS: Mutant[] = [
  { name: 'payload one byte short', find: /else (\S*payloadLeft) = length\b/i, replace: 'else $1 = length - 1' },
  { name: 'split header never reset (endless loop)', find: /\n(\s*)(\S*headerFill) = 0\n(\s*)h = /i, replace: '\n$3h = ' },
  { name: 'payload offset not advanced', find: /off \+= n\n(\s*)if \((\S*payloadLeft) === 0\)/i, replace: 'if ($2 === 0)' },
  { name: 'version not checked', find: /if \(version !== PROTOCOL_VERSION\)/, replace: 'if (false)' },
  { name: 'header fields read from the wrong offset', find: /const type = h\[o \+ 1\]!/, replace: 'const type = h[o]!' },
]

function runSuite(dir: string): Promise<{ code: number | null; hung: boolean; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=dot', join(dir, 'test', 'mux-decoder.test.ts')], {
      cwd: core,
      // Without this the child would report into our own test run instead of running its suite.
      env: { ...process.env, NODE_TEST_CONTEXT: undefined },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr.on('data', (c: Buffer) => (out += c.toString()))
    let hung = false
    const timer = setTimeout(() => {
      hung = true
      process.kill(-child.pid!, 'SIGKILL')
    }, HANG_MS)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, hung, out })
    })
  })
}

const decoderSource = readFileSync(join(core, 'src', 'mux', 'decoder.ts'), 'utf8')
const suiteSource = readFileSync(join(core, 'test', 'mux-decoder.test.ts'), 'utf8')

test('the unmutated copy passes (the harness itself works)', { timeout: HANG_MS + 30_000 }, async () => {
  const dir = join(base, 'original')
  mkdirSync(join(dir, 'test'), { recursive: true })
  cpSync(join(core, 'src'), join(dir, 'src'), { recursive: true })
  writeFileSync(join(dir, 'test', 'mux-decoder.test.ts'), suiteSource.replaceAll("from '@wsfrp/core'", "from '../src/index.js'"))
  const r = await runSuite(dir)
  assert.equal(r.hung, false)
  assert.equal(r.code, 0, r.out.slice(-2000))
})

for (const [i, m] of MUTANTS.entries()) {
  test(`the decoder suite catches a mutant: ${m.name}`, { timeout: HANG_MS + 30_000 }, async () => {
    assert.equal(decoderSource.match(new RegExp(m.find.source, m.find.flags + 'g'))?.length, 1, `mutation site ${m.find} must match decoder.ts exactly once (update this test)`)
    const dir = join(base, `m${i}`)
    mkdirSync(join(dir, 'test'), { recursive: true })
    cpSync(join(core, 'src'), join(dir, 'src'), { recursive: true })
    writeFileSync(join(dir, 'src', 'mux', 'decoder.ts'), decoderSource.replace(m.find, m.replace))
    writeFileSync(join(dir, 'test', 'mux-decoder.test.ts'), suiteSource.replaceAll("from '@wsfrp/core'", "from '../src/index.js'"))
    const r = await runSuite(dir)
    assert.ok(r.hung || r.code !== 0, `the mutant "${m.name}" passed the decoder suite:\n${r.out.slice(-2000)}`)
  })
}
