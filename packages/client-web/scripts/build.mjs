#!/usr/bin/env node
// Bundles @wsfrp/client-web for browsers with esbuild:
//   dist-bundle/wsfrp.js     ESM, for pages and module workers (import { connect } from './wsfrp.js')
//   dist-bundle/wsfrp-sw.js  IIFE exposing `self.wsfrp`, for classic service workers (importScripts);
//                            adds serveServiceWorker() (service-worker mode, src/sw/worker.ts)
//   dist-bundle/wsfrp-page.js  ESM, the page side of service-worker mode (src/sw/page.ts, no tunnel code)
//   dist-bundle/wsfrp-demo.js  ESM, the demo page wsfrps serves at /_wsfrp/demo/ (src/demo/main.ts)
// Both are minified, target chrome120, platform browser, with no Node polyfills: a `node:*` import
// anywhere in the graph fails the build. `isomorphic-ws` resolves through its package.json
// "browser" field to the global WebSocket. The service-worker bundle has a hard budget
// (ARCHITECTURE.md §4.3): above it this script exits 1.
//
// usage: node packages/client-web/scripts/build.mjs [--outdir DIR]
import { build } from 'esbuild'
import { mkdirSync, readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Service-worker bundle budget, in bytes of minified output (60 KB, counted in SI kilobytes). */
export const SW_BUDGET_BYTES = 60_000

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const outIdx = args.indexOf('--outdir')
const outdir = resolve(outIdx >= 0 ? args[outIdx + 1] : join(pkg, 'dist-bundle'))
mkdirSync(outdir, { recursive: true })

/**
 * `isomorphic-ws`'s browser file probes `WebSocket`, `MozWebSocket`, `global`, `window` and `self` in
 * turn; every browser this targets (chrome120) has the first one, so the bundles take the global
 * directly. Same value, ~250 bytes less in the service-worker bundle.
 */
const globalWebSocket = {
  name: 'global-websocket',
  setup(b) {
    b.onResolve({ filter: /^isomorphic-ws$/ }, () => ({ path: 'isomorphic-ws', namespace: 'global-websocket' }))
    b.onLoad({ filter: /.*/, namespace: 'global-websocket' }, () => ({ contents: 'export default globalThis.WebSocket', loader: 'js' }))
  },
}

/**
 * frp's NAT hole punching (xtcp) message layouts (core `msg/nat-hole-schema.ts`) become empty
 * tables: a browser client has no xtcp, so it neither sends those messages nor expects them, and its
 * codec then rejects their type bytes like any unknown one (ERR_MSG_PROTOCOL). ~0.5 KB.
 */
const withoutNatHole = {
  name: 'without-nat-hole',
  setup(b) {
    b.onResolve({ filter: /^\.\/nat-hole-schema\.js$/ }, (a) =>
      /[\\/]core[\\/]src[\\/]msg$/.test(a.resolveDir) ? { path: 'nat-hole-schema', namespace: 'without-nat-hole' } : undefined,
    )
    b.onLoad({ filter: /.*/, namespace: 'without-nat-hole' }, () => ({
      contents: "export const DETECT_BEHAVIOR_LAYOUT = '', PORTS_RANGE_LAYOUT = '', NAT_HOLE_LAYOUTS = {}",
      loader: 'js',
    }))
  },
}

const common = {
  entryPoints: [join(pkg, 'src/index.ts')],
  bundle: true,
  platform: 'browser',
  target: 'chrome120',
  // The workspace packages are bundled from their TypeScript sources (no prior tsc -b needed).
  conditions: ['wsfrp-source'],
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
  // Private class members are named `_name` in client-web and core (TypeScript `private`), so they
  // can be shortened like local names; that saves ~8 KB of the service-worker bundle. Never start
  // a property that leaves the bundle (public API, postMessage data, JSON, DOM) with `_`.
  mangleProps: /^_[A-Za-z]/,
  plugins: [globalWebSocket, withoutNatHole],
}

const outputs = [
  { file: 'wsfrp.js', format: 'esm' },
  { file: 'wsfrp-sw.js', format: 'iife', globalName: 'wsfrp', entry: 'src/sw/worker-entry.ts' },
  { file: 'wsfrp-page.js', format: 'esm', entry: 'src/sw/page.ts' },
  { file: 'wsfrp-demo.js', format: 'esm', entry: 'src/demo/main.ts' },
]

let failed = false
for (const o of outputs) {
  const outfile = join(outdir, o.file)
  try {
    await build({ ...common, ...(o.entry ? { entryPoints: [join(pkg, o.entry)] } : {}), format: o.format, globalName: o.globalName, outfile })
  } catch {
    // esbuild already printed the errors.
    failed = true
    continue
  }
  const bytes = readFileSync(outfile)
  const gz = gzipSync(bytes, { level: 9 }).length
  const budget = o.format === 'iife' ? SW_BUDGET_BYTES : undefined
  const over = budget !== undefined && bytes.length > budget
  if (over) failed = true
  const label = relative(process.cwd(), outfile) || outfile
  console.log(
    `${label}: ${bytes.length} bytes minified, ${gz} gzip` +
      (budget !== undefined ? ` (budget ${budget}: ${over ? 'EXCEEDED' : 'ok'})` : ''),
  )
}
process.exit(failed ? 1 : 0)
