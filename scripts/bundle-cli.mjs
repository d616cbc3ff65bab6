#!/usr/bin/env node
// Bundles the two command lines into one file each with esbuild, after `tsc -b` built dist/:
//   packages/server/dist/wsfrps.mjs       (run by bin/wsfrps.mjs, the "wsfrps" bin)
//   packages/client-node/dist/wsfrpc.mjs  (run by bin/wsfrpc.mjs, the "wsfrpc" bin; the bin files
//   carry the node flags in their #! line)
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
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

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
}
