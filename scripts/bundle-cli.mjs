#!/usr/bin/env node
// Bundles the two command lines into one file each with esbuild, after `tsc -b` built dist/:
//   packages/server/dist/wsfrps.mjs       (bin "wsfrps")
//   packages/client-node/dist/wsfrpc.mjs  (bin "wsfrpc")
// next to dist/cli.js, so that paths relative to the module (../package.json) stay the same.
//
// Why: Node spends resident memory per loaded module file. The unbundled server loads ~150 files
// (ours, ws, smol-toml) and idles at ~61 MiB; one bundle idles at ~50 MiB, which is most of what
// separates a busy tunnel process from the 80 MiB it should stay under (bench/RESULTS.md).
// prom-client is split into a chunk of its own, loaded on the first /metrics scrape only.
//
// Native and optional packages stay outside (bufferutil is optional; esbuild is only ever loaded
// by the demo, by name, when the browser bundle is missing).
//
// usage: node scripts/bundle-cli.mjs
import { build } from 'esbuild'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

/**
 * V8 flags the bins run with, put in their `#!` line (`env -S` splits it). A 1 MiB young
 * generation: V8 grows it to 16 MiB per semi-space under a high allocation rate (hundreds of new
 * tunnel connections a second), which alone is ~30 MiB of resident memory for garbage that a
 * small one collects just as well (bench/RESULTS.md, docs/LIMITS.md). Only settable at start-up.
 * `npm start` and the benchmarks pass the same flags.
 */
export const BIN_NODE_FLAGS = ['--max-semi-space-size=1', '--optimize-for-size']

const targets = [
  { pkg: 'packages/server', entry: 'dist/cli.js', name: 'wsfrps' },
  { pkg: 'packages/client-node', entry: 'dist/cli.js', name: 'wsfrpc' },
]

for (const t of targets) {
  const outdir = join(root, t.pkg, 'dist')
  rmSync(join(outdir, 'chunks'), { recursive: true, force: true })
  await build({
    entryPoints: { [t.name]: join(root, t.pkg, t.entry) },
    outdir,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Dependencies written as CommonJS (ws, prom-client) call require() for Node's own modules.
    banner: { js: "import { createRequire as __wsfrpCreateRequire } from 'node:module'; const require = __wsfrpCreateRequire(import.meta.url);" },
    external: ['bufferutil', 'utf-8-validate', 'esbuild'],
    sourcemap: 'linked',
    legalComments: 'linked',
    logLevel: 'warning',
  })
  const file = join(outdir, `${t.name}.mjs`)
  const text = readFileSync(file, 'utf8')
  const body = text.startsWith('#!') ? text.slice(text.indexOf('\n') + 1) : text
  writeFileSync(file, `#!/usr/bin/env -S node ${BIN_NODE_FLAGS.join(' ')}\n${body}`, { mode: 0o755 })
}
