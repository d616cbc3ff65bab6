import { test } from 'node:test'
import assert from 'node:assert/strict'
import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'

// The core must run in browsers and service workers as it is: esbuild for the browser platform,
// with no Node built-ins available, must bundle it without errors, warnings or polyfills.
test('@wsfrp/core bundles for the browser with esbuild and no Node polyfills', { timeout: 30_000 }, async () => {
  const entry = fileURLToPath(new URL('../src/index.ts', import.meta.url))
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'chrome120',
    minify: true,
    write: false,
    logLevel: 'silent',
    metafile: true,
  })
  assert.deepEqual(result.errors, [])
  assert.deepEqual(result.warnings, [])
  const inputs = Object.keys(result.metafile.inputs)
  assert.ok(inputs.every((f) => !f.includes('node_modules')), `no third-party code: ${inputs.filter((f) => f.includes('node_modules')).join(', ')}`)
  const code = result.outputFiles[0]!.text
  assert.doesNotMatch(code, /\brequire\(|from\s*"node:|Buffer\.|process\./, 'no Node APIs in the bundle')
  assert.ok(code.length > 10_000, 'the bundle has the protocol code in it')
  console.log(`core browser bundle: ${(code.length / 1024).toFixed(1)} KB minified`)
})
