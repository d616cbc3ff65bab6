/**
 * Protocol edges of the public vhost port: CONNECT, interim (1xx) responses, versions other than
 * HTTP/1.x, and `Expect: 100-continue` refused by the local service.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as http from 'node:http'
import * as net from 'node:net'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { ERROR_HEADER, VHOST_ALLOWED_METHODS } from '../src/vhost/index.js'
import { closeServer, describeHandler, listen, localService, rawExchange, startBench } from './vhost-support.js'

const T = { timeout: 30_000 }

/** Sends `parts` as separate writes (each after the previous one was flushed) and collects the answer until the server closes. */
function splitExchange(port: number, parts: Buffer[]): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    let text = ''
    s.on('data', (c: Buffer) => (text += c.toString('latin1')))
    s.on('error', reject)
    s.on('close', () => resolve({ text, closed: true }))
    s.once('connect', () => {
      let i = 0
      const next = (): void => {
        if (i >= parts.length || s.destroyed) return
        s.write(parts[i++]!, () => next())
      }
      next()
    })
  })
}

/** Every way to cut `msg` into two writes, plus one write per byte. */
function splits(msg: Buffer): Buffer[][] {
  const out: Buffer[][] = []
  for (let i = 1; i < msg.length; i++) out.push([msg.subarray(0, i), msg.subarray(i)])
  out.push([...msg].map((b) => Buffer.from([b])))
  return out
}

test('vhost: CONNECT gets 405 with a stable code and is never forwarded, even after a kept-alive request', T, async () => {
  const local = await localService(describeHandler('c'))
  const bench = await startBench({ proxies: [{ name: 'c', fields: { custom_domains: ['c.test'] }, localPort: local.port }] })
  try {
    const text = await rawExchange(bench.port, 'CONNECT c.test:80 HTTP/1.1\r\nHost: c.test:80\r\n\r\n')
    assert.match(text, /^HTTP\/1\.1 405 Method Not Allowed\r\n/)
    assert.match(text, new RegExp(`\r\n${ERROR_HEADER}: method-not-allowed\r\n`))
    assert.match(text, new RegExp(`\r\nAllow: ${VHOST_ALLOWED_METHODS}\r\n`))
    assert.match(text, /\r\nConnection: close\r\n/)
    // After a request on the same connection, and with tunnel bytes right behind the head.
    const both = await rawExchange(bench.port, 'GET /first HTTP/1.1\r\nHost: c.test\r\n\r\nCONNECT c.test:22 HTTP/1.1\r\nHost: c.test:22\r\n\r\nSSH-2.0-x\r\n')
    assert.match(both, /^HTTP\/1\.1 200 OK\r\n/)
    assert.match(both, /HTTP\/1\.1 405 Method Not Allowed\r\n/)
    assert.equal(local.requests.length, 1)
    assert.equal(local.requests[0]!.url, '/first')
    assert.equal(bench.starts.length, 1, 'the CONNECT took a work stream')
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: 103 Early Hints and 102 Processing reach the user before the final response', T, async () => {
  const local = await localService((req, res) => {
    res.writeProcessing()
    res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style', 'x-hint': 'yes' })
    res.end(`final ${req.url}`)
  })
  const bench = await startBench({ proxies: [{ name: 'eh', fields: { custom_domains: ['eh.test'] }, localPort: local.port }] })
  try {
    const text = await rawExchange(bench.port, 'GET /page HTTP/1.1\r\nHost: eh.test\r\n\r\n', (t) => t.includes('final /page'))
    const i102 = text.indexOf('HTTP/1.1 102 Processing\r\n\r\n')
    const i103 = text.indexOf('HTTP/1.1 103 Early Hints\r\n')
    const i200 = text.indexOf('HTTP/1.1 200 OK\r\n')
    assert.ok(i102 === 0 && i103 > i102 && i200 > i103, `order: ${JSON.stringify(text)}`)
    const hints = text.slice(i103, text.indexOf('\r\n\r\n', i103))
    assert.match(hints, /\r\nLink: <\/style\.css>; rel=preload; as=style/i)
    assert.match(hints, /\r\nx-hint: yes/i)

    // Node's client sees them as 'information' events, then the response.
    const infos: number[] = []
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: bench.port, path: '/n', headers: { host: 'eh.test' }, agent: false }, resolve)
      req.on('information', (i) => infos.push(i.statusCode))
      req.on('error', reject)
    })
    res.resume()
    await once(res, 'end')
    assert.deepEqual(infos, [102, 103])
    assert.equal(res.statusCode, 200)

    // HTTP/1.0 users get no interim responses (RFC 9110 §15.2), only the final one.
    const old = await rawExchange(bench.port, 'GET /old HTTP/1.0\r\nHost: eh.test\r\n\r\n')
    assert.match(old, /^HTTP\/1\.1 200 OK\r\n/)
    assert.doesNotMatch(old, /HTTP\/1\.1 10[23]/)
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: interim responses lose hop-by-hop fields and keep their order with a raw local service', T, async () => {
  // A hand-written service: two 103s (one naming a field in Connection), then the answer.
  const raw = net.createServer((s) => {
    s.on('error', () => {}) // reset when the bench closes
    let head = ''
    s.on('data', (c: Buffer) => {
      head += c.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      head = ''
      s.write('HTTP/1.1 103 Early Hints\r\nLink: </a.js>; rel=preload\r\nConnection: x-secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n\r\n')
      s.write('HTTP/1.1 103 Early Hints\r\nLink: </b.js>; rel=preload\r\n\r\n')
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone')
    })
  })
  const port = await listen(raw)
  const bench = await startBench({ proxies: [{ name: 'r', fields: { custom_domains: ['r.test'] }, localPort: port }] })
  try {
    const text = await rawExchange(bench.port, 'GET / HTTP/1.1\r\nHost: r.test\r\n\r\n', (t) => t.endsWith('done'))
    const first = text.indexOf('</a.js>')
    const second = text.indexOf('</b.js>')
    assert.ok(first > 0 && second > first && text.indexOf('HTTP/1.1 200') > second, JSON.stringify(text))
    assert.doesNotMatch(text.slice(0, text.indexOf('HTTP/1.1 200')), /x-secret|keep-alive/i)
  } finally {
    await bench.close()
    raw.close()
  }
})

test('vhost: an HTTP/2 preface or a request line that is not HTTP/1.x gets 505 and a close, split at every byte', { timeout: 60_000 }, async () => {
  const local = await localService(describeHandler('v'))
  const bench = await startBench({ proxies: [{ name: 'v', fields: { custom_domains: ['v.test'] }, localPort: local.port }] })
  try {
    const h2Preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')
    // An h2c client sends its SETTINGS frame right behind the preface (RFC 9113 §3.4).
    const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])
    const messages = [
      Buffer.concat([h2Preface, settings]),
      Buffer.from('GET / HTTP/2.0\r\nHost: v.test\r\n\r\n'),
      Buffer.from('GET / HTTP/3.0\r\nHost: v.test\r\n\r\n'),
      Buffer.from('GET /\r\n\r\n'), // HTTP/0.9
      Buffer.from('GET / HTTP/2.0\r\nHost: v.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'),
    ]
    for (const msg of messages) {
      for (const parts of [[msg], ...splits(msg)]) {
        const { text, closed } = await splitExchange(bench.port, parts)
        const what = `${JSON.stringify(msg.toString('latin1'))} in ${parts.length} parts (first ${parts[0]!.length} bytes)`
        assert.match(text, /^HTTP\/1\.1 505 HTTP Version Not Supported\r\n/, what)
        assert.match(text, new RegExp(`\r\n${ERROR_HEADER}: version-not-supported\r\n`, 'i'), what)
        const len = Number(/\r\ncontent-length: (\d+)\r\n/i.exec(text)?.[1])
        assert.ok(len > 0 && len < 512, `a short body: ${len}`)
        assert.ok(closed, what)
      }
    }
    assert.equal(local.requests.length, 0, 'a request reached the local service')
    assert.equal(bench.starts.length, 0, 'a work stream was started')
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: Expect: 100-continue refused with 413 answers at once and closes; the user connection never hangs', T, async () => {
  const local = await localService(describeHandler('x'))
  local.server.removeAllListeners('checkContinue')
  local.server.on('checkContinue', (_req, res) => {
    res.writeHead(413, { 'Content-Length': '8' })
    res.end('too big\n')
  })
  const bench = await startBench({ proxies: [{ name: 'x', fields: { custom_domains: ['x.test'] }, localPort: local.port }] })
  try {
    const head = 'POST /up HTTP/1.1\r\nHost: x.test\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n'
    // The user waits for the 100 and never sends the body: the 413 arrives, then the server closes.
    const { text, closed } = await splitExchange(bench.port, [Buffer.from(head)])
    assert.match(text, /^HTTP\/1\.1 413 /)
    assert.doesNotMatch(text, /100 Continue/)
    assert.match(text, /\r\nConnection: close\r\n/i)
    assert.match(text, /too big\n$/)
    assert.ok(closed)
    // A user (like curl after its 1 s wait) that starts the body anyway also gets the 413 and a close.
    const eager = await splitExchange(bench.port, [Buffer.from(head), Buffer.alloc(64 * 1024, 0x61)])
    assert.match(eager.text, /^HTTP\/1\.1 413 /)
    assert.ok(eager.closed)
  } finally {
    await bench.close()
    await closeServer(local.server)
  }
})

test('vhost: a keep-alive local service that answers before the body releases the work stream', T, async () => {
  // Answers 413 on the head alone and keeps its connection open, never reading a body.
  const sockets = new Set<net.Socket>()
  const closedSockets: Promise<unknown>[] = []
  const raw = net.createServer((s) => {
    s.on('error', () => {}) // reset when the work stream is cut
    sockets.add(s)
    closedSockets.push(new Promise((resolve) => s.once('close', resolve)))
    let seen = ''
    s.on('data', (c: Buffer) => {
      seen += c.toString('latin1')
      if (seen.includes('\r\n\r\n')) {
        seen = ''
        s.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nnope')
      }
    })
  })
  const port = await listen(raw)
  const bench = await startBench({ proxies: [{ name: 'k', fields: { custom_domains: ['k.test'] }, localPort: port }] })
  try {
    const { text, closed } = await splitExchange(bench.port, [
      Buffer.from('POST /up HTTP/1.1\r\nHost: k.test\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n'),
    ])
    assert.match(text, /^HTTP\/1\.1 413 /)
    assert.ok(closed)
    // The work stream (and so the local connection behind it) is closed, not left waiting for a body.
    assert.equal(closedSockets.length, 1)
    await closedSockets[0]
    // The proxy still works afterwards, on a new work stream.
    const again = await rawExchange(bench.port, 'GET / HTTP/1.1\r\nHost: k.test\r\n\r\n', (t) => t.endsWith('nope'))
    assert.match(again, /^HTTP\/1\.1 413 /)
    assert.equal(bench.starts.length, 2)
  } finally {
    await bench.close()
    for (const s of sockets) s.destroy()
    raw.close()
  }
})

test('docs/ERRORS.md lists exactly the X-Wsfrp-Error codes of VhostErrorCode', { timeout: 5000 }, () => {
  const src = readFileSync(new URL('../src/vhost/error-page.ts', import.meta.url), 'utf8')
  const union = src.slice(src.indexOf('export type VhostErrorCode'), src.indexOf('export const ERROR_HEADER'))
  const codes = new Set([...union.matchAll(/\| '([a-z-]+)'/g)].map((m) => m[1]!))
  assert.ok(codes.size >= 9, 'the union was found')
  const doc = readFileSync(new URL('../../../docs/ERRORS.md', import.meta.url), 'utf8')
  const section = doc.slice(doc.indexOf('## HTTP vhost answers'))
  const documented = new Set([...section.matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1]!))
  assert.deepEqual([...codes].filter((c) => !documented.has(c)), [], 'codes missing from docs/ERRORS.md')
  assert.deepEqual([...documented].filter((c) => !codes.has(c)), [], 'documented codes that do not exist')
})

test('vhost: a WebSocket upgrade pipelined behind requests is answered after their responses, in order', T, async () => {
  // The local service holds /first until the test has seen the user's upgrade parsed: Node emits
  // 'upgrade' at once, while the response to /first is still to be written on that connection.
  let releaseFirst!: () => void
  const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve))
  const local = await localService((req, res) => {
    const body = `answer to ${req.url}`
    const send = (): void => {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) })
      res.end(body)
    }
    if (req.url === '/first') void firstHeld.then(send)
    else send()
  })
  local.server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => {})
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${String(req.headers.upgrade)}\r\nConnection: Upgrade\r\n\r\n`)
    // An echo of the upgraded bytes, prefixed so that they cannot be mistaken for ours.
    if (head.length > 0) socket.write(Buffer.concat([Buffer.from('echo:'), head]))
    socket.on('data', (c: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), c])))
    socket.on('end', () => socket.end())
  })
  const bench = await startBench({ proxies: [{ name: 'pipe', fields: { custom_domains: ['pipe.test'] }, localPort: local.port }] })
  const upgradeSeen = once(bench.server, 'upgrade')
  const s = net.connect(bench.port, '127.0.0.1')
  try {
    let text = ''
    const waiters: (() => void)[] = []
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1')
      for (const w of waiters.splice(0)) w()
    })
    s.on('error', () => {})
    const closed = once(s, 'close')
    const waitFor = async (what: string): Promise<void> => {
      while (!text.includes(what)) {
        if (s.destroyed) assert.fail(`connection closed before ${JSON.stringify(what)}: ${JSON.stringify(text)}`)
        await Promise.race([new Promise<void>((r) => waiters.push(r)), closed])
      }
    }
    await once(s, 'connect')
    s.write(
      'GET /first HTTP/1.1\r\nHost: pipe.test\r\n\r\n' +
        'GET /second HTTP/1.1\r\nHost: pipe.test\r\n\r\n' +
        'GET /ws HTTP/1.1\r\nHost: pipe.test\r\nConnection: Upgrade\r\nUpgrade: x-test\r\n\r\nhello',
    )
    await upgradeSeen
    releaseFirst()
    await waitFor('echo:hello')
    s.write('more')
    await waitFor('echo:more')
    const i1 = text.indexOf('answer to /first')
    const i2 = text.indexOf('answer to /second')
    const i101 = text.indexOf('HTTP/1.1 101 Switching Protocols\r\n')
    const iEcho = text.indexOf('echo:hello')
    assert.ok(i1 > 0 && i2 > i1 && i101 > i2 && iEcho > i101, `order: ${JSON.stringify(text)}`)
    assert.deepEqual(
      local.requests.map((r) => r.url),
      ['/first', '/second'],
    )
  } finally {
    s.destroy()
    await bench.close()
    await closeServer(local.server)
  }
})
