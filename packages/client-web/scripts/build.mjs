#!/usr/bin/env node
// Bundles @wsfrp/client-web for browsers with esbuild:
//   dist-bundle/wsfrp.js     ESM, for pages and module workers (import { connect } from './wsfrp.js')
//   dist-bundle/wsfrp-sw.js  IIFE setting `globalThis.wsfrp`, for classic service workers (importScripts);
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
 * frp's NAT hole punching (xtcp), visitor and UDP message layouts (core `msg/nat-hole-schema.ts`,
 * `msg/visitor-schema.ts`) become empty tables: a browser client has no xtcp, no visitors and no udp
 * proxies, so it neither sends those messages nor expects them, and its codec then rejects their
 * type bytes like any unknown one (ERR_MSG_PROTOCOL). NewProxy (`msg/new-proxy-schema.ts`) keeps only
 * the fields a browser proxy sets (client.ts toClientProxy; a test checks the two agree), in the
 * core's order, read from the core's module so that they cannot drift apart. ~0.8 KB in all.
 */
const BROWSER_NEW_PROXY_FIELDS = [
  'proxy_name', 'proxy_type', 'use_encryption', 'metas', 'remote_port', 'custom_domains', 'subdomain', 'locations', 'http_user', 'http_pwd', 'host_header_rewrite',
]
const msgDir = resolve(pkg, '../core/src/msg')
function browserNewProxyLayout() {
  const m = /NEW_PROXY_LAYOUT =\s*'([^']*)'/.exec(readFileSync(join(msgDir, 'new-proxy-schema.ts'), 'utf8'))
  if (!m) throw new Error('NEW_PROXY_LAYOUT not found in core/src/msg/new-proxy-schema.ts')
  const [typeByte, ...fields] = m[1].split(' ')
  const kept = fields.filter((f) => BROWSER_NEW_PROXY_FIELDS.includes(f.split(':')[0]))
  if (kept.length !== BROWSER_NEW_PROXY_FIELDS.length) throw new Error('a browser NewProxy field is missing from NEW_PROXY_LAYOUT')
  return [typeByte, ...kept].join(' ')
}
const STUBS = {
  'nat-hole-schema': () => "export const DETECT_BEHAVIOR_LAYOUT = '', PORTS_RANGE_LAYOUT = '', NAT_HOLE_LAYOUTS = {}",
  'visitor-schema': () => "export const UDP_ADDR_LAYOUT = '', VISITOR_LAYOUTS = {}",
  'new-proxy-schema': () => `export const NEW_PROXY_LAYOUT = ${JSON.stringify(browserNewProxyLayout())}`,
}
const withoutNatHole = {
  name: 'browser-message-layouts',
  setup(b) {
    b.onResolve({ filter: /^\.\/(nat-hole|visitor|new-proxy)-schema\.js$/ }, (a) =>
      resolve(a.resolveDir) === msgDir ? { path: a.path.slice(2, -3), namespace: 'browser-message-layouts' } : undefined,
    )
    b.onLoad({ filter: /.*/, namespace: 'browser-message-layouts' }, (a) => ({ contents: STUBS[a.path](), loader: 'js' }))
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

/**
 * The service-worker bundle's entry: `globalThis.wsfrp = { …every export of src/sw/worker-entry.ts }`.
 * esbuild's `globalName` would build that object as a CommonJS-style module record (a getter per
 * export plus the __export / __toCommonJS helpers, ~0.5 KB); a plain object holds the same values.
 * The names come from the module itself, so an export added to the entry cannot be missed here.
 */
async function swEntry() {
  const r = await build({ ...common, entryPoints: [join(pkg, 'src/sw/worker-entry.ts')], format: 'esm', minify: false, write: false, outdir })
  const names = Object.values(r.metafile.outputs).flatMap((o) => o.exports)
  if (names.length === 0) throw new Error('src/sw/worker-entry.ts exports nothing')
  return {
    contents: `import { ${names.join(', ')} } from './worker-entry.ts'\nglobalThis.wsfrp = { ${names.join(', ')} }\n`,
    resolveDir: join(pkg, 'src/sw'),
    sourcefile: 'wsfrp-sw-entry.ts',
    loader: 'ts',
  }
}

const outputs = [
  { file: 'wsfrp.js', format: 'esm' },
  // The banner keeps the whole script strict, as it was with `globalName` (esbuild adds the directive
  // only for a TypeScript entry file under the strict tsconfig, not for a generated one).
  { file: 'wsfrp-sw.js', format: 'iife', stdin: swEntry, banner: { js: '"use strict";' } },
  { file: 'wsfrp-page.js', format: 'esm', entry: 'src/sw/page.ts' },
  { file: 'wsfrp-demo.js', format: 'esm', entry: 'src/demo/main.ts' },
]

let failed = false
for (const o of outputs) {
  const outfile = join(outdir, o.file)
  try {
    const entry = o.stdin ? { entryPoints: undefined, stdin: await o.stdin() } : o.entry ? { entryPoints: [join(pkg, o.entry)] } : {}
    await build({ ...common, ...entry, format: o.format, banner: o.banner, outfile })
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
