import { test } from 'node:test'
import assert from 'node:assert/strict'
import { validateClientConfig } from '@wsfrp/core'
import { originFor, redactUrl, serverUrlFor } from '@wsfrp/client-node'
import { describeRemote, remotePortOf } from '../src/url.js'

const T = { timeout: 5_000 }

test('default URL: ws://serverAddr:serverPort/~!frp', T, () => {
  assert.equal(serverUrlFor(validateClientConfig({})), 'ws://127.0.0.1:7000/~!frp')
  assert.equal(serverUrlFor(validateClientConfig({ serverAddr: 'frp.example.com', serverPort: 443 })), 'ws://frp.example.com:443/~!frp')
})

test('transport.protocol = "wss" gives wss://', T, () => {
  const cfg = validateClientConfig({ serverAddr: 'frp.example.com', serverPort: 8443, transport: { protocol: 'wss' } })
  assert.equal(serverUrlFor(cfg), 'wss://frp.example.com:8443/~!frp')
})

test('serverURL wins over serverAddr/serverPort/protocol, any path is kept, none gets /~!frp', T, () => {
  const base = { serverAddr: 'ignored.example', serverPort: 1, transport: { protocol: 'wss' } }
  assert.equal(serverUrlFor(validateClientConfig({ ...base, serverURL: 'ws://10.0.0.1:9000/tunnel/x' })), 'ws://10.0.0.1:9000/tunnel/x')
  assert.equal(serverUrlFor(validateClientConfig({ ...base, serverURL: 'wss://t.example.com' })), 'wss://t.example.com/~!frp')
})

test('an IPv6 serverAddr is bracketed', T, () => {
  assert.equal(serverUrlFor(validateClientConfig({ serverAddr: '::1', serverPort: 7000 })), 'ws://[::1]:7000/~!frp')
})

test('credentials never reach logs; Origin is http://host[:port] also for wss', T, () => {
  assert.equal(redactUrl('wss://user:p%40ss@t.example.com:8443/~!frp'), 'wss://t.example.com:8443/~!frp')
  assert.equal(redactUrl('ws://127.0.0.1:7000/~!frp'), 'ws://127.0.0.1:7000/~!frp')
  assert.equal(originFor('wss://user:pw@t.example.com:8443/~!frp'), 'http://t.example.com:8443')
  assert.equal(originFor('ws://t.example.com/~!frp'), 'http://t.example.com')
})

test('remote addresses: tcp ":port" gets the server host, http domains become URLs', T, () => {
  assert.equal(describeRemote('tcp', ':6000', 'frp.example.com'), 'frp.example.com:6000')
  assert.equal(describeRemote('tcp', '0.0.0.0:6000', 'frp.example.com'), '0.0.0.0:6000')
  assert.equal(describeRemote('http', 'a.example.com,b.example.com:8080', 'x'), 'http://a.example.com, http://b.example.com:8080')
  assert.equal(remotePortOf(':6000'), 6000)
  assert.equal(remotePortOf('[::]:6001'), 6001)
  assert.equal(remotePortOf('a.example.com'), undefined)
  assert.equal(remotePortOf(':0'), undefined)
})
