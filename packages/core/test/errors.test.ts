import { test } from 'node:test'
import assert from 'node:assert/strict'
import { WsfrpError, isWsfrpError } from '@wsfrp/core'

test('isWsfrpError is false for a plain Error and true only for the matching code', () => {
  assert.equal(isWsfrpError(new Error('x')), false)
  assert.equal(isWsfrpError({ code: 'ERR_MUX_PROTOCOL' }), false)
  const e = new WsfrpError('ERR_MUX_PROTOCOL', 'bad frame')
  assert.equal(isWsfrpError(e), true)
  assert.equal(isWsfrpError(e, 'ERR_MUX_PROTOCOL'), true)
  assert.equal(isWsfrpError(e, 'ERR_AUTH'), false)
  assert.ok(e instanceof Error)
})

test('the brand makes instanceof work for look-alike copies', () => {
  const brand = Symbol.for('wsfrp.error')
  const foreign = Object.assign(new Error('copy'), { code: 'ERR_AUTH', [brand]: true })
  assert.ok(foreign instanceof WsfrpError)
})
