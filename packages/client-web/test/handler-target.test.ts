import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { RequestWriter, ResponseParser, type Conn, type HeaderField, type ResponseHead } from '@wsfrp/core'
import { memoryPair } from '@wsfrp/core/testing'
import { serveHttp, type FetchHandler, type HandlerInfo, type HandlerTargetOptions } from '@wsfrp/client-web'

const enc = new TextEncoder()
const dec = new TextDecoder()

interface Res {
  head: ResponseHead
  interim: ResponseHead[]
  chunks: Uint8Array[]
  body: Uint8Array
  text: string
  header(name: string): string | undefined
}

interface Req {
  method?: string
  target?: string
  headers?: HeaderField[]
  /** Sent with Content-Length, or chunked when `chunked`. */
  body?: Uint8Array | Uint8Array[]
  chunked?: boolean
  keepAlive?: boolean
  onBody?: (chunk: Uint8Array) => void
}

interface Pending {
  method: string
  interim: ResponseHead[]
  head: ResponseHead | undefined
  chunks: Uint8Array[]
  onBody: ((chunk: Uint8Array) => void) | undefined
  resolve: (r: Res) => void
  reject: (e: Error) => void
}

/** An HTTP/1.1 client over a Conn, built from the core's request writer and response parser. */
class TestClient {
  readonly ended: Promise<void>
  readonly closed: Promise<Error | undefined>
  private readonly parser: ResponseParser
  private readonly pending: Pending[] = []
  private drainWaiters: (() => void)[] = []
  private closeErr: Error | undefined
  private isClosed = false

  constructor(readonly conn: Conn) {
    let endResolve!: () => void
    let closeResolve!: (e: Error | undefined) => void
    this.ended = new Promise((r) => (endResolve = r))
    this.closed = new Promise((r) => (closeResolve = r))
    this.parser = new ResponseParser({
      onHead: (h) => {
        const p = this.pending[0]
        if (p === undefined) throw new Error('a response nobody asked for')
        if (h.status < 200) p.interim.push(h)
        else p.head = h
      },
      onBody: (c) => {
        const p = this.pending[0]!
        p.chunks.push(c.slice())
        p.onBody?.(c)
      },
      onMessageEnd: () => {
        const p = this.pending[0]!
        if (p.head === undefined) return // an interim response
        this.pending.shift()
        this.parser.requestMethod = this.pending[0]?.method ?? 'GET'
        const body = concat(p.chunks)
        const head = p.head
        p.resolve({
          head,
          interim: p.interim,
          chunks: p.chunks,
          body,
          text: dec.decode(body),
          header: (n) => head.headers.find(([k]) => k.toLowerCase() === n.toLowerCase())?.[1],
        })
      },
    })
    conn.start({
      onData: (c) => {
        try {
          this.parser.push(c)
        } catch (err) {
          this.failAll(err as Error)
          conn.destroy(err as Error)
        }
      },
      onDrain: () => {
        const w = this.drainWaiters
        this.drainWaiters = []
        for (const f of w) f()
      },
      onEnd: () => {
        try {
          this.parser.finish()
        } catch (err) {
          this.failAll(err as Error)
        }
        endResolve()
      },
      onClose: (err) => {
        this.isClosed = true
        this.closeErr = err
        this.failAll(err ?? new Error('connection closed'))
        const w = this.drainWaiters
        this.drainWaiters = []
        for (const f of w) f()
        closeResolve(err)
      },
    })
  }

  /** Writes with backpressure: waits for onDrain after a false write. Returns how many writes returned false. */
  async write(bytes: Uint8Array): Promise<void> {
    if (this.isClosed) throw this.closeErr ?? new Error('closed')
    if (!this.conn.write(bytes)) await new Promise<void>((r) => this.drainWaiters.push(r))
  }

  /** Registers the answer to a request the caller writes itself. */
  expect(method: string, onBody?: (chunk: Uint8Array) => void): Promise<Res> {
    let resolve!: (x: Res) => void
    let reject!: (e: Error) => void
    const response = new Promise<Res>((a, b) => {
      resolve = a
      reject = b
    })
    response.catch(() => {})
    this.pending.push({ method, interim: [], head: undefined, chunks: [], onBody, resolve, reject })
    if (this.pending.length === 1) this.parser.requestMethod = method
    return response
  }

  /** Sends one request (pipelining is allowed: call again before the answer). */
  request(r: Req): { response: Promise<Res>; sent: Promise<void> } {
    const method = r.method ?? 'GET'
    const response = this.expect(method, r.onBody)
    const pieces = r.body === undefined ? [] : r.body instanceof Uint8Array ? [r.body] : r.body
    const length = pieces.reduce((n, p) => n + p.length, 0)
    const w = new RequestWriter()
    const sent = (async () => {
      await this.write(
        w.head({
          method,
          target: r.target ?? '/',
          headers: [['Host', 'example.test'], ...(r.headers ?? [])],
          chunked: r.chunked,
          bodyLength: r.chunked ? undefined : length,
          keepAlive: r.keepAlive,
        }),
      )
      for (const p of pieces) for (const b of w.body(p)) await this.write(b)
      const end = w.end()
      if (end.length > 0) await this.write(end)
    })()
    sent.catch(() => {})
    return { response, sent }
  }

  async fetch(r: Req): Promise<Res> {
    const { response, sent } = this.request(r)
    await sent
    return response
  }

  private failAll(err: Error): void {
    for (const p of this.pending.splice(0)) p.reject(err)
  }
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

function setup(handler: FetchHandler, opts?: HandlerTargetOptions & { pairHighWaterMark?: number }): { client: TestClient; served: Promise<void> } {
  const { a, b } = memoryPair({ highWaterMark: opts?.pairHighWaterMark })
  const served = serveHttp(b, handler, { proxyName: 'web', remoteAddr: '203.0.113.7', remotePort: 5555, ...opts })
  served.catch(() => {})
  return { client: new TestClient(a), served }
}

/** Lets queued microtasks and immediate callbacks run (no timers involved). */
async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r))
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

test('GET: the handler gets a WHATWG Request; its Response comes back chunked', { timeout: 10_000 }, async () => {
  let seen: { request: Request; info: HandlerInfo } | undefined
  const { client, served } = setup((request, info) => {
    seen = { request, info }
    return new Response(`hello ${new URL(request.url).pathname}`, { headers: { 'X-A': 'b' } })
  })
  const res = await client.fetch({ target: '/path?q=1', headers: [['Accept', 'text/plain'], ['Cookie', 'c=1']] })
  assert.equal(res.head.status, 200)
  assert.equal(res.text, 'hello /path')
  assert.equal(res.header('x-a'), 'b')
  assert.equal(res.header('content-type'), 'text/plain;charset=UTF-8')
  assert.equal(res.header('transfer-encoding'), 'chunked')
  assert.ok(seen)
  assert.equal(seen.request.method, 'GET')
  assert.equal(seen.request.url, 'http://example.test/path?q=1')
  assert.equal(seen.request.headers.get('host'), 'example.test')
  assert.equal(seen.request.headers.get('cookie'), 'c=1')
  assert.equal(seen.request.body, null)
  assert.equal(seen.info.proxyName, 'web')
  assert.equal(seen.info.remoteAddr, '203.0.113.7')
  assert.equal(seen.info.remotePort, 5555)
  assert.deepEqual(seen.info.rawHeaders, [
    ['Host', 'example.test'],
    ['Accept', 'text/plain'],
    ['Cookie', 'c=1'],
  ])
  client.conn.end()
  await client.ended
  await served
})

test('POST with a 10 MiB streamed body: the handler hashes the stream; sha256 equal', { timeout: 30_000 }, async () => {
  const data = new Uint8Array(randomBytes(10 * 1024 * 1024))
  const { client, served } = setup(async (request) => {
    const h = createHash('sha256')
    let n = 0
    for await (const c of request.body!) {
      h.update(c)
      n += c.length
    }
    return Response.json({ sha: h.digest('hex'), n })
  })
  const pieces: Uint8Array[] = []
  for (let o = 0; o < data.length; o += 64 * 1024) pieces.push(data.subarray(o, o + 64 * 1024))
  const res = await client.fetch({ method: 'POST', target: '/upload', body: pieces })
  assert.equal(res.head.status, 200)
  assert.deepEqual(JSON.parse(res.text), { sha: sha256(data), n: data.length })
  // Chunked upload of the same bytes on the same connection.
  const res2 = await client.fetch({ method: 'PUT', target: '/upload', body: pieces, chunked: true })
  assert.deepEqual(JSON.parse(res2.text), { sha: sha256(data), n: data.length })
  client.conn.end()
  await served
})

test('request body backpressure: an unread body stops the sender after a bounded amount', { timeout: 20_000 }, async () => {
  let open!: () => void
  const gate = new Promise<void>((r) => (open = r))
  const { client, served } = setup(
    async (request) => {
      await gate
      return new Response(sha256(new Uint8Array(await request.arrayBuffer())))
    },
    { bodyHighWaterMark: 64 * 1024, pairHighWaterMark: 64 * 1024 },
  )
  const data = new Uint8Array(randomBytes(4 * 1024 * 1024))
  const response = client.expect('POST')
  const w = new RequestWriter()
  let accepted = 0
  const writing = (async () => {
    await client.write(w.head({ method: 'POST', target: '/slow', headers: [['Host', 'example.test']], bodyLength: data.length }))
    for (let o = 0; o < data.length; o += 16 * 1024) {
      await client.write(data.subarray(o, o + 16 * 1024))
      accepted += 16 * 1024
    }
  })()
  await settle()
  // Stream queue (64 KiB) + the pair's queue (64 KiB) + a chunk or two in flight; never the 4 MiB.
  assert.ok(accepted >= 64 * 1024, `accepted ${accepted}`)
  assert.ok(accepted <= 256 * 1024, `accepted ${accepted} bytes while the handler read nothing`)
  open()
  await writing
  const res = await response
  assert.equal(res.text, sha256(data))
  client.conn.end()
  await served
})

test('a streamed response arrives chunk by chunk (the second is made after the first arrived)', { timeout: 10_000 }, async () => {
  let firstArrived!: () => void
  const arrived = new Promise<void>((r) => (firstArrived = r))
  const { client, served } = setup(
    () =>
      new Response(
        new ReadableStream<Uint8Array>({
          async start(c) {
            c.enqueue(enc.encode('part one|'))
            await arrived
            c.enqueue(enc.encode('part two'))
            c.close()
          },
        }),
      ),
  )
  const seen: string[] = []
  const res = await client.fetch({
    target: '/stream',
    onBody: (c) => {
      seen.push(dec.decode(c))
      if (seen.length === 1) firstArrived()
    },
  })
  assert.equal(res.text, 'part one|part two')
  assert.deepEqual(seen, ['part one|', 'part two'])
  assert.equal(res.header('transfer-encoding'), 'chunked')
  client.conn.end()
  await served
})

test('response backpressure: a client that stops reading stops the response stream', { timeout: 20_000 }, async () => {
  const piece = new Uint8Array(randomBytes(64 * 1024))
  const total = 128
  let pulled = 0
  const { client, served } = setup(
    () =>
      new Response(
        new ReadableStream<Uint8Array>(
          {
            pull(c) {
              pulled++
              c.enqueue(piece)
              if (pulled === total) c.close()
            },
          },
          { highWaterMark: 0 },
        ),
        { headers: { 'Content-Length': String(piece.length * total) } },
      ),
    { pairHighWaterMark: 64 * 1024 },
  )
  client.conn.pause()
  const res = client.request({ target: '/big' })
  await res.sent
  await settle()
  assert.ok(pulled > 0 && pulled <= 6, `pulled ${pulled} of ${total} chunks while the client was not reading`)
  client.conn.resume()
  const r = await res.response
  assert.equal(r.header('content-length'), String(piece.length * total))
  assert.equal(r.body.length, piece.length * total)
  assert.equal(pulled, total)
  client.conn.end()
  await served
})

test('keep-alive: three sequential requests on one connection, then a clean end', { timeout: 10_000 }, async () => {
  let calls = 0
  const { client, served } = setup(async (request) => {
    calls++
    const body = request.body ? await request.text() : ''
    return new Response(`#${calls} ${request.method} ${new URL(request.url).pathname} ${body}`)
  })
  let servedDone = false
  void served.then(() => (servedDone = true))
  const r1 = await client.fetch({ target: '/one' })
  const r2 = await client.fetch({ method: 'POST', target: '/two', body: enc.encode('payload') })
  const r3 = await client.fetch({ method: 'DELETE', target: '/three' })
  assert.deepEqual([r1.text, r2.text, r3.text], ['#1 GET /one ', '#2 POST /two payload', '#3 DELETE /three '])
  for (const r of [r1, r2, r3]) assert.equal(r.header('connection'), undefined)
  await settle()
  assert.equal(servedDone, false, 'the connection stays open between requests')
  client.conn.end()
  await client.ended
  await served
  assert.equal(calls, 3)
})

test('pipelined requests are answered in order, one at a time', { timeout: 10_000 }, async () => {
  let active = 0
  let maxActive = 0
  const { client, served } = setup(async (request) => {
    active++
    maxActive = Math.max(maxActive, active)
    const path = new URL(request.url).pathname
    // Later requests finish faster: order must still hold.
    await settle(path === '/a' ? 6 : 1)
    active--
    return new Response(path)
  })
  const w = [new RequestWriter(), new RequestWriter(), new RequestWriter()]
  const answers = ['/a', '/b', '/c'].map((p) => client.expect(p === '/b' ? 'POST' : 'GET'))
  const bytes = concat([
    w[0]!.head({ method: 'GET', target: '/a', headers: [['Host', 'h']] }),
    w[1]!.head({ method: 'POST', target: '/b', headers: [['Host', 'h']], bodyLength: 3 }),
    enc.encode('xyz'),
    w[2]!.head({ method: 'GET', target: '/c', headers: [['Host', 'h']] }),
  ])
  await client.write(bytes)
  const texts = (await Promise.all(answers)).map((r) => r.text)
  assert.deepEqual(texts, ['/a', '/b', '/c'])
  assert.equal(maxActive, 1)
  client.conn.end()
  await served
})

test('a handler that throws, rejects or returns a non-Response gives a 500; the connection goes on', { timeout: 10_000 }, async () => {
  const warnings: string[] = []
  const logger = {
    debug() {},
    info() {},
    warn: (m: string) => warnings.push(m),
    error() {},
    child() {
      return logger
    },
  }
  const { client, served } = setup(
    async (request) => {
      const p = new URL(request.url).pathname
      if (p === '/throw') throw new Error('boom')
      if (p === '/reject') return Promise.reject(new Error('later boom'))
      if (p === '/bad') return 'not a response' as unknown as Response
      return new Response('fine')
    },
    { logger },
  )
  for (const target of ['/throw', '/reject', '/bad']) {
    const r = await client.fetch({ target })
    assert.equal(r.head.status, 500, target)
    assert.equal(r.text, 'Internal Server Error\n')
    assert.equal(r.header('content-type'), 'text/plain; charset=utf-8')
  }
  // A POST whose body was never read: the body is skipped, the stream stays in sync.
  const { response } = client.request({ method: 'POST', target: '/throw', body: new Uint8Array(200_000) })
  assert.equal((await response).head.status, 500)
  assert.equal((await client.fetch({ target: '/ok' })).text, 'fine')
  assert.equal(warnings.length, 4)
  client.conn.end()
  await served
})

test('a malformed request gets 400 and the connection closes; an oversized head gets 431', { timeout: 10_000 }, async () => {
  for (const [raw, status] of [
    ['GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 400],
    [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
    ['GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501],
  ] as const) {
    let called = false
    const { client, served } = setup(() => {
      called = true
      return new Response('no')
    })
    const answer = client.expect('GET')
    await client.write(enc.encode(raw))
    const r = await answer
    assert.equal(r.head.status, status)
    assert.equal(r.header('connection'), 'close')
    assert.match(r.text, /^\w/)
    await client.ended
    client.conn.end()
    await served
    assert.equal(called, false)
  }
})

test('HEAD answers carry no body; 204 and 304 neither', { timeout: 10_000 }, async () => {
  const { client, served } = setup((request) => {
    const p = new URL(request.url).pathname
    if (p === '/204') return new Response(null, { status: 204 })
    if (p === '/304') return new Response(null, { status: 304, headers: { ETag: '"x"' } })
    return new Response('0123456789', { headers: { 'Content-Length': '10' } })
  })
  const head = await client.fetch({ method: 'HEAD', target: '/' })
  assert.equal(head.head.status, 200)
  assert.equal(head.header('content-length'), '10')
  assert.equal(head.body.length, 0)
  assert.equal((await client.fetch({ target: '/204' })).head.status, 204)
  const nm = await client.fetch({ target: '/304' })
  assert.equal(nm.head.status, 304)
  assert.equal(nm.header('etag'), '"x"')
  const get = await client.fetch({ target: '/' })
  assert.equal(get.text, '0123456789')
  assert.equal(get.header('transfer-encoding'), undefined)
  client.conn.end()
  await served
})

test('Expect: 100-continue gets an interim 100 before the final answer', { timeout: 10_000 }, async () => {
  const { client, served } = setup(async (request) => new Response(`got ${await request.text()}`))
  const r = await client.fetch({ method: 'POST', target: '/e', headers: [['Expect', '100-continue']], body: enc.encode('data') })
  assert.deepEqual(
    r.interim.map((h) => h.status),
    [100],
  )
  assert.equal(r.text, 'got data')
  const odd = await client.fetch({ method: 'POST', target: '/e', headers: [['Expect', 'something-else']], body: enc.encode('x') })
  assert.equal(odd.head.status, 417)
  client.conn.end()
  await served
})

test('Connection: close from the client or the handler ends the connection after the response', { timeout: 10_000 }, async () => {
  for (const side of ['client', 'handler'] as const) {
    const { client, served } = setup(() => new Response('bye', { headers: side === 'handler' ? { Connection: 'close' } : {} }))
    const r = await client.fetch({ target: '/', keepAlive: side !== 'client' })
    assert.equal(r.text, 'bye')
    assert.equal(r.header('connection'), 'close')
    await client.ended
    client.conn.end()
    await served
  }
})

test('a body that contradicts its Content-Length destroys the connection instead of lying', { timeout: 10_000 }, async () => {
  const { client, served } = setup(() => new Response('short', { headers: { 'Content-Length': '100' } }))
  const { response } = client.request({ target: '/' })
  await assert.rejects(response)
  assert.ok((await client.closed) instanceof Error)
  await assert.rejects(served, /shorter than its Content-Length/)
})

test('the handler echoes its request body as its response body (full duplex streaming)', { timeout: 20_000 }, async () => {
  const data = new Uint8Array(randomBytes(2 * 1024 * 1024))
  const { client, served } = setup((request) => new Response(request.body, { headers: { 'Content-Type': 'application/octet-stream' } }))
  const pieces: Uint8Array[] = []
  for (let o = 0; o < data.length; o += 32 * 1024) pieces.push(data.subarray(o, o + 32 * 1024))
  const r = await client.fetch({ method: 'POST', target: '/echo', body: pieces, chunked: true })
  assert.equal(sha256(r.body), sha256(data))
  client.conn.end()
  await served
})

test('GET with a body: the body is skipped and the next request parses', { timeout: 10_000 }, async () => {
  const { client, served } = setup((request) => new Response(`${request.method} body=${request.body === null ? 'null' : 'stream'}`))
  const w = new RequestWriter()
  const answer = client.expect('GET')
  await client.write(w.head({ method: 'GET', target: '/', headers: [['Host', 'h']], bodyLength: 5 }))
  await client.write(enc.encode('hello'))
  assert.equal((await answer).text, 'GET body=null')
  assert.equal((await client.fetch({ target: '/2' })).text, 'GET body=null')
  client.conn.end()
  await served
})

test('CONNECT is refused with 405 without calling the handler', { timeout: 10_000 }, async () => {
  let called = false
  const { client, served } = setup(() => {
    called = true
    return new Response('x')
  })
  const r = await client.fetch({ method: 'CONNECT', target: 'example.com:443' })
  assert.equal(r.head.status, 405)
  assert.equal(called, false)
  client.conn.end()
  await served
})

test('when the connection dies mid-request, the handler sees its signal abort and the body error', { timeout: 10_000 }, async () => {
  let seen!: (v: { aborted: boolean; bodyError: string }) => void
  const outcome = new Promise<{ aborted: boolean; bodyError: string }>((r) => (seen = r))
  let started!: () => void
  const began = new Promise<void>((r) => (started = r))
  const { client, served } = setup(async (request) => {
    started()
    let bodyError = ''
    try {
      await request.arrayBuffer()
    } catch (err) {
      bodyError = (err as Error).message
    }
    seen({ aborted: request.signal.aborted, bodyError })
    return new Response('late')
  })
  const w = new RequestWriter()
  client.expect('POST')
  await client.write(w.head({ method: 'POST', target: '/', headers: [['Host', 'h']], bodyLength: 1000 }))
  await client.write(new Uint8Array(10))
  await began
  client.conn.destroy(new Error('gone'))
  const o = await outcome
  assert.equal(o.aborted, true)
  assert.notEqual(o.bodyError, '')
  await assert.rejects(served)
})

test('browsers drop forbidden headers from new Request(): the target puts them back', { timeout: 10_000 }, async () => {
  const RealRequest = globalThis.Request
  // What a browser does (Fetch standard: the "request" header guard).
  class BrowserRequest extends RealRequest {
    constructor(input: RequestInfo | URL, init?: RequestInit) {
      const h = new Headers(init?.headers)
      for (const name of ['host', 'cookie', 'origin', 'content-length', 'connection']) h.delete(name)
      super(input, { ...init, headers: h })
    }
  }
  globalThis.Request = BrowserRequest as typeof Request
  try {
    let got: Record<string, string | null> | undefined
    const { client, served } = setup(async (request) => {
      got = { host: request.headers.get('host'), cookie: request.headers.get('cookie'), accept: request.headers.get('accept'), body: await request.text() }
      return new Response('ok')
    })
    await client.fetch({ method: 'POST', target: '/', headers: [['Cookie', 'sid=1'], ['Accept', '*/*']], body: enc.encode('b') })
    assert.deepEqual(got, { host: 'example.test', cookie: 'sid=1', accept: '*/*', body: 'b' })
    client.conn.end()
    await served
  } finally {
    globalThis.Request = RealRequest
  }
})

test('HTTP/1.0 clients get a close-delimited body and the connection ends', { timeout: 10_000 }, async () => {
  const { client, served } = setup(() => new Response('old school'))
  const answer = client.expect('GET')
  await client.write(enc.encode('GET /legacy HTTP/1.0\r\nHost: example.test\r\n\r\n'))
  await client.ended
  const r = await answer
  assert.equal(r.text, 'old school')
  assert.equal(r.header('connection'), 'close')
  client.conn.end()
  await served
})

// Regression: body bytes in the same chunk as the head were dropped, because the body stream was
// only made when the handler was called (a microtask later). Found by the wsfrps end-to-end test.
test('body bytes that arrive in the same chunk as the head reach the handler', { timeout: 10_000 }, async () => {
  const again = setup(async (request) => new Response(sha256(new Uint8Array(await request.arrayBuffer()))))
  const body = new Uint8Array(randomBytes(100_000))
  const w = new RequestWriter()
  const answer = again.client.expect('POST')
  // Head, the whole body and a second request in ONE write.
  const w2 = new RequestWriter()
  const second = again.client.expect('PUT')
  await again.client.write(
    concat([
      w.head({ method: 'POST', target: '/', headers: [['Host', 'h']], bodyLength: body.length }),
      body,
      w2.head({ method: 'PUT', target: '/', headers: [['Host', 'h']], chunked: true }),
      ...w2.body(body.subarray(0, 10)),
      w2.end(),
    ]),
  )
  assert.equal((await answer).text, sha256(body))
  assert.equal((await second).text, sha256(body.subarray(0, 10)))
  again.client.conn.end()
  await again.served
})

test('a request body that turns malformed while the response streams: the connection still ends', { timeout: 10_000 }, async () => {
  let open!: () => void
  const gate = new Promise<void>((r) => (open = r))
  const { client, served } = setup(
    () =>
      new Response(
        new ReadableStream<Uint8Array>({
          async start(c) {
            c.enqueue(enc.encode('first|'))
            await gate
            c.enqueue(enc.encode('rest'))
            c.close()
          },
        }),
      ),
  )
  let firstSeen!: () => void
  const first = new Promise<void>((r) => (firstSeen = r))
  const answer = client.expect('POST', () => firstSeen())
  const w = new RequestWriter()
  await client.write(w.head({ method: 'POST', target: '/', headers: [['Host', 'h']], chunked: true }))
  await first // the head went out with keep-alive; the body is still streaming
  await client.write(enc.encode('zz-not-hex\r\n'))
  await settle()
  open()
  const r = await answer
  assert.equal(r.text, 'first|rest')
  await client.ended
  client.conn.end()
  await served
})
