import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'

// docs/ERRORS.md is part of the API: every code in the ErrorCode union must be documented there,
// and nothing documented may be missing from the union.
test('docs/ERRORS.md lists exactly the codes of ErrorCode', { timeout: 5000 }, () => {
  const src = readFileSync(new URL('../src/errors.ts', import.meta.url), 'utf8')
  const union = src.slice(src.indexOf('export type ErrorCode'), src.indexOf('export class'))
  const codes = new Set([...union.matchAll(/'(ERR_[A-Z0-9_]+)'/g)].map((m) => m[1]!))
  assert.ok(codes.size > 10, 'the union was found')
  const doc = readFileSync(new URL('../../../docs/ERRORS.md', import.meta.url), 'utf8')
  const documented = new Set([...doc.matchAll(/^\| `(ERR_[A-Z0-9_]+)`/gm)].map((m) => m[1]!))
  assert.deepEqual([...codes].filter((c) => !documented.has(c)), [], 'codes missing from docs/ERRORS.md')
  assert.deepEqual([...documented].filter((c) => !codes.has(c)), [], 'documented codes that do not exist')
})
