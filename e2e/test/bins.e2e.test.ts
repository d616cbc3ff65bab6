/**
 * The installed commands, as a user runs them after `npm ci`: node_modules/.bin/wsfrps and
 * wsfrpc (linked by npm from packages/*\/bin, which run the dist bundles with the node flags of
 * their #! line). A bin that npm did not link, a bundle that was not built, or a #! line that env
 * cannot run fails here.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from '../src/process.js'

const run = promisify(execFile)

for (const [name, pkg] of [
  ['wsfrps', 'packages/server'],
  ['wsfrpc', 'packages/client-node'],
] as const) {
  test(`${name}: the linked bin runs the built bundle`, { timeout: 30_000 }, async () => {
    const version = (JSON.parse(readFileSync(join(ROOT, pkg, 'package.json'), 'utf8')) as { version: string }).version
    const { stdout } = await run(join(ROOT, 'node_modules', '.bin', name), ['--version'], { timeout: 20_000 })
    assert.match(stdout.trim(), new RegExp(`^(${name} )?${version.replaceAll('.', '\\.')}$`))
    const { stdout: help } = await run(join(ROOT, 'node_modules', '.bin', name), ['--help'], { timeout: 20_000 })
    assert.match(help, new RegExp(`^${name} `))
  })
}
