#!/usr/bin/env node
// npm run bench -- <name>...   (names: mux, tunnel, http, web, soak; none = all)
// Each benchmark prints its figures; its last line is the machine-readable summary.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const known = ['mux', 'tunnel', 'http', 'web', 'soak']
const names = process.argv.slice(2).filter((a) => !a.startsWith('-'))
const run = names.length ? names : known.filter((n) => existsSync(`${root}/bench/src/${n}.ts`))
// Benchmarks run the built, bundled programs (dist/*.mjs), as users do: build first so they are current.
const tsc = spawnSync(process.execPath, [`${root}/node_modules/typescript/bin/tsc`, '-b'], { cwd: root, stdio: 'inherit' })
if (tsc.status !== 0) process.exit(1)
const bundle = spawnSync(process.execPath, [`${root}/scripts/bundle-cli.mjs`], { cwd: root, stdio: 'inherit' })
if (bundle.status !== 0) process.exit(1)
let failed = false
for (const name of run) {
  const file = `${root}/bench/src/${name}.ts`
  if (!existsSync(file)) {
    console.error(`bench: unknown benchmark "${name}" (known: ${known.join(', ')})`)
    process.exit(2)
  }
  console.log(`== bench ${name}`)
  const r = spawnSync(process.execPath, ['--expose-gc', '--conditions=wsfrp-source', '--import', 'tsx', file], {
    cwd: root,
    stdio: 'inherit',
  })
  if (r.status !== 0) failed = true
}
process.exit(failed ? 1 : 0)
