#!/usr/bin/env node
// Runs the test suites with node's own test runner, on the TypeScript sources (through tsx and the
// "wsfrp-source" export condition, so no build is needed for tests).
//
// Node 20 expands no globs for --test and runs ZERO tests (exit 0) when given none, so this script
// lists the files itself, refuses an empty list, and fails when the runner reports no passing test.
//
// usage: node scripts/test.mjs [unit|e2e|all] [--only substring]
import { spawn } from 'node:child_process'
import { readdirSync, statSync, mkdirSync, readFileSync, existsSync, rmSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const args = process.argv.slice(2)
const suite = args.find((a) => !a.startsWith('-')) ?? 'all'
const onlyIdx = args.indexOf('--only')
const only = onlyIdx >= 0 ? args[onlyIdx + 1] : undefined

function walk(dir, out) {
  if (!existsSync(dir)) return out
  for (const name of readdirSync(dir)) {
    // .mutants: copies of the sources made by the mutation tests while they run.
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue
    const p = join(dir, name)
    if (statSync(p).isDirectory()) walk(p, out)
    else if (name.endsWith('.test.ts')) out.push(p)
  }
  return out
}

const unit = walk(join(root, 'packages'), []).sort()
const e2e = walk(join(root, 'e2e'), []).sort()
let files = suite === 'unit' ? unit : suite === 'e2e' ? e2e : [...unit, ...e2e]
if (only) files = files.filter((f) => f.includes(only))
if (files.length === 0) {
  console.error(`test: no test files found for suite "${suite}"${only ? ` matching "${only}"` : ''}`)
  process.exit(1)
}
console.log(`test: ${files.length} files (${suite})`)

const outDir = join(root, '.test-results')
mkdirSync(outDir, { recursive: true })
// One file per run: several runs may share the tree (and CI keeps only the last one's figures).
const tapFile = join(outDir, `${suite}-${process.pid}.tap`)
const nodeArgs = [
  '--conditions=wsfrp-source',
  '--import',
  'tsx',
  '--test',
  `--test-concurrency=${process.env.TEST_CONCURRENCY ?? 2}`,
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=tap',
  `--test-reporter-destination=${tapFile}`,
  ...files.map((f) => relative(root, f)),
]
// Its own process group, so that a stuck run can be ended with every test-file process under it.
const child = spawn(process.execPath, nodeArgs, { cwd: root, stdio: 'inherit', detached: true })
const onSignal = (sig) => child.kill(sig)
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)

// Stall watchdog. Per-test timeouts are timers, and a timer never fires inside a synchronous
// endless loop (a broken parser that stops consuming input): such a test would hang the run until
// CI's own limit. When the TAP report has not grown for TEST_STALL_MINUTES (default 10; the
// longest test, the 3-minute idle one, stays well inside), the whole group is killed and the run fails.
const stallMs = Number(process.env.TEST_STALL_MINUTES ?? 10) * 60_000
let lastSize = -1
let lastChange = Date.now()
let stalled = false
const watchdog = setInterval(() => {
  let size = 0
  try {
    size = statSync(tapFile).size
  } catch {
    // not written yet
  }
  if (size !== lastSize) {
    lastSize = size
    lastChange = Date.now()
    return
  }
  if (Date.now() - lastChange < stallMs) return
  stalled = true
  clearInterval(watchdog)
  console.error(`test: no test finished for ${stallMs / 60_000} minutes: a test is stuck (a synchronous loop cannot be stopped by test timeouts); killing the run`)
  try {
    process.kill(-child.pid, 'SIGKILL')
  } catch {
    child.kill('SIGKILL')
  }
}, Math.min(10_000, Math.max(1000, stallMs / 10)))
watchdog.unref()
child.on('exit', (code, signal) => {
  clearInterval(watchdog)
  let pass = 0
  let fail = 0
  let tests = 0
  try {
    const tap = readFileSync(tapFile, 'utf8')
    tests = Number(/^# tests (\d+)$/m.exec(tap)?.[1] ?? 0)
    pass = Number(/^# pass (\d+)$/m.exec(tap)?.[1] ?? 0)
    // A timed-out test is reported as cancelled, not failed: count it as a failure.
    fail = Number(/^# fail (\d+)$/m.exec(tap)?.[1] ?? 0) + Number(/^# cancelled (\d+)$/m.exec(tap)?.[1] ?? 0)
  } catch {
    // no TAP file: the runner died before reporting
  }
  rmSync(tapFile, { force: true })
  console.log(`${pass} passed, ${fail} failed`)
  if (signal || stalled) process.exit(1)
  if (tests === 0 || pass === 0) {
    console.error('test: the runner reported zero tests: failing on purpose')
    process.exit(1)
  }
  process.exit(code === 0 && fail === 0 ? 0 : 1)
})
