import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import vm from 'node:vm'

const script = fileURLToPath(new URL('../scripts/build.mjs', import.meta.url))
/** The budget the build script enforces (ARCHITECTURE.md §4.3). */
const SW_BUDGET_BYTES = 60_000

let outdir = ''
let run: { code: number | null; stdout: string; stderr: string } | undefined

before(async () => {
  outdir = mkdtempSync(join(tmpdir(), 'wsfrp-bundle-'))
  run = await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, '--outdir', outdir], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
})

after(() => {
  if (outdir) rmSync(outdir, { recursive: true, force: true })
})

test('the build script bundles ESM and IIFE for browsers and prints their sizes', { timeout: 60_000 }, () => {
  assert.ok(run)
  // Exit 1 is allowed here only for the budget (asserted on its own below), never for a build error.
  assert.equal(run.stderr, '', run.stderr)
  assert.ok(run.code === 0 || /EXCEEDED/.test(run.stdout), `exit ${run.code}: ${run.stdout}`)
  assert.match(run.stdout, /wsfrp\.js: \d+ bytes minified, \d+ gzip/)
  assert.match(run.stdout, /wsfrp-sw\.js: \d+ bytes minified, \d+ gzip \(budget 60000: (ok|EXCEEDED)\)/)
  const esm = readFileSync(join(outdir, 'wsfrp.js'), 'utf8')
  const sw = readFileSync(join(outdir, 'wsfrp-sw.js'), 'utf8')
  for (const [name, code] of [
    ['esm', esm],
    ['sw', sw],
  ]) {
    // assert.ok, not doesNotMatch: a failure must not dump a 90 KB bundle into the log.
    const hit = /\brequire\(|["']node:|process\.env|\bBuffer\./.exec(code!)
    assert.ok(hit === null, `${name} bundle reaches for Node: ${hit?.[0]}`)
  }
  // build.mjs shortens `_private` members (mangleProps, ~8 KB); a surviving `._name` means it stopped.
  const unmangled = /\._[A-Za-z]\w{2,}/.exec(sw) // short names like `_e` are mangled ones
  assert.ok(unmangled === null, `private member left unmangled in the sw bundle: ${unmangled?.[0]}`)
  assert.ok(/export\s*\{/.test(esm), 'the ESM bundle has exports')
  // A strict IIFE that sets globalThis.wsfrp to a plain object (build.mjs swEntry), not esbuild's globalName record.
  assert.ok(/^"use strict";\s*\(\(\)=>\{/.test(sw), 'the sw bundle is a strict IIFE')
  assert.ok(/globalThis\.wsfrp=\{[^}]*\};?\}\)\(\);\s*$/.test(sw), 'the IIFE assigns the global wsfrp')
})

test('the service-worker bundle runs without Node: isomorphic-ws is the global WebSocket', { timeout: 30_000 }, () => {
  const sw = readFileSync(join(outdir, 'wsfrp-sw.js'), 'utf8')
  class FakeWebSocket {}
  // Only what a service worker's global scope offers (no require, no process, no Buffer).
  const g: Record<string, unknown> = {
    WebSocket: FakeWebSocket,
    TextEncoder,
    TextDecoder,
    crypto: globalThis.crypto,
    setTimeout,
    clearTimeout,
    queueMicrotask,
    performance,
    Event,
    EventTarget,
    URL,
    Headers,
    Request,
    Response,
    ReadableStream,
    WritableStream,
    AbortController,
  }
  g.self = g
  const ctx = vm.createContext(g)
  vm.runInContext(sw, ctx, { filename: 'wsfrp-sw.js' })
  const api = (ctx as { wsfrp?: Record<string, unknown> }).wsfrp
  assert.ok(api, 'the IIFE defines self.wsfrp')
  for (const name of ['connect', 'handlerTarget', 'serveHttp', 'streamTarget', 'dialWebSocket', 'websocketConn', 'webCrypto']) {
    assert.ok(name in api, `wsfrp.${name}`)
  }
  assert.equal(api.defaultWebSocket, FakeWebSocket)
  assert.equal((api.websocketURL as (u: string) => string)('https://tunnel.example:8443'), 'wss://tunnel.example:8443/~!frp')
})

test('the service-worker bundle stays within 60 KB minified', { timeout: 60_000 }, () => {
  // Measured with build.mjs's settings: 76 KB after @noble was replaced by the core's own crypto and
  // private members were mangled; 72.2 KB with compact message layouts; 67.1 KB and 62.9 KB with the
  // request parser, handler target, WebSocket conn, stream target, yamux session and decoder, client
  // role, writers and crypto conn as closures; 59,995 bytes with the message reader and channel,
  // pipe() and connect() as closures, a plain `globalThis.wsfrp` object instead of esbuild's
  // globalName record, visitor/UDP layouts and unused NewProxy fields left out, shorter messages.
  const size = statSync(join(outdir, 'wsfrp-sw.js')).size
  assert.ok(size <= SW_BUDGET_BYTES, `wsfrp-sw.js is ${size} bytes, budget ${SW_BUDGET_BYTES}`)
  assert.equal(run?.code, 0)
})

test('the browser NewProxy layout holds every field a browser proxy sends, in the core order', { timeout: 30_000 }, async () => {
  const { toClientProxy } = await import('../src/client.ts')
  const { NEW_PROXY_LAYOUT } = await import('../../core/src/msg/new-proxy-schema.ts')
  const sw = readFileSync(join(outdir, 'wsfrp-sw.js'), 'utf8')
  const m = /"(p proxy_name [^"]*)"/.exec(sw)
  assert.ok(m, 'NewProxy layout in the sw bundle')
  const names = (layout: string): string[] => layout.split(' ').slice(1).map((f) => f.split(':')[0]!)
  const browser = names(m[1]!)
  const core = names(NEW_PROXY_LAYOUT)
  // Same relative order as the core's (Go struct order, which is what frps expects on the wire).
  assert.deepEqual(browser, core.filter((n) => browser.includes(n)))
  const handler = (): never => {
    throw new Error('unused')
  }
  const sent = new Set(['proxy_name', 'proxy_type'])
  for (const p of [
    { name: 'h', type: 'http', handler, subdomain: 's', customDomains: ['d'], locations: ['/'], hostHeaderRewrite: 'x', httpUser: 'u', httpPassword: 'p', useEncryption: true, metadatas: { a: 'b' } },
    { name: 't', type: 'tcp', handler, remotePort: 1, useEncryption: true, metadatas: { a: 'b' } },
  ] as const) {
    for (const k of Object.keys(toClientProxy(p as Parameters<typeof toClientProxy>[0]).fields)) sent.add(k)
  }
  for (const k of sent) assert.ok(browser.includes(k), `${k} is missing from the browser NewProxy layout`)
})
