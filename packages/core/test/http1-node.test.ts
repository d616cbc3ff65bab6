/**
 * Cross-checks of the HTTP/1.1 codec against Node's own parser and serializer (llhttp), over real
 * sockets on 127.0.0.1: the same bytes must mean the same messages to both, in both directions.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import fc from 'fast-check'
import {
  HttpError,
  RequestParser,
  RequestWriter,
  ResponseParser,
  ResponseWriter,
  isWsfrpError,
  type HeaderField,
  type RequestHead,
  type ResponseHead,
} from '@wsfrp/core'

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

function pairs(flat: string[]): HeaderField[] {
  const out: HeaderField[] = []
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!])
  return out
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

async function close(server: net.Server): Promise<void> {
  ;(server as http.Server).closeAllConnections?.()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}

// ---- generators of messages that both parsers must accept ----

const RESERVED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'expect', 'trailer', 'keep-alive'])
const nameArb = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/).filter((n) => !RESERVED.has(n.toLowerCase()))
const valueArb = fc
  .array(fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constant(0x09)), { maxLength: 20 })
  .map((cs) => String.fromCharCode(...cs).replace(/^[ \t]+|[ \t]+$/g, ''))
const fieldsArb = fc.uniqueArray(fc.tuple(nameArb, valueArb), { maxLength: 6, selector: ([n]) => n.toLowerCase() }).map((f) => f as HeaderField[])
/** Methods llhttp knows (it refuses others); all are tokens to ours. */
const methodArb = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND', 'MKCOL')
const targetArb = fc.stringMatching(/^\/[\x21-\x7e]{0,30}$/)
const bodyArb = fc.array(fc.uint8Array({ minLength: 1, maxLength: 200 }), { maxLength: 4 })

interface Req {
  method: string
  target: string
  fields: HeaderField[]
  chunked: boolean
  pieces: Uint8Array[]
  trailers: HeaderField[]
}

const reqArb: fc.Arbitrary<Req> = fc.record({
  method: methodArb,
  target: targetArb,
  fields: fieldsArb,
  chunked: fc.boolean(),
  pieces: bodyArb,
  trailers: fieldsArb,
})

/** Serialized by hand (not by our writer), with chunk extensions llhttp also accepts. */
function serialize(r: Req): Uint8Array {
  let head = `${r.method} ${r.target} HTTP/1.1\r\nHost: example.test\r\n`
  for (const [n, v] of r.fields) head += `${n}: ${v}\r\n`
  const body = concat(r.pieces)
  if (r.chunked) head += 'Transfer-Encoding: chunked\r\n'
  else head += `Content-Length: ${body.length}\r\n`
  const parts = [raw(`${head}\r\n`)]
  if (!r.chunked) parts.push(body)
  else {
    r.pieces.forEach((p, i) => parts.push(raw(`${p.length.toString(16)}${i % 2 ? ';ext=1' : ''}\r\n`), p, raw('\r\n')))
    let t = '0\r\n'
    for (const [n, v] of r.trailers) t += `${n}: ${v}\r\n`
    parts.push(raw(`${t}\r\n`))
  }
  return concat(parts)
}

interface Seen {
  method: string
  url: string
  headers: HeaderField[]
  body: number[]
  trailers: HeaderField[]
}

function oursRequests(b: Uint8Array): Seen[] {
  const out: Seen[] = []
  let cur: Seen | undefined
  const p = new RequestParser({
    onHead: (h: RequestHead) => {
      cur = { method: h.method, url: h.target, headers: h.headers, body: [], trailers: [] }
    },
    onBody: (c) => cur!.body.push(...c),
    onTrailers: (t) => {
      cur!.trailers = t
    },
    onMessageEnd: () => {
      out.push(cur!)
      cur = undefined
    },
  })
  p.push(b)
  p.finish()
  return out
}

test('node:http server and our parser read the same pipelined requests', { timeout: 60_000 }, async () => {
  let seen: Seen[] = []
  let expect = 0
  let done: (() => void) | undefined
  const server = http.createServer((req, res) => {
    const body: Buffer[] = []
    req.on('data', (c: Buffer) => body.push(c))
    req.on('end', () => {
      seen.push({
        method: req.method!,
        url: req.url!,
        headers: pairs(req.rawHeaders),
        body: [...Buffer.concat(body)],
        trailers: pairs(req.rawTrailers),
      })
      res.end('ok')
      if (seen.length === expect) done?.()
    })
  })
  const port = await listen(server)
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(reqArb, { minLength: 1, maxLength: 4 }), async (reqs) => {
        const stream = concat(reqs.map(serialize))
        seen = []
        expect = reqs.length
        const all = new Promise<void>((resolve) => (done = resolve))
        const sock = net.connect(port, '127.0.0.1')
        sock.on('data', () => {})
        sock.on('error', () => {})
        sock.write(stream)
        await all
        sock.destroy()
        assert.deepEqual(oursRequests(stream), seen)
      }),
      { numRuns: 60 },
    )
  } finally {
    await close(server)
  }
})

/** Methods Node's client never sends chunked by default. */
const NO_CHUNK_METHODS = ['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']

test('our parser reads what node:http clients send (Content-Length and chunked)', { timeout: 60_000 }, async () => {
  let onMessage: ((s: Seen) => void) | undefined
  const server = net.createServer((sock) => {
    let cur: Seen | undefined
    const p = new RequestParser({
      onHead: (h) => {
        cur = { method: h.method, url: h.target, headers: h.headers, body: [], trailers: [] }
      },
      onBody: (c) => cur!.body.push(...c),
      onTrailers: (t) => {
        cur!.trailers = t
      },
      onMessageEnd: () => {
        onMessage?.(cur!)
        sock.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
      },
    })
    sock.on('data', (c: Buffer) => {
      try {
        p.push(new Uint8Array(c.buffer, c.byteOffset, c.length))
      } catch (err) {
        sock.destroy(err as Error)
      }
    })
    sock.on('error', () => {})
  })
  const port = await listen(server)
  try {
    await fc.assert(
      fc.asyncProperty(methodArb, targetArb, fieldsArb, bodyArb, fc.boolean(), async (method, path, fields, anyPieces, withLength) => {
        // Node writes the body of a GET/DELETE/OPTIONS without a length unframed (it never chunks
        // those methods by default): such a request is not HTTP, so it is not generated.
        const pieces = withLength || !NO_CHUNK_METHODS.includes(method) ? anyPieces : []
        const body = concat(pieces)
        const headers: Record<string, string> = Object.fromEntries(fields)
        if (withLength) headers['Content-Length'] = String(body.length)
        const got = new Promise<Seen>((resolve) => (onMessage = resolve))
        const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, resolve)
          req.on('error', reject)
          for (const piece of pieces) req.write(piece)
          req.end()
        })
        res.resume()
        const s = await got
        assert.equal(s.method, method)
        assert.equal(s.url, path)
        for (const [n, v] of fields) assert.deepEqual(s.headers.find(([k]) => k === n), [n, v], n)
        // Node frames a body without a length as chunked (and a bodyless request without either).
        const te = s.headers.find(([k]) => k.toLowerCase() === 'transfer-encoding')
        assert.equal(te !== undefined, !withLength && !NO_CHUNK_METHODS.includes(method) && body.length > 0)
        assert.deepEqual(s.body, [...body])
      }),
      { numRuns: 40 },
    )
  } finally {
    await close(server)
  }
})

interface Resp {
  status: number
  fields: HeaderField[]
  pieces: Uint8Array[]
  known: boolean
  trailers: HeaderField[]
  head: boolean
}

const respArb: fc.Arbitrary<Resp> = fc.record({
  status: fc.oneof(fc.constantFrom(200, 201, 204, 301, 304, 404, 500), fc.integer({ min: 200, max: 599 })),
  fields: fieldsArb,
  pieces: bodyArb,
  known: fc.boolean(),
  trailers: fieldsArb,
  head: fc.boolean(),
})

test('node:http clients read what our ResponseWriter writes', { timeout: 60_000 }, async () => {
  let next: Resp | undefined
  const server = net.createServer((sock) => {
    sock.on('error', () => {})
    const p = new RequestParser({
      onHead: () => {},
      onBody: () => {},
      onMessageEnd: () => {
        const r = next!
        const body = concat(r.pieces)
        const w = new ResponseWriter({ requestMethod: r.head ? 'HEAD' : 'GET', keepAlive: false })
        const out = [w.head({ status: r.status, headers: r.fields, bodyLength: r.known ? body.length : undefined, trailers: r.trailers.map(([n]) => n) })]
        for (const piece of r.pieces) out.push(...w.body(piece))
        out.push(w.end(r.trailers))
        for (const o of out) sock.write(o)
        sock.end()
      },
    })
    sock.on('data', (c: Buffer) => p.push(new Uint8Array(c.buffer, c.byteOffset, c.length)))
  })
  const port = await listen(server)
  try {
    await fc.assert(
      fc.asyncProperty(respArb, async (r) => {
        next = r
        const got = await new Promise<{ status: number; headers: HeaderField[]; body: number[]; trailers: HeaderField[] }>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port, method: r.head ? 'HEAD' : 'GET', path: '/', agent: false }, (res) => {
            const body: Buffer[] = []
            res.on('data', (c: Buffer) => body.push(c))
            res.on('end', () => resolve({ status: res.statusCode!, headers: pairs(res.rawHeaders), body: [...Buffer.concat(body)], trailers: pairs(res.rawTrailers) }))
            res.on('error', reject)
          })
          req.on('error', reject)
          req.end()
        })
        const noBody = r.head || r.status === 204 || r.status === 304
        assert.equal(got.status, r.status)
        assert.deepEqual(got.headers.slice(0, r.fields.length), r.fields)
        assert.deepEqual(got.body, noBody ? [] : [...concat(r.pieces)])
        const chunked = !noBody && !r.known
        assert.deepEqual(got.trailers, chunked ? r.trailers : [])
      }),
      { numRuns: 60 },
    )
  } finally {
    await close(server)
  }
})

test('node:http servers read our RequestWriter, and our ResponseParser reads their responses', { timeout: 60_000 }, async () => {
  let plan: Resp | undefined
  let lastReq: Seen | undefined
  const server = http.createServer((req, res) => {
    const body: Buffer[] = []
    req.on('data', (c: Buffer) => body.push(c))
    req.on('end', () => {
      lastReq = { method: req.method!, url: req.url!, headers: pairs(req.rawHeaders), body: [...Buffer.concat(body)], trailers: pairs(req.rawTrailers) }
      const r = plan!
      const b = concat(r.pieces)
      const headers: [string, string][] = [...r.fields]
      if (r.known) headers.push(['Content-Length', String(b.length)])
      res.writeHead(r.status, headers.flat())
      for (const piece of r.pieces) res.write(piece)
      if (!r.known && r.trailers.length > 0 && r.status !== 204 && r.status !== 304 && !r.head) res.addTrailers(r.trailers)
      res.end()
    })
  })
  const port = await listen(server)
  try {
    await fc.assert(
      fc.asyncProperty(respArb, methodArb, fieldsArb, bodyArb, fc.boolean(), async (r, method, reqFields, reqPieces, reqChunked) => {
        plan = r
        const reqMethod = r.head ? 'HEAD' : method
        const reqBody = concat(reqPieces)
        const w = new RequestWriter()
        const wire = [
          w.head({ method: reqMethod, target: '/p?q=1', headers: [['Host', 'example.test'], ...reqFields], chunked: reqChunked, bodyLength: reqChunked ? undefined : reqBody.length }),
        ]
        for (const piece of reqPieces) wire.push(...w.body(piece))
        wire.push(w.end())

        const got: { head: ResponseHead | undefined; body: number[]; trailers: HeaderField[] } = { head: undefined, body: [], trailers: [] }
        await new Promise<void>((resolve, reject) => {
          const p = new ResponseParser(
            {
              onHead: (h) => {
                got.head = h
              },
              onBody: (c) => got.body.push(...c),
              onTrailers: (t) => {
                got.trailers = t
              },
              onMessageEnd: () => resolve(),
            },
            { requestMethod: reqMethod },
          )
          const sock = net.connect(port, '127.0.0.1')
          sock.on('data', (c: Buffer) => {
            try {
              p.push(new Uint8Array(c.buffer, c.byteOffset, c.length))
            } catch (err) {
              reject(err as Error)
            }
          })
          sock.on('error', reject)
          for (const x of wire) sock.write(x)
          sock.on('close', () => reject(new Error('closed before the response ended')))
        })
        assert.equal(lastReq!.method, reqMethod)
        assert.equal(lastReq!.url, '/p?q=1')
        assert.deepEqual(lastReq!.headers.slice(0, reqFields.length + 1), [['Host', 'example.test'], ...reqFields])
        assert.deepEqual(lastReq!.body, reqMethod === 'HEAD' && !reqChunked && reqBody.length === 0 ? [] : [...reqBody])
        const noBody = r.head || r.status === 204 || r.status === 304
        assert.equal(got.head!.status, r.status)
        assert.deepEqual(got.head!.headers.slice(0, r.fields.length), r.fields)
        assert.deepEqual(got.body, noBody ? [] : [...concat(r.pieces)])
        if (!noBody && !r.known) assert.deepEqual(got.trailers, r.trailers)
      }),
      { numRuns: 60 },
    )
  } finally {
    await close(server)
  }
})

/** Node's answer to raw request bytes: its status line (it closes after an error). */
async function nodeVerdict(port: number, bytes: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.end(bytes))
    let text = ''
    sock.on('data', (c: Buffer) => (text += c.toString('latin1')))
    sock.on('error', reject)
    sock.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)))
  })
}

function ourVerdict(bytes: Uint8Array): number {
  try {
    oursRequests(bytes)
    return 200
  } catch (err) {
    assert.ok(isWsfrpError(err, 'ERR_HTTP_PARSE') || isWsfrpError(err, 'ERR_HTTP_LIMIT'), String(err))
    return (err as HttpError).status
  }
}

test('node:http and our parser agree on refusing smuggling attempts and oversized heads', { timeout: 30_000 }, async () => {
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => res.end())
  })
  const port = await listen(server)
  try {
    const cases: [string, string, number][] = [
      ['CL + TE', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
      ['TE + CL', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n', 400],
      ['differing Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', 400],
      ['Content-Length list', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!', 400],
      ['signed Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello', 400],
      ['chunked twice', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n', 400],
      ['chunked not last', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n', 400],
      ['look-alike coding', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunkedx\r\n\r\n', 400],
      ['obs-fold', 'POST / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n', 400],
      ['space before colon', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n', 400],
      ['bare LF', 'GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n', 400],
      ['bare CR', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n', 400],
      ['NUL in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n', 400],
      ['chunk size not hex', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\ng\r\n', 400],
      ['chunk size 0x', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n', 400],
      ['overflowing chunk size', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n', 400],
      ['chunk data overrun', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n', 400],
      ['missing Host', 'GET / HTTP/1.1\r\nX-A: 1\r\n\r\n', 400],
      ['20 KiB header section', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20 * 1024)}\r\n\r\n`, 431],
    ]
    for (const [label, req, status] of cases) {
      const b = raw(req)
      assert.equal(ourVerdict(b), status, `ours: ${label}`)
      assert.equal(await nodeVerdict(port, b), status, `node: ${label}`)
    }
    // And both accept a head just under the default 16 KiB.
    const ok = raw(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(15 * 1024)}\r\n\r\n`)
    assert.equal(ourVerdict(ok), 200)
    assert.equal(await nodeVerdict(port, ok), 200)
  } finally {
    await close(server)
  }
})
