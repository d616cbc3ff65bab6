import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MESSAGE_TYPE_BYTES, messageTypeOf, encodeMessage, type Message, type MessageType } from '@wsfrp/core'

// The v1 type bytes are the wire format (frp@v0.44.0:pkg/msg/msg.go:19-61,
// frp@v0.70.1:pkg/msg/msg.go:22-62; wire doc §5.2). Written out as characters on purpose, so that
// changing a byte in the source fails here.
const PINNED: Record<MessageType, string> = {
  Login: 'o',
  LoginResp: '1',
  NewProxy: 'p',
  NewProxyResp: '2',
  CloseProxy: 'c',
  NewWorkConn: 'w',
  ReqWorkConn: 'r',
  StartWorkConn: 's',
  NewVisitorConn: 'v',
  NewVisitorConnResp: '3',
  Ping: 'h',
  Pong: '4',
  UDPPacket: 'u',
  NatHoleVisitor: 'i',
  NatHoleClient: 'n',
  NatHoleResp: 'm',
  NatHoleClientDetectOK: 'd',
  NatHoleSid: '5',
  NatHoleReport: '6',
}

test('every message type has frp’s type byte', { timeout: 5_000 }, () => {
  assert.deepEqual(Object.keys(MESSAGE_TYPE_BYTES).sort(), Object.keys(PINNED).sort())
  for (const [name, ch] of Object.entries(PINNED) as [MessageType, string][]) {
    assert.equal(MESSAGE_TYPE_BYTES[name], ch.charCodeAt(0), name)
    assert.equal(messageTypeOf(ch.charCodeAt(0)), name)
    // The encoder writes the same byte.
    assert.equal(encodeMessage({ type: name } as Message)[0], ch.charCodeAt(0), name)
  }
})

test('type bytes are distinct and no other byte maps to a type', { timeout: 5_000 }, () => {
  const bytes = new Set(Object.values(MESSAGE_TYPE_BYTES))
  assert.equal(bytes.size, Object.keys(PINNED).length)
  for (let b = 0; b < 256; b++) {
    if (!bytes.has(b)) assert.equal(messageTypeOf(b), undefined, `byte ${b}`)
  }
  assert.equal(messageTypeOf(-1), undefined)
  assert.equal(messageTypeOf(256), undefined)
  assert.ok(Object.isFrozen(MESSAGE_TYPE_BYTES))
})
