import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  DEFAULT_MAX_MESSAGE_SIZE,
  MESSAGE_HEADER_SIZE,
  decodeMessage,
  decodeMessageBody,
  encodeMessage,
  encodeMessageBody,
  fromHex,
  isWsfrpError,
  toHex,
  type ErrorCode,
  type Message,
} from '@wsfrp/core'

const enc = new TextEncoder()

/** A frame with any type byte, length field and body. */
function frame(typeChar: string, body: string | Uint8Array, length?: bigint): Uint8Array {
  const b = typeof body === 'string' ? enc.encode(body) : body
  const out = new Uint8Array(MESSAGE_HEADER_SIZE + b.length)
  out[0] = typeChar.charCodeAt(0)
  new DataView(out.buffer).setBigInt64(1, length ?? BigInt(b.length))
  out.set(b, MESSAGE_HEADER_SIZE)
  return out
}

function throwsCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isWsfrpError(err, code), `expected ${code}, got ${String(err)}`)
    return true
  })
}

// Wire doc §14.
const LOGIN_14 =
  '{"version":"0.44.0","os":"linux","arch":"amd64","privilege_key":"0537ef113282c8d47f39f43f72db6e77","timestamp":1700000000,"pool_count":1}'

test('§14 vector: Login frame, byte for byte', { timeout: 5_000 }, () => {
  const bytes = encodeMessage({
    type: 'Login',
    // Set in a different order than frp's struct on purpose: the encoder must restore frp's order.
    pool_count: 1,
    timestamp: 1700000000,
    privilege_key: '0537ef113282c8d47f39f43f72db6e77',
    arch: 'amd64',
    os: 'linux',
    version: '0.44.0',
  })
  assert.equal(LOGIN_14.length, 0x89)
  assert.equal(toHex(bytes.subarray(0, 9)), '6f' + '0000000000000089')
  assert.equal(toHex(bytes), '6f0000000000000089' + toHex(enc.encode(LOGIN_14)))
  assert.deepEqual(decodeMessage(bytes), {
    type: 'Login',
    version: '0.44.0',
    os: 'linux',
    arch: 'amd64',
    privilege_key: '0537ef113282c8d47f39f43f72db6e77',
    timestamp: 1700000000,
    pool_count: 1,
  })
})

test('§14 vector: ReqWorkConn frame', { timeout: 5_000 }, () => {
  assert.equal(toHex(encodeMessage({ type: 'ReqWorkConn' })), '72' + '0000000000000002' + '7b7d')
  assert.deepEqual(decodeMessage(fromHex('7200000000000000027b7d')), { type: 'ReqWorkConn' })
})

test('omitempty: zero values are left out, set values kept', { timeout: 5_000 }, () => {
  assert.equal(
    encodeMessageBody({
      type: 'NewProxy',
      proxy_name: 'web',
      proxy_type: '',
      use_encryption: false,
      use_compression: true,
      remote_port: 0,
      custom_domains: [],
      headers: {},
      metas: { b: '', a: 'x' },
      locations: [''],
    }),
    '{"proxy_name":"web","use_compression":true,"metas":{"a":"x","b":""},"locations":[""]}',
  )
  assert.equal(encodeMessageBody({ type: 'Pong', error: '' }), '{}')
  // undefined and null count as unset.
  assert.equal(encodeMessageBody({ type: 'Pong', error: undefined }), '{}')
})

test('every field is written in frp struct order (union of v0.44 and v0.70)', { timeout: 5_000 }, () => {
  const body = encodeMessageBody({
    type: 'NewProxy',
    multiplexer: 'httpconnect',
    allow_users: ['u'],
    sk: 'k',
    route_by_http_user: 'r',
    response_headers: { X: '1' },
    headers: { Y: '2' },
    host_header_rewrite: 'h',
    http_pwd: 'p',
    http_user: 'u',
    locations: ['/'],
    subdomain: 's',
    custom_domains: ['d'],
    remote_port: 1,
    annotations: { a: 'b' },
    metas: { m: 'n' },
    group_key: 'gk',
    group: 'g',
    bandwidth_limit_mode: 'server',
    bandwidth_limit: '1MB',
    use_compression: true,
    use_encryption: true,
    proxy_type: 'tcp',
    proxy_name: 'x',
  })
  const keys = Object.keys(JSON.parse(body) as object)
  assert.deepEqual(keys, [
    'proxy_name', 'proxy_type', 'use_encryption', 'use_compression', 'bandwidth_limit', 'bandwidth_limit_mode',
    'group', 'group_key', 'metas', 'annotations', 'remote_port', 'custom_domains', 'subdomain', 'locations',
    'http_user', 'http_pwd', 'host_header_rewrite', 'headers', 'response_headers', 'route_by_http_user', 'sk',
    'allow_users', 'multiplexer',
  ])
  const login = encodeMessageBody({
    type: 'Login',
    pool_count: 2,
    client_spec: { always_auth_pass: true, type: 'ssh-tunnel' },
    metas: { k: 'v' },
    client_id: 'c',
    run_id: 'r',
    timestamp: 5,
    privilege_key: 'p',
    user: 'u',
    arch: 'a',
    os: 'o',
    hostname: 'h',
    version: 'v',
  })
  assert.equal(
    login,
    '{"version":"v","hostname":"h","os":"o","arch":"a","user":"u","privilege_key":"p","timestamp":5,"run_id":"r",' +
      '"client_id":"c","metas":{"k":"v"},"client_spec":{"type":"ssh-tunnel","always_auth_pass":true},"pool_count":2}',
  )
})

test('strings are escaped like Go encoding/json (HTML-safe), map keys sorted by code point', { timeout: 5_000 }, () => {
  assert.equal(
    encodeMessageBody({ type: 'Pong', error: 'a<b>&"c"\\\n\u2028\u2029\u0001é' }),
    '{"error":"a\\u003cb\\u003e\\u0026\\"c\\"\\\\\\n\\u2028\\u2029\\u0001é"}',
  )
  // UTF-16 order would put U+1F600 (surrogates D83D…) before U+FF21; UTF-8 / code point order after.
  assert.equal(
    encodeMessageBody({ type: 'Login', metas: { '\u{1F600}': '1', '\uFF21': '2', b: '3', a: '4', A: '5' } }),
    '{"metas":{"A":"5","a":"4","b":"3","\uFF21":"2","\u{1F600}":"1"}}',
  )
  // The length counts UTF-8 bytes.
  const bytes = encodeMessage({ type: 'Pong', error: 'é€😀' })
  assert.equal(bytes[8], enc.encode('{"error":"é€😀"}').length)
})

test('nested and Go-untagged structs: UDPPacket and NatHoleResp', { timeout: 5_000 }, () => {
  // net.UDPAddr has no omitempty: all three fields are always written (wire doc §5.3).
  assert.equal(
    encodeMessageBody({ type: 'UDPPacket', c: 'aGk=', r: { IP: '203.0.113.5', Port: 5353 } }),
    '{"c":"aGk=","r":{"IP":"203.0.113.5","Port":5353,"Zone":""}}',
  )
  const m: Message = {
    type: 'NatHoleResp',
    transaction_id: 't',
    sid: 's',
    detect_behavior: { role: 'sender', candidate_ports: [{ from: 1, to: 2 }, {}], ttl: 7 },
    error: 'e',
  }
  const body = encodeMessageBody(m)
  assert.equal(
    body,
    '{"transaction_id":"t","sid":"s","detect_behavior":{"role":"sender","ttl":7,"candidate_ports":[{"from":1,"to":2},{}]},"error":"e"}',
  )
  assert.deepEqual(decodeMessageBody(0x6d, enc.encode(body)), m)
})

test('decoding: unknown fields ignored, case-insensitive keys, exact match preferred, null = unset', { timeout: 5_000 }, () => {
  const msg = decodeMessage(
    frame('s', '{"Proxy_Name":"a","SRC_ADDR":"1.2.3.4","src_port":80,"nope":[1,{"x":2}],"type":"Login","error":null}'),
  )
  assert.deepEqual(msg, { type: 'StartWorkConn', proxy_name: 'a', src_addr: '1.2.3.4', src_port: 80 })
  // Go: later keys overwrite earlier ones, whichever spelling.
  assert.deepEqual(decodeMessage(frame('4', '{"error":"x","ERROR":"y"}')), { type: 'Pong', error: 'y' })
  // null inside maps and string lists becomes "" (Go's zero value).
  assert.deepEqual(decodeMessage(frame('p', '{"metas":{"a":null},"locations":[null,"/"]}')), {
    type: 'NewProxy',
    metas: { a: '' },
    locations: ['', '/'],
  })
  // A key named __proto__ in a map is plain data.
  const p = decodeMessage(frame('p', '{"headers":{"__proto__":"x"}}')) as { headers: Record<string, string> }
  assert.equal(Object.getPrototypeOf(p.headers), Object.prototype)
  assert.deepEqual(Object.keys(p.headers), ['__proto__'])
})

test('decoding: wrong JSON types, bad JSON and non-objects are ERR_MSG_PROTOCOL', { timeout: 5_000 }, () => {
  for (const [t, body] of [
    ['o', '{"timestamp":"1"}'],
    ['o', '{"timestamp":1.5}'],
    ['o', '{"timestamp":1e300}'],
    ['o', '{"version":1}'],
    ['p', '{"use_encryption":"true"}'],
    ['p', '{"metas":{"a":1}}'],
    ['p', '{"metas":[]}'],
    ['p', '{"custom_domains":"a"}'],
    ['p', '{"custom_domains":[1]}'],
    ['s', '{"src_port":65536}'],
    ['s', '{"src_port":-1}'],
    ['u', '{"r":"1.2.3.4"}'],
    ['u', '{"r":{"Port":"1"}}'],
    ['m', '{"detect_behavior":{"candidate_ports":[1]}}'],
    ['o', ''],
    ['o', '{'],
    ['o', '{}x'],
    ['o', '[]'],
    ['o', 'null'],
    ['o', '"s"'],
    ['o', '\uFEFF{}'], // Go rejects a BOM; TextDecoder must not strip it.
  ] as const) {
    throwsCode(() => decodeMessage(frame(t, body)), 'ERR_MSG_PROTOCOL')
  }
  // Invalid UTF-8 inside a string decodes to U+FFFD, as in Go.
  const bad = new Uint8Array([...enc.encode('{"error":"'), 0xff, ...enc.encode('"}')])
  assert.deepEqual(decodeMessage(frame('4', bad)), { type: 'Pong', error: '\uFFFD' })
})

test('frames: unknown type byte, bad lengths, size limits on read and write', { timeout: 5_000 }, () => {
  throwsCode(() => decodeMessage(frame('x', '{}')), 'ERR_MSG_PROTOCOL')
  throwsCode(() => decodeMessage(frame('\0', '{}')), 'ERR_MSG_PROTOCOL')
  throwsCode(() => decodeMessage(new Uint8Array(0)), 'ERR_MSG_PROTOCOL')
  throwsCode(() => decodeMessage(fromHex('7200000000')), 'ERR_MSG_PROTOCOL')
  throwsCode(() => decodeMessage(frame('r', '{}', 3n)), 'ERR_MSG_PROTOCOL') // announces more than there is
  throwsCode(() => decodeMessage(frame('r', '{} ', 2n)), 'ERR_MSG_PROTOCOL') // trailing byte
  throwsCode(() => decodeMessage(frame('r', '{}', -1n)), 'ERR_MSG_TOO_LARGE')
  throwsCode(() => decodeMessage(frame('r', '{}', -(2n ** 63n))), 'ERR_MSG_TOO_LARGE')
  throwsCode(() => decodeMessage(frame('r', '{}', 2n ** 32n + 2n)), 'ERR_MSG_TOO_LARGE')
  throwsCode(() => decodeMessage(frame('r', '{}', BigInt(DEFAULT_MAX_MESSAGE_SIZE + 1))), 'ERR_MSG_TOO_LARGE')

  // Exactly at the limit is fine, one byte over is not; on write as on read.
  const atLimit = { type: 'Pong', error: 'e'.repeat(DEFAULT_MAX_MESSAGE_SIZE - '{"error":""}'.length) } as const
  const bytes = encodeMessage(atLimit)
  assert.equal(bytes.length, MESSAGE_HEADER_SIZE + DEFAULT_MAX_MESSAGE_SIZE)
  assert.deepEqual(decodeMessage(bytes), atLimit)
  const over = { type: 'Pong', error: atLimit.error + 'e' } as const
  throwsCode(() => encodeMessage(over), 'ERR_MSG_TOO_LARGE')
  throwsCode(() => decodeMessage(frame('4', encodeMessageBody(over))), 'ERR_MSG_TOO_LARGE')
  // A raised limit lets it through both ways; a bad limit is a config error.
  const opts = { maxMessageSize: DEFAULT_MAX_MESSAGE_SIZE + 1 }
  assert.deepEqual(decodeMessage(encodeMessage(over, opts), opts), over)
  throwsCode(() => encodeMessage(over, { maxMessageSize: 0 }), 'ERR_CONFIG')
  throwsCode(() => decodeMessage(bytes, { maxMessageSize: 1.5 }), 'ERR_CONFIG')
  throwsCode(() => decodeMessage(bytes, { maxMessageSize: 2 ** 40 }), 'ERR_CONFIG')
})

test('encoding: invalid field values are ERR_MSG_PROTOCOL, never bad JSON', { timeout: 5_000 }, () => {
  const bad = [
    { type: 'Login', timestamp: 1.5 },
    { type: 'Login', timestamp: Number.NaN },
    { type: 'Login', timestamp: 2 ** 60 },
    { type: 'Login', version: 1 },
    { type: 'StartWorkConn', src_port: 70000 },
    { type: 'NewProxy', use_encryption: 'yes' },
    { type: 'NewProxy', metas: { a: 1 } },
    { type: 'NewProxy', custom_domains: 'a' },
    { type: 'UDPPacket', r: 'x' },
    { type: 'NatHoleResp', detect_behavior: { candidate_ports: [1] } },
  ]
  for (const m of bad) throwsCode(() => encodeMessage(m as unknown as Message), 'ERR_MSG_PROTOCOL')
  for (const type of ['Nope', 'toString', '__proto__']) {
    throwsCode(() => encodeMessage({ type } as unknown as Message), 'ERR_MSG_PROTOCOL')
  }
})
