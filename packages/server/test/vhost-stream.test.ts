import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as http from 'node:http'
import * as net from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { WebSocket, WebSocketServer } from 'ws'
import { ERROR_HEADER } from '../src/vhost/index.js'
import { closeServer, describeHandler, localService, memoryProbe, rawExchange, request, startBench } from './vhost-support.js'

const T = { timeout: 30_000 }
const MiB = 1024 * 1024

test('vhost: sequential keep-alive requests reuse one work stream', T, async () => {
  const local = await localService(describeHandler('ka'))
  const bench = await startBench({ proxies: [{ name: 'ka', fields: { custom_domains: ['ka.test'] }, localPort: local.port }] })
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  try {
    for (let i = 0; i < 5; i++) {
      const r = await request(bench.port, 'ka.test', { path: `/${i}`, agent, method: i % 2 ? 'POST' : 'GET', body: i % 2 ? `body ${i}` : undefined })
      assert.equal(r.status, 200)
      assert.equal(JSON.parse(r.body.toString()).url, `/${i}`)
      if (i > 0) assert.equal(r.reused, true, 'the user connection was not kept alive')
    }
    // Separate user connections: still the same work stream (the pool is per proxy, like frps').
    for (let i = 0; i < 3; i++) assert.equal((await request(bench.port, 'ka.test')).status, 200)
    assert.equal(bench.starts.length, 1, `work streams started: ${bench.starts.length}`)
    assert.equal(local.requests.length, 8)
    // One TCP connection at the local service too.
    assert.equal(new Set(local.requests.map((r) => r.socket.remotePort)).size, 1)
  } finally {
    agent.destroy()
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: pipelined requests are answered in order', T, async () => {
  const local = await localService((req, res) => {
    // Answer the first one last: order must still hold on the user's connection.
    const delay = req.url === '/1' ? 50 : 0
    setTimeout(() => res.end(`answer ${req.url}`), delay)
  })
  const bench = await startBench({ proxies: [{ name: 'pl', fields: { custom_domains: ['pl.test'] }, localPort: local.port }] })
  try {
    const reqs = [1, 2, 3].map((i) => `GET /${i} HTTP/1.1\r\nHost: pl.test\r\n\r\n`).join('')
    const text = await rawExchange(bench.port, reqs, (t) => (t.match(/answer \/\d/g) ?? []).length === 3)
    const answers = [...text.matchAll(/answer (\/\d)/g)].map((m) => m[1])
    assert.deepEqual(answers, ['/1', '/2', '/3'])
    assert.equal((text.match(/HTTP\/1\.1 200 OK/g) ?? []).length, 3)
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: server-sent events arrive one by one (each before the next is written)', T, async () => {
  const signals: (() => void)[] = []
  const nextSignal = (): Promise<void> => new Promise((r) => signals.push(r))
  let written = 0
  const local = await localService((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' })
    res.flushHeaders()
    void (async () => {
      // Not a byte of body before the user has the response head: the proxy must flush it alone.
      await nextSignal()
      for (let i = 1; i <= 3; i++) {
        const seen = nextSignal()
        res.write(`data: event ${i}\n\n`)
        written = i
        // The next event is written only once the user has seen this one.
        await seen
      }
      res.end()
    })()
  })
  const bench = await startBench({ proxies: [{ name: 'sse', fields: { custom_domains: ['sse.test'] }, localPort: local.port }] })
  try {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: bench.port, path: '/events', headers: { host: 'sse.test', accept: 'text/event-stream' }, agent: false }, resolve).on('error', reject)
    })
    assert.equal(res.statusCode, 200)
    assert.equal(res.headers['content-type'], 'text/event-stream')
    assert.equal(written, 0)
    signals.shift()!()
    let buf = ''
    const got: string[] = []
    for await (const chunk of res) {
      buf += (chunk as Buffer).toString()
      let end: number
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, end)
        buf = buf.slice(end + 2)
        got.push(ev)
        assert.equal(written, got.length, 'an event arrived only after the next one was written')
        signals.shift()?.()
      }
    }
    assert.deepEqual(got, ['data: event 1', 'data: event 2', 'data: event 3'])
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

/** Random bytes the big bodies are cut from (each chunk at another offset, so reordering shows). */
const BASE = randomBytes(2 * MiB)

/**
 * The chunks of a big body: views of BASE at varying offsets, so that producing them costs nothing
 * and the producer outruns the consumer (backpressure is then really exercised).
 */
function* bodyChunks(total: number, chunkSize: number): Generator<Buffer> {
  for (let sent = 0, i = 0; sent < total; sent += chunkSize, i++) {
    const off = (i * 65_537) % MiB
    yield BASE.subarray(off, off + Math.min(chunkSize, total - sent))
  }
}

test('vhost: a 64 MiB chunked upload streams through intact with bounded memory', { timeout: 120_000 }, async () => {
  const total = 64 * MiB
  const local = await localService((req, res) => {
    const h = createHash('sha256')
    let n = 0
    req.on('data', (c: Buffer) => {
      h.update(c)
      n += c.length
    })
    req.on('end', () => res.end(JSON.stringify({ n, sha: h.digest('hex'), te: req.headers['transfer-encoding'] ?? null })))
  })
  const bench = await startBench({ proxies: [{ name: 'up', fields: { custom_domains: ['up.test'] }, localPort: local.port }] })
  try {
    const probe = memoryProbe()
    const reply = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: bench.port, method: 'PUT', path: '/upload', headers: { host: 'up.test' }, agent: false }, (res) => {
        let text = ''
        res.on('data', (c: Buffer) => (text += c.toString()))
        res.on('end', () => resolve(text))
      })
      req.on('error', reject)
      const gen = bodyChunks(total, 64 * 1024)
      const pump = (): void => {
        for (;;) {
          const next = gen.next()
          if (next.done) {
            req.end()
            return
          }
          if (!req.write(next.value)) {
            req.once('drain', pump)
            return
          }
        }
      }
      pump()
    })
    const mem = probe.stop()
    const got = JSON.parse(reply) as { n: number; sha: string; te: string | null }
    assert.equal(got.n, total)
    assert.equal(got.te, 'chunked')
    // Computed afterwards: generating the expected bytes first would inflate the baseline.
    const want = createHash('sha256')
    for (const c of bodyChunks(total, 64 * 1024)) want.update(c)
    const expected = want.digest('hex')
    if (process.env.VHOST_DEBUG) console.log(`live ${(mem.livePeak / MiB).toFixed(1)} MiB, rss ${(mem.rssPeak / MiB).toFixed(1)} MiB`)
    assert.equal(got.sha, expected)
    // Every hop holds at most a window or a stream buffer: yamux windows grow to 6 MiB per stream
    // (frp's size), Node buffers are 16-64 KiB. Without backpressure it would be the whole body.
    assert.ok(mem.livePeak < 24 * MiB, `live memory grew by ${(mem.livePeak / MiB).toFixed(1)} MiB while streaming 64 MiB`)
    assert.ok(mem.rssPeak < 40 * MiB, `RSS grew by ${(mem.rssPeak / MiB).toFixed(1)} MiB while streaming 64 MiB`)
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: a 64 MiB download to a user that stops reading stalls the local service (bounded memory)', { timeout: 120_000 }, async () => {
  const total = 64 * MiB
  const producer = { written: 0, blocked: false, done: false }
  const local = await localService((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(total) })
    const gen = bodyChunks(total, 64 * 1024)
    const pump = (): void => {
      producer.blocked = false
      for (;;) {
        const next = gen.next()
        if (next.done) {
          producer.done = true
          res.end()
          return
        }
        producer.written += next.value.length
        if (!res.write(next.value)) {
          producer.blocked = true
          res.once('drain', pump)
          return
        }
      }
    }
    pump()
  })
  const bench = await startBench({ proxies: [{ name: 'down', fields: { custom_domains: ['down.test'] }, localPort: local.port }] })
  try {
    const probe = memoryProbe()
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: bench.port, path: '/file', headers: { host: 'down.test' }, agent: false }, resolve).on('error', reject)
    })
    assert.equal(res.headers['content-length'], String(total))
    const h = createHash('sha256')
    let n = 0
    let stopped = false
    let reachedMiB!: () => void
    const firstMiB = new Promise<void>((r) => (reachedMiB = r))
    const ended = new Promise<void>((resolve, reject) => {
      res.on('end', resolve)
      res.on('error', reject)
    })
    res.on('data', (c: Buffer) => {
      h.update(c)
      n += c.length
      if (n >= MiB && !stopped) {
        stopped = true
        res.pause()
        reachedMiB()
      }
    })
    await firstMiB
    // The user reads nothing more: wait until the local service stops making progress (no I/O
    // event moves its byte count for many event-loop turns), then look at what is in flight.
    let last = -1
    for (let still = 0; still < 200; ) {
      await new Promise((r) => setImmediate(r))
      if (producer.written === last) still++
      else {
        still = 0
        last = producer.written
      }
    }
    const stalled = { ...producer }
    const inFlight = stalled.written - n
    if (process.env.VHOST_DEBUG) console.log(`stalled with ${(inFlight / MiB).toFixed(1)} MiB in flight`)
    assert.equal(stalled.done, false, 'the local service wrote the whole body although nobody read it')
    assert.equal(stalled.blocked, true)
    // TCP buffers on three sockets plus one yamux window (6 MiB at most).
    assert.ok(inFlight < 32 * MiB, `${(inFlight / MiB).toFixed(1)} MiB in flight for a stalled reader`)
    res.resume()
    await ended
    const mem = probe.stop()
    assert.equal(n, total)
    const want = createHash('sha256')
    for (const c of bodyChunks(total, 64 * 1024)) want.update(c)
    assert.equal(h.digest('hex'), want.digest('hex'))
    if (process.env.VHOST_DEBUG) console.log(`live ${(mem.livePeak / MiB).toFixed(1)} MiB, rss ${(mem.rssPeak / MiB).toFixed(1)} MiB`)
    assert.ok(mem.livePeak < 24 * MiB, `live memory grew by ${(mem.livePeak / MiB).toFixed(1)} MiB while streaming 64 MiB`)
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: a WebSocket to a proxied host is passed through (text and 1 MiB binary echo)', T, async () => {
  const local = await localService((_req, res) => res.end('plain'))
  const wss = new WebSocketServer({ server: local.server })
  wss.on('connection', (ws, req) => {
    ws.send(`hello ${req.url} ${req.headers['x-forwarded-for']}`)
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
  })
  const bench = await startBench({ proxies: [{ name: 'ws', fields: { custom_domains: ['ws.test'] }, localPort: local.port }] })
  const ws = new WebSocket(`ws://127.0.0.1:${bench.port}/chat?room=1`, { headers: { host: 'ws.test' } })
  try {
    const messages: { data: Buffer; binary: boolean }[] = []
    const waiters: (() => void)[] = []
    ws.on('message', (data: Buffer, binary) => {
      messages.push({ data, binary })
      waiters.shift()?.()
    })
    const nextMessage = async (): Promise<{ data: Buffer; binary: boolean }> => {
      if (messages.length === 0) await new Promise<void>((r) => waiters.push(r))
      return messages.shift()!
    }
    await once(ws, 'open')
    assert.equal((await nextMessage()).data.toString(), 'hello /chat?room=1 127.0.0.1')
    ws.send('ping')
    const echo = await nextMessage()
    assert.equal(echo.data.toString(), 'ping')
    assert.equal(echo.binary, false)
    const big = Buffer.alloc(MiB)
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff
    ws.send(big)
    const back = await nextMessage()
    assert.equal(back.binary, true)
    assert.ok(back.data.equals(big), 'binary echo differs')
    ws.close(1000, 'bye')
    const [code] = (await once(ws, 'close')) as [number]
    assert.equal(code, 1000)
  } finally {
    ws.terminate()
    wss.close()
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: an upgrade the local service refuses gets its answer', T, async () => {
  const local = await localService((_req, res) => res.end('plain'))
  local.server.on('upgrade', (_req, socket) => {
    // The tunnel resets its side when the test ends: an upgraded socket has no error listener of its own.
    socket.on('error', () => {})
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\nConnection: close\r\n\r\nnope!\n')
  })
  const bench = await startBench({ proxies: [{ name: 'wsno', fields: { custom_domains: ['wsno.test'] }, localPort: local.port }] })
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${bench.port}/`, { headers: { host: 'wsno.test' } })
    ws.on('error', () => {})
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, http.IncomingMessage]
    assert.equal(res.statusCode, 403)
    res.resume()
    ws.terminate()
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: Expect: 100-continue is relayed from the local service, and a refusal stops the upload', T, async () => {
  const local = await localService(describeHandler('exp'))
  let checked = 0
  // The local service decides about the 100 itself (as a real app would).
  local.server.removeAllListeners('checkContinue')
  local.server.on('checkContinue', (req, res) => {
    checked++
    if (req.headers['x-too-big'] !== undefined) {
      res.writeHead(413, { 'Content-Length': '0', Connection: 'close' })
      res.end()
      return
    }
    res.writeContinue()
    local.server.emit('request', req, res)
  })
  const bench = await startBench({ proxies: [{ name: 'exp', fields: { custom_domains: ['exp.test'] }, localPort: local.port }] })
  try {
    const s = net.connect(bench.port, '127.0.0.1')
    let text = ''
    const waitFor = (re: RegExp): Promise<void> =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (re.test(text)) {
            s.off('data', onData)
            resolve()
          }
        }
        const onData = (c: Buffer): void => {
          text += c.toString()
          check()
        }
        s.on('data', onData)
        s.once('close', () => reject(new Error(`closed; got: ${text}`)))
        check()
      })
    s.write('POST /up HTTP/1.1\r\nHost: exp.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n')
    await waitFor(/^HTTP\/1\.1 100 Continue\r\n\r\n/)
    assert.equal(checked, 1, 'the 100 did not come from the local service')
    s.write('hello')
    await waitFor(/"body":"hello"/)
    assert.match(text, /HTTP\/1\.1 200 OK/)
    assert.match(text, /"expect":"100-continue"/)
    s.destroy()

    const refused = await rawExchange(
      bench.port,
      'POST /up HTTP/1.1\r\nHost: exp.test\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\nX-Too-Big: 1\r\n\r\n',
      (t) => /\r\n\r\n/.test(t),
    )
    assert.match(refused, /^HTTP\/1\.1 413 /)
    assert.doesNotMatch(refused, /100 Continue/)
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: HEAD, 204 and 304 carry no body and keep the connection usable', T, async () => {
  const local = await localService((req, res) => {
    if (req.url === '/204') {
      res.writeHead(204)
      res.end()
    } else if (req.url === '/304') {
      res.writeHead(304, { ETag: '"v1"' })
      res.end()
    } else {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '11' })
      res.end(req.method === 'HEAD' ? undefined : 'hello world')
    }
  })
  const bench = await startBench({ proxies: [{ name: 'hb', fields: { custom_domains: ['hb.test'] }, localPort: local.port }] })
  try {
    const text = await rawExchange(
      bench.port,
      'HEAD / HTTP/1.1\r\nHost: hb.test\r\n\r\n' +
        'GET /204 HTTP/1.1\r\nHost: hb.test\r\n\r\n' +
        'GET /304 HTTP/1.1\r\nHost: hb.test\r\nIf-None-Match: "v1"\r\n\r\n' +
        'GET / HTTP/1.1\r\nHost: hb.test\r\n\r\n',
      (t) => t.endsWith('hello world'),
    )
    const parts = text.split(/(?=HTTP\/1\.1 \d{3} )/)
    assert.equal(parts.length, 4, text)
    assert.match(parts[0]!, /^HTTP\/1\.1 200 OK\r\n/)
    assert.match(parts[0]!, /Content-Length: 11\r\n/i)
    assert.ok(parts[0]!.endsWith('\r\n\r\n'), 'HEAD answer has a body')
    assert.match(parts[1]!, /^HTTP\/1\.1 204 No Content\r\n/)
    assert.ok(parts[1]!.endsWith('\r\n\r\n'), '204 answer has a body')
    assert.match(parts[2]!, /^HTTP\/1\.1 304 Not Modified\r\n/)
    assert.match(parts[2]!, /ETag: "v1"/i)
    assert.ok(parts[2]!.endsWith('\r\n\r\n'), '304 answer has a body')
    assert.ok(parts[3]!.endsWith('\r\n\r\nhello world'))
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: chunked responses stream, trailers included', T, async () => {
  const local = await localService((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', Trailer: 'X-Checksum' })
    res.write('part one, ')
    res.write('part two')
    res.addTrailers({ 'X-Checksum': 'abc123' })
    res.end()
  })
  const bench = await startBench({ proxies: [{ name: 'tr', fields: { custom_domains: ['tr.test'] }, localPort: local.port }] })
  try {
    const text = await rawExchange(bench.port, 'GET / HTTP/1.1\r\nHost: tr.test\r\nTE: trailers\r\n\r\n', (t) => /0\r\n[\s\S]*\r\n\r\n$/.test(t))
    assert.match(text, /Transfer-Encoding: chunked/i)
    assert.match(text, /Trailer: X-Checksum/i)
    assert.match(text, /0\r\nX-Checksum: abc123\r\n\r\n$/)
    const body = text.split('\r\n\r\n').slice(1).join('\r\n\r\n')
    assert.match(body, /part one, /)
    assert.match(body, /part two/)
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: oversized request heads get 431 and never reach the local service', T, async () => {
  const local = await localService(describeHandler('big'))
  const bench = await startBench({ proxies: [{ name: 'big', fields: { custom_domains: ['big.test'] }, localPort: local.port }] })
  try {
    const text = await rawExchange(bench.port, `GET / HTTP/1.1\r\nHost: big.test\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`)
    assert.match(text, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/)
    assert.match(text, new RegExp(`${ERROR_HEADER}: header-too-large`, 'i'))
    // Just under the limit still passes.
    const ok = await request(bench.port, 'big.test', { headers: { 'X-Big': 'a'.repeat(12 * 1024) } })
    assert.equal(ok.status, 200)
    assert.equal(local.requests.length, 1)
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: a malformed request gets 400 and the local service never sees it', T, async () => {
  const local = await localService(describeHandler('bad'))
  const bench = await startBench({ proxies: [{ name: 'bad', fields: { custom_domains: ['*'] }, localPort: local.port }] })
  try {
    for (const raw of [
      'GET /a b c HTTP/1.1\r\nHost: bad.test\r\n\r\n',
      'NOT A REQUEST\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: bad.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'GET / HTTP/1.1\r\nBad Header Name: x\r\nHost: bad.test\r\n\r\n',
    ]) {
      const text = await rawExchange(bench.port, raw)
      assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/, JSON.stringify(raw))
      assert.match(text, new RegExp(`${ERROR_HEADER}: bad-request`, 'i'))
    }
    assert.equal(local.requests.length, 0)
    assert.equal(bench.starts.length, 0, 'a work stream was started for a malformed request')
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: a user that goes away mid-response releases the work stream', T, async () => {
  let aborted!: () => void
  const abortedP = new Promise<void>((r) => (aborted = r))
  const local = await localService((req, res) => {
    if (req.url === '/ok') {
      res.end('ok')
      return
    }
    res.writeHead(200, { 'Content-Type': 'text/plain' })
    const timer = setInterval(() => res.write('tick\n'), 5)
    res.on('close', () => {
      clearInterval(timer)
      aborted()
    })
  })
  const bench = await startBench({ proxies: [{ name: 'ab', fields: { custom_domains: ['ab.test'] }, localPort: local.port }] })
  try {
    await rawExchange(bench.port, 'GET / HTTP/1.1\r\nHost: ab.test\r\n\r\n', (t) => t.includes('tick'))
    // The local service learns that nobody listens any more.
    await abortedP
    // The next request gets a new work stream and works.
    const r = await request(bench.port, 'ab.test', { path: '/ok' })
    assert.equal(r.status, 200)
    assert.equal(r.body.toString(), 'ok')
    assert.equal(bench.starts.length, 2, 'the cut work stream was reused')
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})
