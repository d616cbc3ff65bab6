import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RequestParser, RequestWriter, ResponseParser, ResponseWriter, isWsfrpError, type HeaderField, type ResponseHead } from '@wsfrp/core'

const enc = new TextEncoder()
const dec = new TextDecoder()
const text = (parts: Uint8Array[]): string => parts.map((p) => dec.decode(p)).join('')

function writeResponse(
  opts: ConstructorParameters<typeof ResponseWriter>[0],
  init: Parameters<ResponseWriter['head']>[0],
  body: string[] = [],
  trailers?: HeaderField[],
): { w: ResponseWriter; out: string } {
  const w = new ResponseWriter(opts)
  const parts = [w.head(init)]
  for (const b of body) parts.push(...w.body(enc.encode(b)))
  parts.push(w.end(trailers))
  return { w, out: text(parts) }
}

const isWriteError = (e: unknown): boolean => isWsfrpError(e, 'ERR_HTTP_WRITE')

test('known length: Content-Length; unknown: chunked with trailers', { timeout: 5_000 }, () => {
  const a = writeResponse({}, { status: 200, headers: [['Content-Type', 'text/plain']], bodyLength: 5 }, ['he', 'llo'])
  assert.equal(a.out, 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello')
  assert.equal(a.w.framing, 'length')
  assert.equal(a.w.keepAlive, true)

  const b = writeResponse({}, { status: 201, headers: [['X-A', '1']], trailers: ['X-Sum'] }, ['ab', '', 'cde'], [['X-Sum', '7']])
  assert.equal(b.out, 'HTTP/1.1 201 Created\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\nX-Sum: 7\r\n\r\n')
  assert.equal(b.w.framing, 'chunked')
})

test('a Content-Length field from the caller sets the framing; conflicts and bad values are refused', { timeout: 5_000 }, () => {
  const a = writeResponse({}, { status: 200, headers: [['content-length', '3']] }, ['abc'])
  assert.equal(a.out, 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc')
  assert.throws(() => new ResponseWriter().head({ status: 200, headers: [['Content-Length', '3']], bodyLength: 4 }), isWriteError)
  assert.throws(() => new ResponseWriter().head({ status: 200, headers: [['Content-Length', '-1']] }), isWriteError)
  assert.throws(() => new ResponseWriter().head({ status: 200, headers: [['Content-Length', '1'], ['Content-Length', '2']] }), isWriteError)
})

test('HTTP/1.0 peers: no chunked; the body ends with the connection', { timeout: 5_000 }, () => {
  const a = writeResponse({ requestVersionMinor: 0, keepAlive: true }, { status: 200 }, ['x'])
  assert.equal(a.out, 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nx')
  assert.equal(a.w.framing, 'close')
  assert.equal(a.w.keepAlive, false)
  const b = writeResponse({ requestVersionMinor: 0, keepAlive: true }, { status: 200, bodyLength: 1 }, ['x'])
  assert.equal(b.out, 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\nx')
})

test('HEAD, 204 and 304 carry no body; HEAD and 304 keep the length, 204 drops it', { timeout: 5_000 }, () => {
  const head = writeResponse({ requestMethod: 'HEAD' }, { status: 200, bodyLength: 10 }, ['0123456789'])
  assert.equal(head.out, 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n')
  assert.equal(head.w.framing, 'none')
  const headUnknown = writeResponse({ requestMethod: 'HEAD' }, { status: 200 }, ['dropped'])
  assert.equal(headUnknown.out, 'HTTP/1.1 200 OK\r\n\r\n')
  assert.equal(writeResponse({}, { status: 204, headers: [['Content-Length', '5']] }, ['x']).out, 'HTTP/1.1 204 No Content\r\n\r\n')
  assert.equal(writeResponse({}, { status: 304, bodyLength: 5 }).out, 'HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n')
})

test('managed fields are dropped; Connection: close is honoured; set-cookie repeats stay separate', { timeout: 5_000 }, () => {
  const a = writeResponse(
    {},
    {
      status: 200,
      bodyLength: 0,
      headers: [
        ['Transfer-Encoding', 'gzip'],
        ['Keep-Alive', 'timeout=5'],
        ['Connection', 'keep-alive'],
        ['Trailer', 'X'],
        ['TE', 'trailers'],
        ['Set-Cookie', 'a=1'],
        ['Set-Cookie', 'b=2'],
      ],
    },
  )
  assert.equal(a.out, 'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n')
  const b = writeResponse({}, { status: 200, bodyLength: 0, headers: [['Connection', 'Close']] })
  assert.equal(b.out, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
  assert.equal(b.w.keepAlive, false)
  const c = writeResponse({ keepAlive: false }, { status: 200, bodyLength: 0 })
  assert.equal(c.out, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
})

test('header injection and bad statuses are ERR_HTTP_WRITE', { timeout: 5_000 }, () => {
  for (const headers of [
    [['X-A', 'a\r\nX-Injected: 1']],
    [['X-A', 'a\nb']],
    [['X-A', 'a\u0000b']],
    [['X A', 'v']],
    [['', 'v']],
    [['X-A', 'snow \u2603']],
  ] as HeaderField[][]) {
    assert.throws(() => new ResponseWriter().head({ status: 200, headers }), isWriteError, JSON.stringify(headers))
  }
  for (const status of [0, 99, 100, 199, 1000, 200.5, NaN]) assert.throws(() => new ResponseWriter().head({ status }), isWriteError, String(status))
  assert.throws(() => new ResponseWriter().head({ status: 200, statusText: 'OK\r\nX: 1' }), isWriteError)
  assert.throws(() => ResponseWriter.interim(101), isWriteError)
  assert.equal(dec.decode(ResponseWriter.interim()), 'HTTP/1.1 100 Continue\r\n\r\n')
})

test('body length is enforced both ways; calls out of order are refused', { timeout: 5_000 }, () => {
  const long = new ResponseWriter()
  long.head({ status: 200, bodyLength: 2 })
  assert.throws(() => long.body(enc.encode('abc')), isWriteError)
  const short = new ResponseWriter()
  short.head({ status: 200, bodyLength: 2 })
  short.body(enc.encode('a'))
  assert.throws(() => short.end(), isWriteError)
  const w = new ResponseWriter()
  assert.throws(() => w.body(enc.encode('a')), isWriteError)
  w.head({ status: 200 })
  assert.throws(() => w.head({ status: 200 }), isWriteError)
  w.end()
  assert.throws(() => w.end(), isWriteError)
  assert.throws(() => w.body(enc.encode('a')), isWriteError)
})

test('large chunks are framed without a copy', { timeout: 5_000 }, () => {
  const w = new ResponseWriter()
  w.head({ status: 200 })
  const big = new Uint8Array(100_000)
  const out = w.body(big)
  assert.equal(out.length, 3)
  assert.equal(out[1], big)
  assert.equal(dec.decode(out[0]), '186a0\r\n')
})

test('request writer: no body, length, chunked, close; validation', { timeout: 5_000 }, () => {
  const get = new RequestWriter()
  assert.equal(dec.decode(get.head({ method: 'GET', target: '/x', headers: [['Host', 'h']], bodyLength: 0 })), 'GET /x HTTP/1.1\r\nHost: h\r\n\r\n')
  assert.equal(get.framing, 'none')
  const post = new RequestWriter()
  assert.equal(dec.decode(post.head({ method: 'POST', target: '/', headers: [['Host', 'h']], bodyLength: 0 })), 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n')
  const chunked = new RequestWriter()
  const parts = [chunked.head({ method: 'PUT', target: '/', headers: [['Host', 'h']], chunked: true, keepAlive: false }), ...chunked.body(enc.encode('hi')), chunked.end()]
  assert.equal(text(parts), 'PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nhi\r\n0\r\n\r\n')
  assert.throws(() => new RequestWriter().head({ method: 'GET', target: '/a b' }), isWriteError)
  assert.throws(() => new RequestWriter().head({ method: 'G T', target: '/' }), isWriteError)
  assert.throws(() => new RequestWriter().head({ method: 'POST', target: '/', chunked: true, bodyLength: 3 }), isWriteError)
})

test('writer → parser round trip for requests and responses', { timeout: 5_000 }, () => {
  const rw = new RequestWriter()
  const req = [rw.head({ method: 'POST', target: '/r?q=1', headers: [['Host', 'h'], ['X-Y', 'z']], chunked: true, trailers: ['X-T'] }), ...rw.body(enc.encode('abc')), rw.end([['X-T', 'v']])]
  const seen: unknown[] = []
  const rp = new RequestParser({
    onHead: (h) => seen.push([h.method, h.target, h.headers, h.bodyKind]),
    onBody: (b) => seen.push(dec.decode(b)),
    onTrailers: (t) => seen.push(t),
    onMessageEnd: () => seen.push('end'),
  })
  for (const p of req) rp.push(p)
  assert.deepEqual(seen, [
    [
      'POST',
      '/r?q=1',
      [
        ['Host', 'h'],
        ['X-Y', 'z'],
        ['Transfer-Encoding', 'chunked'],
        ['Trailer', 'X-T'],
      ],
      'chunked',
    ],
    'abc',
    [['X-T', 'v']],
    'end',
  ])

  const heads: ResponseHead[] = []
  const bodies: string[] = []
  const sp = new ResponseParser({ onHead: (h) => heads.push(h), onBody: (b) => bodies.push(dec.decode(b)), onMessageEnd: () => {} })
  sp.push(enc.encode(writeResponse({}, { status: 418, statusText: "I'm a teapot", headers: [['X-A', 'b']] }, ['short', ' and stout']).out))
  assert.equal(heads[0]!.status, 418)
  assert.equal(heads[0]!.reason, "I'm a teapot")
  assert.equal(bodies.join(''), 'short and stout')
})
