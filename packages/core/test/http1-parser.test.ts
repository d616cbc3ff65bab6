import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  HTTP1_DEFAULT_LIMITS,
  HttpError,
  RequestParser,
  ResponseParser,
  isWsfrpError,
  type HeaderField,
  type Http1Limits,
  type RequestHead,
  type ResponseHead,
} from '@wsfrp/core'

const enc = new TextEncoder()
const bytes = (s: string): Uint8Array => enc.encode(s)
/** One byte per char, for inputs with bytes ≥ 0x80. */
const raw = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))

interface Parsed<H> {
  head: H
  body: Uint8Array
  trailers: HeaderField[] | undefined
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

/** Feeds `chunks` to a request parser and returns every message; throws what the parser throws. */
function parseRequests(chunks: Uint8Array[], limits?: Http1Limits, finish = true): { messages: Parsed<RequestHead>[]; eof: boolean } {
  const messages: Parsed<RequestHead>[] = []
  let body: Uint8Array[] = []
  let cur: Parsed<RequestHead> | undefined
  let eof = false
  const p = new RequestParser(
    {
      onHead: (head) => {
        assert.equal(cur, undefined, 'onHead while a message is open')
        cur = { head, body: new Uint8Array(0), trailers: undefined }
        body = []
      },
      onBody: (c) => {
        assert.ok(cur, 'onBody outside a message')
        assert.ok(c.length > 0, 'empty onBody')
        body.push(c.slice())
      },
      onTrailers: (t) => {
        cur!.trailers = t
      },
      onMessageEnd: () => {
        cur!.body = concat(body)
        messages.push(cur!)
        cur = undefined
      },
      onEof: () => {
        eof = true
      },
    },
    limits,
  )
  for (const c of chunks) p.push(c)
  if (finish) p.finish()
  return { messages, eof }
}

function splitAt(b: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.min(Math.max(c, 0), b.length)))].sort((x, y) => x - y)
  const out: Uint8Array[] = []
  let prev = 0
  for (const p of points) {
    out.push(b.subarray(prev, p))
    prev = p
  }
  out.push(b.subarray(prev))
  return out
}

function expectHttpError(fn: () => unknown, code: 'ERR_HTTP_PARSE' | 'ERR_HTTP_LIMIT', status: number, label?: string): HttpError {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof HttpError, `${label ?? ''}: expected an HttpError, got ${String(err)}`)
    assert.ok(isWsfrpError(err, code), `${label ?? ''}: expected ${code}, got ${(err as HttpError).code}: ${(err as Error).message}`)
    assert.equal(err.status, status, `${label ?? ''}: status (${err.message})`)
    return err
  }
  assert.fail(`${label ?? ''}: expected ${code} ${status}, but parsing succeeded`)
}

const CORPUS = [
  'GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n',
  'POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world',
  'PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;name=value\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Sum: 42\r\nX-Other:  two words \r\n\r\n',
  'DELETE /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'GET /e HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
]
const STREAM = bytes(CORPUS.join(''))

test('parses a pipelined corpus: heads, bodies, trailers, keep-alive', { timeout: 10_000 }, () => {
  const { messages, eof } = parseRequests([STREAM])
  assert.equal(eof, true)
  assert.equal(messages.length, CORPUS.length)
  const [get, post, put, del, old, opts] = messages as [Parsed<RequestHead>, ...Parsed<RequestHead>[]]
  assert.equal(get.head.method, 'GET')
  assert.equal(get.head.target, '/a?b=c')
  assert.equal(get.head.versionMinor, 1)
  assert.deepEqual(get.head.headers, [
    ['Host', 'example.com'],
    ['User-Agent', 't'],
    ['Accept', '*/*'],
  ])
  assert.equal(get.head.bodyKind, 'none')
  assert.equal(get.head.keepAlive, true)
  assert.equal(post!.head.bodyKind, 'length')
  assert.equal(post!.head.contentLength, 11)
  assert.equal(new TextDecoder().decode(post!.body), 'hello world')
  assert.equal(put!.head.bodyKind, 'chunked')
  assert.equal(new TextDecoder().decode(put!.body), 'hello 0123456789')
  assert.deepEqual(put!.trailers, [
    ['X-Sum', '42'],
    ['X-Other', 'two words'],
  ])
  assert.equal(del!.head.bodyKind, 'chunked')
  assert.equal(del!.body.length, 0)
  assert.equal(del!.trailers, undefined)
  assert.equal(old!.head.versionMinor, 0)
  assert.equal(old!.head.keepAlive, true, 'HTTP/1.0 with Connection: keep-alive')
  assert.equal(opts!.head.target, '*')
  assert.equal(opts!.head.keepAlive, false)
  assert.equal(opts!.head.bodyKind, 'none')
})

test('split at every byte: one cut anywhere gives the same messages', { timeout: 20_000 }, () => {
  const whole = parseRequests([STREAM]).messages
  for (let i = 0; i <= STREAM.length; i++) {
    assert.deepEqual(parseRequests(splitAt(STREAM, [i])).messages, whole, `cut at ${i}`)
  }
})

test('split at every byte: two cuts anywhere in the chunked request give the same message', { timeout: 20_000 }, () => {
  const one = bytes(CORPUS[2]!)
  const whole = parseRequests([one]).messages
  for (let i = 0; i <= one.length; i++) {
    for (let j = i; j <= one.length; j++) assert.deepEqual(parseRequests(splitAt(one, [i, j])).messages, whole, `cuts at ${i}, ${j}`)
  }
})

test('byte by byte gives the same messages', { timeout: 10_000 }, () => {
  const chunks = Array.from(STREAM, (b) => Uint8Array.of(b))
  assert.deepEqual(parseRequests(chunks).messages, parseRequests([STREAM]).messages)
})

test('keep-alive rules: 1.1 default on, close token, 1.0 default off', { timeout: 5_000 }, () => {
  const ka = (s: string): boolean => parseRequests([bytes(s)]).messages[0]!.head.keepAlive
  assert.equal(ka('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), true)
  assert.equal(ka('GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, Close\r\n\r\n'), false)
  assert.equal(ka('GET / HTTP/1.0\r\n\r\n'), false)
  assert.equal(ka('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n'), true)
  // A later 1.x minor is treated as 1.1 (RFC 9112 §2.3).
  const h = parseRequests([bytes('GET / HTTP/1.7\r\nHost: x\r\n\r\n')]).messages[0]!.head
  assert.equal(h.versionMinor, 1)
})

test('leading empty lines before a request line are skipped', { timeout: 5_000 }, () => {
  const { messages } = parseRequests([bytes('\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n')])
  assert.deepEqual(
    messages.map((m) => m.head.target),
    ['/', '/2'],
  )
})

test('Upgrade, Expect and identical Content-Length repeats are reported, not refused', { timeout: 5_000 }, () => {
  const { messages } = parseRequests([
    bytes('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n'),
    bytes('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n'),
    bytes('POST /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc'),
    bytes('POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nab'),
  ])
  assert.equal(messages[0]!.head.upgrade, 'websocket')
  assert.equal(messages[1]!.head.upgrade, undefined, 'Upgrade without Connection: upgrade is not an upgrade')
  assert.equal(messages[2]!.head.expect, '100-continue')
  assert.equal(messages[2]!.head.contentLength, 3)
  assert.equal(messages[3]!.head.contentLength, 2)
})

test('obs-text in values is kept byte for byte (Latin-1), names keep their case', { timeout: 5_000 }, () => {
  // Names are tokens (ASCII only): a Latin-1 letter in a name is refused…
  expectHttpError(() => parseRequests([raw('GET / HTTP/1.1\r\nHost: x\r\nX-Caf\u00e9: 1\r\n\r\n')]), 'ERR_HTTP_PARSE', 400)
  // …in a value it is data.
  const ok = parseRequests([raw('GET / HTTP/1.1\r\nHost: x\r\nX-Name: na\u00efve \u00ff\r\n\r\n')]).messages[0]!
  assert.deepEqual(ok.head.headers[1], ['X-Name', 'na\u00efve \u00ff'])
})

test('pause in onMessageEnd holds pipelined input until resume', { timeout: 5_000 }, () => {
  const seen: string[] = []
  const p: RequestParser = new RequestParser({
    onHead: (h) => seen.push(`head ${h.target}`),
    onBody: (c) => seen.push(`body ${c.length}`),
    onMessageEnd: () => {
      seen.push('end')
      p.pause()
    },
    onEof: () => seen.push('eof'),
  })
  const two = bytes('POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nabGET /2 HTTP/1.1\r\nHost: x\r\n\r\n')
  p.push(two)
  assert.deepEqual(seen, ['head /1', 'body 2', 'end'])
  assert.equal(p.isPaused, true)
  assert.equal(p.bufferedBytes, 'GET /2 HTTP/1.1\r\nHost: x\r\n\r\n'.length)
  p.finish() // deferred: the held request is parsed first
  assert.deepEqual(seen, ['head /1', 'body 2', 'end'])
  p.resume()
  assert.deepEqual(seen, ['head /1', 'body 2', 'end', 'head /2', 'end'])
  assert.equal(p.bufferedBytes, 0)
  p.resume()
  assert.deepEqual(seen, ['head /1', 'body 2', 'end', 'head /2', 'end', 'eof'])
})

test('pause inside onHead stops before the body; an empty body ends only on resume', { timeout: 5_000 }, () => {
  const seen: string[] = []
  const p: RequestParser = new RequestParser({
    onHead: () => {
      seen.push('head')
      p.pause()
    },
    onBody: () => seen.push('body'),
    onMessageEnd: () => seen.push('end'),
  })
  p.push(bytes('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))
  assert.deepEqual(seen, ['head'])
  p.resume()
  assert.deepEqual(seen, ['head', 'end'])
})

test('finish: clean between messages gives onEof; inside a message is ERR_HTTP_PARSE', { timeout: 5_000 }, () => {
  assert.equal(parseRequests([]).eof, true)
  assert.equal(parseRequests([bytes('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]).eof, true)
  for (const cut of ['G', 'GET / HTTP/1.1\r\nHost: x\r\n', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n']) {
    expectHttpError(() => parseRequests([bytes(cut)]), 'ERR_HTTP_PARSE', 400, JSON.stringify(cut))
  }
})

test('a failed parser stays failed and rethrows the same error', { timeout: 5_000 }, () => {
  const p = new RequestParser({ onHead: () => {}, onBody: () => {}, onMessageEnd: () => {} })
  const first = expectHttpError(() => p.push(bytes('GET / HTTP/1.1\nHost: x\r\n\r\n')), 'ERR_HTTP_PARSE', 400)
  assert.throws(() => p.push(bytes('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), (e) => e === first)
  assert.throws(() => p.finish(), (e) => e === first)
})

test('detach returns the bytes after an accepted upgrade', { timeout: 5_000 }, () => {
  const p: RequestParser = new RequestParser({
    onHead: () => {},
    onBody: () => {},
    onMessageEnd: () => p.pause(),
  })
  p.push(raw('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00rest'))
  const rest = p.detach()
  assert.deepEqual([...rest], [...raw('\x81\x00rest')])
  assert.throws(() => p.push(bytes('x')), (e: unknown) => isWsfrpError(e, 'ERR_HTTP_PARSE'))
})

test('limits: header section at maxHeaderBytes passes, one byte more is 431', { timeout: 5_000 }, () => {
  const limits = { maxHeaderBytes: 256 }
  const build = (total: number): string => {
    const start = 'GET / HTTP/1.1\r\nHost: x\r\nX-Pad: '
    const end = '\r\n\r\n'
    return start + 'a'.repeat(total - start.length - end.length) + end
  }
  assert.equal(parseRequests([bytes(build(256))], limits).messages.length, 1)
  expectHttpError(() => parseRequests([bytes(build(257))], limits), 'ERR_HTTP_LIMIT', 431)
  // Split at every byte, the limit still trips (on the partial line).
  const big = bytes(build(257))
  for (let i = 0; i <= big.length; i++) expectHttpError(() => parseRequests(splitAt(big, [i]), limits), 'ERR_HTTP_LIMIT', 431, `cut ${i}`)
})

test('limits: default header size is 16 KiB (a 431-worthy request is ERR_HTTP_LIMIT before its end arrives)', { timeout: 5_000 }, () => {
  assert.equal(HTTP1_DEFAULT_LIMITS.maxHeaderBytes, 16 * 1024)
  assert.equal(HTTP1_DEFAULT_LIMITS.maxHeaders, 100)
  const p = new RequestParser({ onHead: () => assert.fail('no head'), onBody: () => {}, onMessageEnd: () => {} })
  p.push(bytes('GET / HTTP/1.1\r\nHost: x\r\n'))
  const line = bytes(`X-Big: ${'b'.repeat(1000)}\r\n`)
  let err: unknown
  try {
    for (let i = 0; i < 100; i++) p.push(line)
  } catch (e) {
    err = e
  }
  assert.ok(isWsfrpError(err, 'ERR_HTTP_LIMIT'))
  assert.equal((err as HttpError).status, 431)
})

test('limits: an over-long request line is 414, too many fields 431, a long chunk line 400', { timeout: 5_000 }, () => {
  expectHttpError(() => parseRequests([bytes(`GET /${'a'.repeat(300)} HTTP/1.1\r\nHost: x\r\n\r\n`)], { maxHeaderBytes: 256 }), 'ERR_HTTP_LIMIT', 414)
  const fields = (n: number): string => Array.from({ length: n }, (_, i) => `X-${i}: v\r\n`).join('')
  assert.equal(parseRequests([bytes(`GET / HTTP/1.1\r\nHost: x\r\n${fields(9)}\r\n`)], { maxHeaders: 10 }).messages.length, 1)
  expectHttpError(() => parseRequests([bytes(`GET / HTTP/1.1\r\nHost: x\r\n${fields(10)}\r\n`)], { maxHeaders: 10 }), 'ERR_HTTP_LIMIT', 431)
  const chunked = (ext: string): string => `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;${ext}\r\na\r\n0\r\n\r\n`
  assert.equal(parseRequests([bytes(chunked('e'.repeat(50)))], { maxChunkLineBytes: 64 }).messages.length, 1)
  expectHttpError(() => parseRequests([bytes(chunked('e'.repeat(100)))], { maxChunkLineBytes: 64 }), 'ERR_HTTP_LIMIT', 400)
  // Trailers have their own bound, and the field count applies to them too.
  expectHttpError(
    () => parseRequests([bytes(`POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${fields(11)}\r\n`)], { maxHeaders: 10 }),
    'ERR_HTTP_LIMIT',
    431,
  )
  assert.throws(() => new RequestParser({ onHead() {}, onBody() {}, onMessageEnd() {} }, { maxHeaders: 0 }), RangeError)
})

/** Requests that must be refused, with the status a server answers. Comments name the attack or rule. */
const REFUSED: [label: string, request: string, status: number][] = [
  ['CL.TE: both framing fields', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
  ['TE.CL order', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n', 400],
  ['differing duplicate Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', 400],
  ['differing Content-Length list', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!', 400],
  ['signed Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello', 400],
  ['hex Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello', 400],
  ['Content-Length with inner space', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\nhello', 400],
  ['empty Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n', 400],
  ['huge Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n', 400],
  ['chunked twice', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n', 400],
  ['chunked not last', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n', 400],
  ['unknown coding only', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n', 400],
  ['look-alike coding', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunkedx\r\n\r\n', 400],
  ['empty Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n', 400],
  ['gzip then chunked (not implemented)', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', 501],
  ['Transfer-Encoding in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
  ['obs-fold hiding Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n', 400],
  ['space before colon', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n', 400],
  ['tab before colon', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length\t: 1\r\n\r\na', 400],
  ['bare LF in headers', 'GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n', 400],
  ['bare LF ending the head', 'GET / HTTP/1.1\r\nHost: x\r\n\n', 400],
  ['bare CR in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n', 400],
  ['NUL in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n', 400],
  ['empty header name', 'GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n', 400],
  ['no colon', 'GET / HTTP/1.1\r\nHost: x\r\nX-A v\r\n\r\n', 400],
  ['chunk size not hex', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\ng\r\n', 400],
  ['negative chunk size', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n', 400],
  ['0x chunk size', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n', 400],
  ['empty chunk size', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\r\n', 400],
  ['overflowing chunk size', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n', 400],
  ['space after chunk size without extension', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n', 400],
  ['chunk size ended by bare LF', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n', 400],
  ['chunk data longer than its size', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n', 400],
  ['bare LF inside a chunk extension', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n', 400],
  ['missing Host in HTTP/1.1', 'GET / HTTP/1.1\r\nX-A: 1\r\n\r\n', 400],
  ['two Host fields', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
  ['HTTP/2.0 request line', 'GET / HTTP/2.0\r\nHost: x\r\n\r\n', 505],
  ['lower-case version', 'GET / http/1.1\r\nHost: x\r\n\r\n', 400],
  ['double space in the request line', 'GET  / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['trailing space in the request line', 'GET / HTTP/1.1 \r\nHost: x\r\n\r\n', 400],
  ['space in the target', 'GET /a b HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['invalid method char', 'G(T / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['HTTP/0.9 style', 'GET /\r\n\r\n', 400],
]

test('smuggling-prone and malformed requests are typed errors with their status', { timeout: 10_000 }, () => {
  for (const [label, req, status] of REFUSED) {
    const b = bytes(req)
    expectHttpError(() => parseRequests([b]), 'ERR_HTTP_PARSE', status, label)
    // Byte by byte, the verdict is the same.
    expectHttpError(() => parseRequests(Array.from(b, (x) => Uint8Array.of(x))), 'ERR_HTTP_PARSE', status, `${label} (byte by byte)`)
  }
})

test('a refused request after good ones: the good ones are delivered first', { timeout: 5_000 }, () => {
  const seen: string[] = []
  const p = new RequestParser({ onHead: (h) => seen.push(h.target), onBody: () => {}, onMessageEnd: () => seen.push('end') })
  assert.throws(
    () => p.push(bytes('GET /ok HTTP/1.1\r\nHost: x\r\n\r\nPOST /bad HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n')),
    (e: unknown) => isWsfrpError(e, 'ERR_HTTP_PARSE'),
  )
  assert.deepEqual(seen, ['/ok', 'end'])
})

// ---- responses ----

function parseResponses(chunks: Uint8Array[], methods: string[] = [], finish = true): Parsed<ResponseHead>[] {
  const out: Parsed<ResponseHead>[] = []
  let body: Uint8Array[] = []
  let cur: Parsed<ResponseHead> | undefined
  let i = 0
  const p: ResponseParser = new ResponseParser(
    {
      onHead: (head) => {
        cur = { head, body: new Uint8Array(0), trailers: undefined }
        body = []
      },
      onBody: (c) => body.push(c.slice()),
      onTrailers: (t) => {
        cur!.trailers = t
      },
      onMessageEnd: () => {
        cur!.body = concat(body)
        out.push(cur!)
        // Interim responses answer the same request.
        if (cur!.head.status >= 200) p.requestMethod = methods[++i] ?? 'GET'
        cur = undefined
      },
    },
    { requestMethod: methods[0] ?? 'GET' },
  )
  for (const c of chunks) p.push(c)
  if (finish) p.finish()
  return out
}

const RESPONSES =
  'HTTP/1.1 100 Continue\r\n\r\n' +
  'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello' +
  'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n' + // answers HEAD: no body
  'HTTP/1.1 204 No Content\r\n\r\n' +
  'HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n' +
  'HTTP/1.1 404\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nnot\r\n0\r\nX-T: 1\r\n\r\n' +
  'HTTP/1.0 200 Fine\r\n\r\nuntil close'

test('response parser: interim, HEAD, 204, 304, chunked, close-delimited; split anywhere', { timeout: 20_000 }, () => {
  const methods = ['POST', 'HEAD', 'GET', 'GET', 'GET', 'GET']
  const b = bytes(RESPONSES)
  const whole = parseResponses([b], methods)
  assert.deepEqual(
    whole.map((m) => [m.head.status, m.head.reason, m.head.bodyKind, new TextDecoder().decode(m.body)]),
    [
      [100, 'Continue', 'none', ''],
      [200, 'OK', 'length', 'hello'],
      [200, 'OK', 'none', ''],
      [204, 'No Content', 'none', ''],
      [304, 'Not Modified', 'none', ''],
      [404, '', 'chunked', 'not'],
      [200, 'Fine', 'close', 'until close'],
    ],
  )
  assert.deepEqual(whole[5]!.trailers, [['X-T', '1']])
  assert.equal(whole[6]!.head.keepAlive, false)
  assert.equal(whole[2]!.head.contentLength, 5)
  for (let i = 0; i <= b.length; i++) assert.deepEqual(parseResponses(splitAt(b, [i]), methods), whole, `cut at ${i}`)
})

test('response parser: 101 and CONNECT 2xx stop parsing; detach returns the tunnel bytes', { timeout: 5_000 }, () => {
  let heads = 0
  const p = new ResponseParser({ onHead: () => heads++, onBody: () => assert.fail('no body'), onMessageEnd: () => {} })
  p.push(raw('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello'))
  assert.equal(heads, 1)
  assert.equal(p.bufferedBytes, 7)
  p.finish() // ignored after an upgrade
  assert.deepEqual([...p.detach()], [...raw('\x81\x05hello')])

  const c = new ResponseParser({ onHead: () => {}, onBody: () => assert.fail('no body'), onMessageEnd: () => {} }, { requestMethod: 'CONNECT' })
  c.push(bytes('HTTP/1.1 200 Connection established\r\n\r\nSSH-2.0'))
  assert.deepEqual([...c.detach()], [...bytes('SSH-2.0')])
})

test('response parser: malformed status lines and framing are typed errors', { timeout: 5_000 }, () => {
  for (const r of [
    'HTTP/1.1 20 OK\r\n\r\n',
    'HTTP/1.1 2000 OK\r\n\r\n',
    'HTTP/1.1 099 Low\r\n\r\n',
    'HTTP/1.1  200 OK\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    '\r\nHTTP/1.1 200 OK\r\n\r\n',
    'ICY 200 OK\r\n\r\n',
  ]) {
    expectHttpError(() => parseResponses([bytes(r)]), 'ERR_HTTP_PARSE', 400, JSON.stringify(r))
  }
  // A body cut short is an error at the end of input; a close-delimited one is not.
  expectHttpError(() => parseResponses([bytes('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab')]), 'ERR_HTTP_PARSE', 400)
})
