import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  DEFAULT_MAX_MESSAGE_SIZE,
  MESSAGE_HEADER_SIZE,
  MESSAGE_TYPE_BYTES,
  MessageReader,
  concatBytes,
  decodeMessage,
  encodeMessage,
  fromHex,
  isWsfrpError,
  type Message,
} from '@wsfrp/core'

const SAMPLE: Message[] = [
  {
    type: 'Login',
    version: '0.44.0',
    os: 'linux',
    arch: 'amd64',
    privilege_key: '5be8914e28e14693cb670b58d73f4e1a',
    timestamp: 1795567290,
    pool_count: 1,
  },
  { type: 'LoginResp', version: '0.44.0', run_id: 'fa17996c3dc01fbf' },
  { type: 'ReqWorkConn' },
  { type: 'NewProxy', proxy_name: 'vector-web', proxy_type: 'http', custom_domains: ['test.local'] },
  { type: 'NewProxyResp', proxy_name: 'vector-web', remote_addr: 'test.local:17080' },
  { type: 'StartWorkConn', proxy_name: 'vector-tcp', src_addr: '127.0.0.1', dst_addr: '127.0.0.1', src_port: 35508, dst_port: 16000 },
  { type: 'Ping' },
  { type: 'Pong', error: 'ünïcödé 😀 <&>' },
  { type: 'UDPPacket', c: 'aGVsbG8=', r: { IP: '::1', Port: 53, Zone: 'eth0' } },
]

function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.min(Math.max(c, 0), bytes.length)))].sort((a, b) => a - b)
  const out: Uint8Array[] = []
  let prev = 0
  for (const p of points) {
    out.push(bytes.subarray(prev, p))
    prev = p
  }
  out.push(bytes.subarray(prev))
  return out
}

function readAll(chunks: Uint8Array[], reader = new MessageReader()): Message[] {
  const out: Message[] = []
  for (const c of chunks) out.push(...reader.push(c))
  assert.equal(reader.bufferedBytes, 0)
  return out
}

test('split at every byte: one cut anywhere in a stream of messages decodes the same', { timeout: 20_000 }, () => {
  const stream = concatBytes(SAMPLE.map((m) => encodeMessage(m)))
  for (let i = 0; i <= stream.length; i++) {
    assert.deepEqual(readAll(splitAt(stream, [i])), SAMPLE, `cut at ${i}`)
  }
  // One byte per push: every header and body is assembled from single bytes.
  const reader = new MessageReader()
  const out: Message[] = []
  for (let i = 0; i < stream.length; i++) {
    out.push(...reader.push(stream.subarray(i, i + 1)))
    if (i < stream.length - 1) assert.ok(reader.bufferedBytes <= MESSAGE_HEADER_SIZE + DEFAULT_MAX_MESSAGE_SIZE)
  }
  assert.deepEqual(out, SAMPLE)
})

test('split at every byte, two cuts, for the §14 Login frame', { timeout: 20_000 }, () => {
  const login = encodeMessage(SAMPLE[0]!)
  for (let i = 0; i <= login.length; i++) {
    for (let j = i; j <= login.length; j++) {
      assert.deepEqual(readAll(splitAt(login, [i, j])), [SAMPLE[0]])
    }
  }
})

test('checks run as soon as the bytes arrive: type byte alone, length without body', { timeout: 5_000 }, () => {
  const r1 = new MessageReader()
  assert.throws(() => r1.push(new Uint8Array([0x78])), (e) => isWsfrpError(e, 'ERR_MSG_PROTOCOL'))
  const r2 = new MessageReader()
  // 'o' and a length of 10,241: rejected after 9 bytes, nothing of the body needed.
  assert.deepEqual(r2.push(fromHex('6f000000')), [])
  assert.throws(() => r2.push(fromHex('0000002801')), (e) => isWsfrpError(e, 'ERR_MSG_TOO_LARGE'))
  const r3 = new MessageReader()
  assert.throws(() => r3.push(fromHex('6fffffffffffffffff')), (e) => isWsfrpError(e, 'ERR_MSG_TOO_LARGE'))
})

test('after an error the reader stays failed with the same error', { timeout: 5_000 }, () => {
  const r = new MessageReader()
  let first: unknown
  try {
    r.push(fromHex('7200000000000000027b7d' + '99'))
  } catch (err) {
    first = err
  }
  assert.ok(isWsfrpError(first, 'ERR_MSG_PROTOCOL'))
  assert.throws(() => r.push(fromHex('7200000000000000027b7d')), (e) => e === first)
  assert.throws(() => r.pushOne(fromHex('72')), (e) => e === first)
})

test('a zero-length body is an error (empty JSON), as in Go', { timeout: 5_000 }, () => {
  assert.throws(() => new MessageReader().push(fromHex('720000000000000000')), (e) => isWsfrpError(e, 'ERR_MSG_PROTOCOL'))
  const r = new MessageReader()
  r.push(fromHex('7200000000'))
  assert.throws(() => r.push(fromHex('00000000')), (e) => isWsfrpError(e, 'ERR_MSG_PROTOCOL'))
})

test('pushOne returns the first message and the rest of the chunk as a view', { timeout: 5_000 }, () => {
  const msg = encodeMessage(SAMPLE[5]!)
  const raw = new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n')
  const chunk = concatBytes([msg, raw, encodeMessage({ type: 'Ping' })])
  const r = new MessageReader()
  const one = r.pushOne(chunk)
  assert.deepEqual(one.msg, SAMPLE[5])
  assert.equal(one.rest.buffer, chunk.buffer) // no copy
  assert.equal(one.rest.byteOffset, chunk.byteOffset + msg.length)
  assert.equal(one.rest.length, chunk.length - msg.length)
  assert.equal(r.bufferedBytes, 0)

  // Across chunks: nothing until the message completes, then the rest of the completing chunk.
  const r2 = new MessageReader()
  const a = r2.pushOne(msg.subarray(0, 20))
  assert.equal(a.msg, undefined)
  assert.equal(a.rest.length, 0)
  assert.equal(r2.bufferedBytes, 20)
  const b = r2.pushOne(concatBytes([msg.subarray(20), raw]))
  assert.deepEqual(b.msg, SAMPLE[5])
  assert.deepEqual(b.rest, raw)
  // Exactly one message: rest is empty.
  assert.equal(new MessageReader().pushOne(msg).rest.length, 0)
})

test('a message wholly inside a chunk holds no buffer; a partial one holds exactly its bytes', { timeout: 5_000 }, () => {
  const msg = encodeMessage(SAMPLE[3]!)
  const r = new MessageReader()
  assert.deepEqual(r.push(concatBytes([msg, msg.subarray(0, 4)])), [SAMPLE[3]])
  assert.equal(r.bufferedBytes, 4)
  assert.deepEqual(r.push(msg.subarray(4, 30)), [])
  assert.equal(r.bufferedBytes, 30)
  assert.deepEqual(r.push(msg.subarray(30)), [SAMPLE[3]])
  assert.equal(r.bufferedBytes, 0)
})

// ---- properties ----

const str = fc.string({ unit: 'binary', minLength: 1, maxLength: 12 })
const int = fc.oneof(fc.integer({ min: 1, max: 2 ** 31 }), fc.integer({ min: -(2 ** 31), max: -1 }), fc.constant(Number.MAX_SAFE_INTEGER))
const port = fc.integer({ min: 1, max: 65535 })
const strMap = fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 8 }), {
  minKeys: 1,
  maxKeys: 4,
  noNullPrototype: true,
})
const strList = fc.array(fc.string({ unit: 'binary', maxLength: 8 }), { minLength: 1, maxLength: 4 })
const yes = fc.constant(true)
function rec<T extends Record<string, fc.Arbitrary<unknown>>>(type: string, model: T): fc.Arbitrary<Message> {
  return fc
    .record(model, { requiredKeys: [], noNullPrototype: true })
    .map((fields) => ({ type, ...fields }) as unknown as Message)
}
const udpAddr = fc.record(
  { IP: fc.string({ maxLength: 20 }), Port: fc.integer({ min: 0, max: 65535 }), Zone: fc.string({ maxLength: 4 }) },
  { noNullPrototype: true },
)

/** Messages in normal form: only non-zero values, since zero values are omitted on the wire. */
const messageArb: fc.Arbitrary<Message> = fc.oneof(
  rec('Login', {
    version: str, hostname: str, os: str, arch: str, user: str, privilege_key: str, timestamp: int, run_id: str,
    client_id: str, metas: strMap, client_spec: fc.record({ type: str, always_auth_pass: yes }, { requiredKeys: [], noNullPrototype: true }),
    pool_count: int,
  }),
  rec('LoginResp', { version: str, run_id: str, server_udp_port: int, error: str }),
  rec('NewProxy', {
    proxy_name: str, proxy_type: str, use_encryption: yes, use_compression: yes, bandwidth_limit: str, group: str,
    metas: strMap, annotations: strMap, remote_port: int, custom_domains: strList, locations: strList, headers: strMap,
    sk: str, allow_users: strList, multiplexer: str,
  }),
  rec('NewProxyResp', { proxy_name: str, remote_addr: str, error: str }),
  rec('CloseProxy', { proxy_name: str }),
  rec('NewWorkConn', { run_id: str, privilege_key: str, timestamp: int }),
  rec('ReqWorkConn', {}),
  rec('StartWorkConn', { proxy_name: str, src_addr: str, dst_addr: str, src_port: port, dst_port: port, error: str }),
  rec('NewVisitorConn', { run_id: str, proxy_name: str, sign_key: str, timestamp: int, use_encryption: yes, use_compression: yes }),
  rec('NewVisitorConnResp', { proxy_name: str, error: str }),
  rec('Ping', { privilege_key: str, timestamp: int }),
  rec('Pong', { error: str }),
  rec('UDPPacket', { c: fc.base64String({ minLength: 4, maxLength: 16 }).filter((s) => s.length > 0), l: udpAddr, r: udpAddr }),
  rec('NatHoleVisitor', { transaction_id: str, proxy_name: str, pre_check: yes, sign_key: str, timestamp: int, mapped_addrs: strList }),
  rec('NatHoleClient', { transaction_id: str, proxy_name: str, sid: str, assisted_addrs: strList }),
  rec('NatHoleResp', {
    sid: str, visitor_addr: str, client_addr: str, candidate_addrs: strList, error: str,
    detect_behavior: fc.record(
      {
        role: str, mode: int, read_timeout: int,
        candidate_ports: fc.array(fc.record({ from: port, to: port }, { requiredKeys: [], noNullPrototype: true }), { minLength: 1, maxLength: 3 }),
      },
      { requiredKeys: [], noNullPrototype: true },
    ),
  }),
  rec('NatHoleClientDetectOK', {}),
  rec('NatHoleSid', { transaction_id: str, sid: str, response: yes, nonce: str }),
  rec('NatHoleReport', { sid: str, success: yes }),
)

test('property: encode → decode round-trips every message', { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(messageArb, (m) => {
      assert.deepEqual(decodeMessage(encodeMessage(m)), m)
    }),
    { numRuns: 2000 },
  )
})

test('property: any split of a valid message stream decodes to the same messages', { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(
      fc.array(messageArb, { minLength: 1, maxLength: 6 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (msgs, cuts) => {
        const stream = concatBytes(msgs.map((m) => encodeMessage(m)))
        const chunks = splitAt(stream, cuts.map((c) => c % (stream.length + 1)))
        assert.deepEqual(readAll(chunks), msgs)
        // The same through pushOne, re-feeding the rest each time.
        const r = new MessageReader()
        const out: Message[] = []
        for (const c of chunks) {
          let rest = c
          do {
            const one = r.pushOne(rest)
            if (one.msg !== undefined) out.push(one.msg)
            rest = one.rest
          } while (rest.length > 0)
        }
        assert.deepEqual(out, msgs)
      },
    ),
    { numRuns: 1000 },
  )
})

/** Byte strings that get past the first checks often: valid type byte, small length, JSON-ish body. */
const nearlyValidFrame = fc
  .tuple(
    fc.constantFrom(...Object.values(MESSAGE_TYPE_BYTES), 0x00, 0x7b),
    fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: -5, max: 20_000 })),
    fc.oneof(fc.json().map((s) => new TextEncoder().encode(s)), fc.uint8Array({ maxLength: 64 })),
  )
  .map(([t, len, body]) => {
    const out = new Uint8Array(MESSAGE_HEADER_SIZE + body.length)
    out[0] = t
    new DataView(out.buffer).setBigInt64(1, BigInt(len))
    out.set(body, MESSAGE_HEADER_SIZE)
    return out
  })

test('property: arbitrary bytes only ever raise the typed errors, with bounded buffering', { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.uint8Array({ maxLength: 40 }), nearlyValidFrame), { maxLength: 5 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      fc.integer({ min: 2, max: 100 }),
      (parts, cuts, max) => {
        const stream = concatBytes(parts)
        const r = new MessageReader({ maxMessageSize: max })
        try {
          for (const c of splitAt(stream, cuts.map((x) => x % (stream.length + 1)))) {
            r.push(c)
            assert.ok(r.bufferedBytes <= MESSAGE_HEADER_SIZE + max)
          }
        } catch (err) {
          assert.ok(isWsfrpError(err, 'ERR_MSG_PROTOCOL') || isWsfrpError(err, 'ERR_MSG_TOO_LARGE'), String(err))
        }
      },
    ),
    { numRuns: 3000 },
  )
})
