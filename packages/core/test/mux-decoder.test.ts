import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { FrameDecoder, FrameType, Flag, encodeHeader, isWsfrpError, concatBytes, fromHex } from '@wsfrp/core'

interface Decoded {
  type: number
  flags: number
  streamId: number
  length: number
  payload?: number[]
}

function decodeAll(chunks: Uint8Array[], maxData = 1 << 20): Decoded[] {
  const out: Decoded[] = []
  let cur: Decoded | undefined
  const d = new FrameDecoder(
    {
      onFrame(type, flags, streamId, length) {
        const f: Decoded = { type, flags, streamId, length }
        if (type === FrameType.Data) {
          f.payload = []
          cur = f
        }
        out.push(f)
      },
      onPayload(chunk) {
        assert.ok(cur, 'payload without a data frame')
        for (const b of chunk) cur.payload!.push(b)
      },
      onPayloadEnd() {
        assert.ok(cur)
        assert.equal(cur.payload!.length, cur.length, 'payload length must match the header')
        cur = undefined
      },
    },
    maxData,
  )
  for (const c of chunks) d.push(c)
  return out
}

function frame(type: number, flags: number, id: number, payloadOrLen: Uint8Array | number): Uint8Array {
  if (typeof payloadOrLen === 'number') return encodeHeader(type, flags, id, payloadOrLen)
  return concatBytes([encodeHeader(type, flags, id, payloadOrLen.length), payloadOrLen])
}

const sample = concatBytes([
  frame(FrameType.WindowUpdate, Flag.SYN, 1, 0),
  frame(FrameType.Data, 0, 1, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])),
  frame(FrameType.Ping, Flag.SYN, 0, 0xdeadbeef),
  frame(FrameType.Data, Flag.FIN, 3, new Uint8Array(0)),
  frame(FrameType.Data, 0, 5, new Uint8Array(40).fill(7)),
  frame(FrameType.GoAway, 0, 0, 2),
  frame(FrameType.WindowUpdate, Flag.ACK | Flag.FIN, 0xfffffffe, 0x005c0000),
])

test('header layout matches the spec (frp ≥ 0.50 stream open vector, frp-wire-protocol.md §14)', { timeout: 5000 }, () => {
  assert.deepEqual(encodeHeader(FrameType.WindowUpdate, Flag.SYN, 1, 0x005c0000), fromHex('00 01 0001 00000001 005c0000'))
  assert.deepEqual(encodeHeader(FrameType.WindowUpdate, Flag.SYN, 1, 0), fromHex('00 01 0001 00000001 00000000'))
  assert.deepEqual([FrameType.Data, FrameType.WindowUpdate, FrameType.Ping, FrameType.GoAway], [0, 1, 2, 3])
  assert.deepEqual([Flag.SYN, Flag.ACK, Flag.FIN, Flag.RST], [1, 2, 4, 8])
})

test('a byte stream split at every position decodes to the same frames', { timeout: 20000 }, () => {
  const whole = decodeAll([sample])
  assert.equal(whole.length, 7)
  assert.deepEqual(whole[1]!.payload, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])
  assert.equal(whole[6]!.streamId, 0xfffffffe)
  assert.equal(whole[6]!.length, 0x005c0000)
  for (let i = 0; i <= sample.length; i++) {
    for (let j = i; j <= sample.length; j += 7) {
      const parts = [sample.subarray(0, i), sample.subarray(i, j), sample.subarray(j)]
      assert.deepEqual(decodeAll(parts), whole, `split at ${i}/${j}`)
    }
  }
  // one byte at a time
  assert.deepEqual(decodeAll([...sample].map((b) => new Uint8Array([b]))), whole)
})

const arbFrame = fc.oneof(
  fc.record({ type: fc.constant(FrameType.Data), flags: fc.integer({ min: 0, max: 15 }), id: fc.integer({ min: 0, max: 0xffffffff }), body: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ type: fc.constantFrom(FrameType.WindowUpdate, FrameType.Ping, FrameType.GoAway), flags: fc.integer({ min: 0, max: 15 }), id: fc.integer({ min: 0, max: 0xffffffff }), len: fc.integer({ min: 0, max: 0xffffffff }) }),
)

test('property: any split or merge of valid frames decodes identically', { timeout: 60000 }, () => {
  fc.assert(
    fc.property(fc.array(arbFrame, { minLength: 1, maxLength: 20 }), fc.array(fc.integer({ min: 0, max: 4000 }), { maxLength: 30 }), (frames, cuts) => {
      const bytes = concatBytes(frames.map((f) => ('body' in f ? frame(f.type, f.flags, f.id, f.body) : frame(f.type, f.flags, f.id, f.len))))
      const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
      const chunks: Uint8Array[] = []
      let prev = 0
      for (const p of points) {
        chunks.push(bytes.subarray(prev, p))
        prev = p
      }
      chunks.push(bytes.subarray(prev))
      const expected = decodeAll([bytes])
      assert.equal(expected.length, frames.length)
      assert.deepEqual(decodeAll(chunks), expected)
    }),
    { numRuns: 300 },
  )
})

test('property: arbitrary bytes only ever raise ERR_MUX_PROTOCOL', { timeout: 60000 }, () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }), (chunks) => {
      try {
        decodeAll(chunks, 1024)
      } catch (err) {
        assert.ok(isWsfrpError(err, 'ERR_MUX_PROTOCOL'), `unexpected error ${String(err)}`)
      }
    }),
    { numRuns: 2000 },
  )
})

test('bad version, unknown type and oversized data are protocol errors', { timeout: 5000 }, () => {
  const bad = (b: Uint8Array, re: RegExp) =>
    assert.throws(() => decodeAll([b], 100), (e: unknown) => isWsfrpError(e, 'ERR_MUX_PROTOCOL') && re.test((e as Error).message))
  bad(fromHex('01 00 0000 00000001 00000000'), /version 1/)
  // a default frpc ≥ 0.50 starts with a TLS ClientHello: say what to change
  bad(fromHex('16 03 01 0200 01 0001fc 0303 00'), /transport\.tls\.enable = false/)
  bad(fromHex('17 16 03 01 0200 01 0001fc 0303'), /transport\.tls\.enable = false/)
  bad(fromHex('00 04 0000 00000001 00000000'), /type 4/)
  bad(fromHex('00 00 0000 00000001 00000065'), /101 bytes exceeds the limit of 100/)
})

test('payload slices are views, not copies', { timeout: 5000 }, () => {
  const data = frame(FrameType.Data, 0, 1, new Uint8Array(1000).fill(9))
  let seen: Uint8Array | undefined
  const d = new FrameDecoder({ onFrame() {}, onPayload(c) { seen = c }, onPayloadEnd() {} }, 1 << 20)
  d.push(data)
  assert.ok(seen)
  assert.equal(seen.buffer, data.buffer)
})
