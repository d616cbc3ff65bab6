/**
 * Property tests of the HTTP/1.1 codec (fast-check): any split or merge of valid requests parses to
 * the same messages; arbitrary and mutated bytes only ever raise typed ERR_HTTP_* errors; the
 * response writer and parser round-trip.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { RequestParser, ResponseParser, ResponseWriter, isWsfrpError, type HeaderField, type Http1Limits, type MessageHead } from '@wsfrp/core'

const raw = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

function splitAt(b: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => (b.length === 0 ? 0 : c % (b.length + 1))))].sort((x, y) => x - y)
  const out: Uint8Array[] = []
  let prev = 0
  for (const p of points) {
    out.push(b.subarray(prev, p))
    prev = p
  }
  out.push(b.subarray(prev))
  return out
}

/** What a parsed message is compared on. */
interface Seen {
  start: string
  headers: HeaderField[]
  bodyKind: MessageHead['bodyKind']
  keepAlive: boolean
  body: number[]
  trailers: HeaderField[] | undefined
}

function parseRequests(chunks: Uint8Array[], limits?: Http1Limits): Seen[] {
  const out: Seen[] = []
  let cur: Seen | undefined
  const p = new RequestParser(
    {
      onHead: (h) => {
        cur = { start: `${h.method} ${h.target}`, headers: h.headers, bodyKind: h.bodyKind, keepAlive: h.keepAlive, body: [], trailers: undefined }
      },
      onBody: (c) => cur!.body.push(...c),
      onTrailers: (t) => {
        cur!.trailers = t
      },
      onMessageEnd: () => {
        out.push(cur!)
        cur = undefined
      },
    },
    limits,
  )
  for (const c of chunks) p.push(c)
  p.finish()
  return out
}

// ---- a model of valid requests, serialized with randomly chosen (valid) spellings ----

const RESERVED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'expect', 'trailer'])
const tokenArb = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/)
const nameArb = tokenArb.filter((n) => !RESERVED.has(n.toLowerCase()))
/** Field values: Latin-1 field characters (obs-text and inner tabs included), no surrounding whitespace. */
const valueArb = fc
  .array(fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constant(0x09)), { maxLength: 24 })
  .map((cs) => String.fromCharCode(...cs).replace(/^[ \t]+|[ \t]+$/g, ''))
const fieldArb = fc.tuple(nameArb, valueArb).map(([n, v]): HeaderField => [n, v])
const owsArb = fc.constantFrom('', ' ', '  ', '\t', ' \t')
const caseArb = (s: string): fc.Arbitrary<string> =>
  fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }).map((up) => [...s].map((c, i) => (up[i] ? c.toUpperCase() : c.toLowerCase())).join(''))

interface ReqModel {
  method: string
  target: string
  /** Lines as written: [name, value, ows-before, ows-after]. */
  fields: [string, string, string, string][]
  framing: 'none' | 'length' | 'chunked'
  body: Uint8Array
  cuts: number[]
  exts: string[]
  trailers: HeaderField[]
  close: boolean
}

const reqArb: fc.Arbitrary<ReqModel> = fc
  .record({
    method: fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'), tokenArb),
    target: fc.oneof(fc.stringMatching(/^\/[\x21-\x7e]{0,30}$/), fc.constant('*'), fc.constant('http://example.com/x?y')),
    host: fc.tuple(caseArb('host'), fc.stringMatching(/^[a-z0-9.-]{1,20}(:[0-9]{1,5})?$/)),
    extra: fc.array(fieldArb, { maxLength: 6 }),
    ows: fc.array(fc.tuple(owsArb, owsArb), { minLength: 8, maxLength: 8 }),
    framing: fc.constantFrom('none', 'length', 'chunked'),
    clName: caseArb('content-length'),
    teName: caseArb('transfer-encoding'),
    teValue: caseArb('chunked'),
    body: fc.uint8Array({ maxLength: 300 }),
    cuts: fc.array(fc.nat(), { maxLength: 5 }),
    exts: fc.array(fc.constantFrom('', ';a', ';a=b', ';a="q s"', ' ;x', ';k=v;k2'), { maxLength: 6 }),
    trailers: fc.array(fieldArb, { maxLength: 3 }),
    close: fc.boolean(),
    hostFirst: fc.boolean(),
  })
  .map((r) => {
    const fields: [string, string][] = [...r.extra]
    const host: [string, string] = [r.host[0], r.host[1]]
    if (r.hostFirst) fields.unshift(host)
    else fields.push(host)
    let body = r.body
    if (r.framing === 'length') fields.push([r.clName, String(body.length)])
    else if (r.framing === 'chunked') fields.push([r.teName, r.teValue])
    else body = new Uint8Array(0)
    if (r.close) fields.push(['Connection', 'close'])
    return {
      method: r.method,
      target: r.target,
      fields: fields.map(([n, v], i): [string, string, string, string] => [n, v, r.ows[i % 8]![0], r.ows[i % 8]![1]]),
      framing: r.framing,
      body,
      cuts: r.cuts,
      exts: r.exts,
      trailers: r.framing === 'chunked' ? r.trailers : [],
      close: r.close,
    }
  })

function serialize(m: ReqModel): Uint8Array {
  let head = `${m.method} ${m.target} HTTP/1.1\r\n`
  for (const [n, v, a, b] of m.fields) head += `${n}:${a}${v}${v === '' ? '' : b}\r\n`
  head += '\r\n'
  const parts = [raw(head)]
  if (m.framing === 'length') parts.push(m.body)
  if (m.framing === 'chunked') {
    const pieces = splitAt(m.body, m.cuts).filter((p) => p.length > 0)
    pieces.forEach((p, i) => {
      parts.push(raw(`${p.length.toString(16)}${m.exts[i % Math.max(1, m.exts.length)] ?? ''}\r\n`), p, raw('\r\n'))
    })
    let t = '0\r\n'
    for (const [n, v] of m.trailers) t += `${n}: ${v}\r\n`
    parts.push(raw(`${t}\r\n`))
  }
  return concat(parts)
}

function expected(m: ReqModel): Seen {
  return {
    start: `${m.method} ${m.target}`,
    headers: m.fields.map(([n, v]) => [n, v]),
    bodyKind: m.framing === 'chunked' ? 'chunked' : m.framing === 'length' && m.body.length > 0 ? 'length' : 'none',
    keepAlive: !m.close,
    body: [...m.body],
    trailers: m.trailers.length > 0 ? m.trailers : undefined,
  }
}

test('property: any split or merge of valid pipelined requests parses to the model', { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(fc.array(reqArb, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 12 }), (reqs, cuts) => {
      const stream = concat(reqs.map(serialize))
      assert.deepEqual(parseRequests(splitAt(stream, cuts)), reqs.map(expected))
    }),
    { numRuns: 400 },
  )
})

/** Only ERR_HTTP_* errors may come out of a parser, whatever the input. */
function onlyTypedErrors(fn: () => void): void {
  try {
    fn()
  } catch (err) {
    if (!isWsfrpError(err, 'ERR_HTTP_PARSE') && !isWsfrpError(err, 'ERR_HTTP_LIMIT')) {
      assert.fail(`unexpected error: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`)
    }
  }
}

const SMALL_LIMITS: Http1Limits = { maxHeaderBytes: 512, maxHeaders: 8, maxChunkLineBytes: 32 }

test('property: random bytes give only typed ERR_HTTP_* errors (also after valid prefixes)', { timeout: 60_000 }, () => {
  const prefixes = [
    '',
    'GET / HTTP/1.1\r\n',
    'GET / HTTP/1.1\r\nHost: x\r\n',
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n',
  ].map(raw)
  fc.assert(
    fc.property(fc.constantFrom(...prefixes), fc.uint8Array({ maxLength: 600 }), fc.array(fc.nat(), { maxLength: 4 }), fc.boolean(), (prefix, junk, cuts, small) => {
      onlyTypedErrors(() => parseRequests(splitAt(concat([prefix, junk]), cuts), small ? SMALL_LIMITS : undefined))
    }),
    { numRuns: 3000 },
  )
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), fc.constantFrom('GET', 'HEAD', 'CONNECT'), (junk, method) => {
      onlyTypedErrors(() => {
        const p = new ResponseParser({ onHead() {}, onBody() {}, onMessageEnd() {} }, { ...SMALL_LIMITS, requestMethod: method })
        p.push(concat([raw('HTTP/1.1 200 OK\r\n'), junk]))
        p.finish()
      })
    }),
    { numRuns: 1000 },
  )
})

test('property: mutated valid requests give the model or a typed error, never another exception', { timeout: 60_000 }, () => {
  const mutation = fc.tuple(fc.nat(), fc.constantFrom('flip', 'insert', 'delete', 'dup'), fc.integer({ min: 0, max: 255 }))
  fc.assert(
    fc.property(fc.array(reqArb, { minLength: 1, maxLength: 3 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), (reqs, muts) => {
      const b = [...concat(reqs.map(serialize))]
      for (const [pos, kind, byte] of muts) {
        const i = pos % (b.length + 1)
        if (kind === 'flip' && i < b.length) b[i] = byte
        else if (kind === 'insert') b.splice(i, 0, byte)
        else if (kind === 'delete') b.splice(i, 1)
        else b.splice(i, 0, ...b.slice(i, i + 8))
      }
      onlyTypedErrors(() => parseRequests([Uint8Array.from(b)], SMALL_LIMITS))
    }),
    { numRuns: 2000 },
  )
})

test('property: response writer → parser round trip (length, chunked, HEAD), split anywhere', { timeout: 60_000 }, () => {
  const statusArb = fc.oneof(fc.integer({ min: 200, max: 599 }), fc.constantFrom(200, 204, 304, 404))
  fc.assert(
    fc.property(
      statusArb,
      fc.array(fieldArb, { maxLength: 5 }),
      fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 5 }),
      fc.boolean(),
      fc.constantFrom('GET', 'HEAD', 'POST'),
      fc.array(fc.nat(), { maxLength: 6 }),
      (status, headers, pieces, known, method, cuts) => {
        const body = concat(pieces)
        const w = new ResponseWriter({ requestMethod: method })
        const parts = [w.head({ status, headers, bodyLength: known ? body.length : undefined })]
        for (const p of pieces) parts.push(...w.body(p))
        parts.push(w.end())
        const got: { status: number; headers: HeaderField[]; body: number[] }[] = []
        const p = new ResponseParser(
          {
            onHead: (h) => got.push({ status: h.status, headers: h.headers, body: [] }),
            onBody: (c) => got[got.length - 1]!.body.push(...c),
            onMessageEnd() {},
          },
          { requestMethod: method },
        )
        for (const c of splitAt(concat(parts), cuts)) p.push(c)
        p.finish()
        const noBody = method === 'HEAD' || status === 204 || status === 304
        assert.equal(got.length, 1)
        assert.equal(got[0]!.status, status)
        // The caller's fields come first, in order; framing fields follow.
        assert.deepEqual(got[0]!.headers.slice(0, headers.length), headers)
        assert.deepEqual(got[0]!.body, noBody ? [] : [...body])
      },
    ),
    { numRuns: 500 },
  )
})
