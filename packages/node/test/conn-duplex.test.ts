import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { randomBytes, createHash } from 'node:crypto'
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { isWsfrpError } from '@wsfrp/core'
import { memoryPair } from '@wsfrp/core/testing'
import { connDuplex, connectTcp } from '@wsfrp/node'
import { Recorder } from '../../core/test/support/conn-suite.js'

const T = { timeout: 15_000 }
const enc = new TextEncoder()

/** Resolves once `s` has emitted 'close' (at once if it already has). */
function whenClosed(s: import('node:stream').Duplex): Promise<void> {
  return s.closed ? Promise.resolve() : once(s, 'close').then(() => undefined)
}

/** Reads a readable to its end. */
async function readAll(r: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of r) parts.push(c as Buffer)
  return Buffer.concat(parts)
}

test('connDuplex: bytes travel both ways, and end() / onEnd are the two half-closes', T, async () => {
  const { a, b } = memoryPair()
  const d = connDuplex(a)
  const rb = new Recorder().expect(enc.encode('hello from the duplex'))
  b.start(rb)
  d.write('hello from ')
  d.end('the duplex')
  await rb.waitFor(() => rb.ended, 'onEnd at the peer')
  rb.assertReceivedAll('duplex → peer')
  // Half-close: the peer may still answer after our FIN, and we still read it.
  b.write(enc.encode('late answer'))
  b.end()
  assert.equal((await readAll(d)).toString(), 'late answer')
  await whenClosed(d)
  await rb.waitClosed()
  rb.assertCleanClose()
  assert.equal(d.errored, null)
})

test('connDuplex: a slow reader pauses the conn (bounded buffer), and nothing is lost', T, async () => {
  const { a, b } = memoryPair({ highWaterMark: 16 * 1024 })
  const d = connDuplex(a, { highWaterMark: 32 * 1024 })
  const rb = new Recorder()
  b.start(rb)
  const data = randomBytes(2 * 1024 * 1024)
  let refused = 0
  // Write until the pair refuses: the duplex is not read, so the conn must have been paused.
  let off = 0
  while (off < data.length) {
    const ok = b.write(data.subarray(off, off + 8192))
    off += 8192
    if (!ok) {
      refused++
      break
    }
  }
  assert.ok(refused > 0, 'the writer was never told to wait')
  await new Promise((r) => setImmediate(r))
  assert.ok(d.readableLength <= 64 * 1024, `readable buffer grew to ${d.readableLength}`)
  // Now read everything while the peer writes the rest on drain.
  const writer = (async () => {
    while (off < data.length) {
      const ok = b.write(data.subarray(off, off + 8192))
      off += 8192
      if (!ok) await rb.waitFor(() => rb.drains > 0, 'drain').then(() => (rb.drains = 0))
    }
    b.end()
  })()
  const got = await readAll(d)
  await writer
  assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(data).digest('hex'))
  d.end()
  await whenClosed(d)
})

test('connDuplex: write() returns false while the conn is full and drains when the peer reads', T, async () => {
  const { a, b } = memoryPair({ highWaterMark: 1024 })
  const d = connDuplex(a, { highWaterMark: 1024 })
  const rb = new Recorder()
  b.start(rb)
  b.pause()
  rb.paused = true
  let ok = true
  let n = 0
  while (ok && n < 1000) {
    ok = d.write(Buffer.alloc(512, 1))
    n++
  }
  assert.equal(ok, false, 'write never returned false')
  let drained = false
  d.once('drain', () => (drained = true))
  await new Promise((r) => setImmediate(r))
  assert.equal(drained, false, 'drained while the peer was paused')
  rb.paused = false
  b.resume()
  await once(d, 'drain')
  await rb.waitFor(() => rb.bytes === n * 512, 'all bytes')
  d.destroy()
  await rb.waitClosed()
})

test('connDuplex: destroy(err) reaches the peer as an error; a failing conn errors the duplex', T, async () => {
  {
    const { a, b } = memoryPair()
    const d = connDuplex(a)
    d.on('error', () => {})
    const rb = new Recorder()
    b.start(rb)
    d.destroy(new Error('boom'))
    await rb.waitClosed()
    assert.ok(rb.closeErr !== undefined, 'peer saw a clean close')
  }
  {
    const { a, b } = memoryPair()
    const d = connDuplex(a)
    b.start(new Recorder())
    b.destroy(new Error('peer failed'))
    const [err] = (await once(d, 'error')) as [Error]
    assert.ok(isWsfrpError(err, 'ERR_CONN_CLOSED'), `got ${String(err)}`)
    assert.equal(d.destroyed, true)
  }
})

test('connDuplex: data still unread when the conn closes cleanly is not lost', T, async () => {
  const { a, b } = memoryPair()
  const d = connDuplex(a)
  const rb = new Recorder()
  b.start(rb)
  b.write(enc.encode('kept'))
  b.end()
  d.end()
  // Let the pair close completely before anyone reads.
  await rb.waitClosed()
  assert.equal((await readAll(d)).toString(), 'kept')
})

test('connDuplex: allowHalfOpen false ends the writable side after the peer ended', T, async () => {
  const { a, b } = memoryPair()
  const d = connDuplex(a, { allowHalfOpen: false })
  const rb = new Recorder()
  b.start(rb)
  d.resume()
  b.end()
  await rb.waitFor(() => rb.ended, 'onEnd at the peer')
  await whenClosed(d)
  await rb.waitClosed()
  rb.assertCleanClose()
})

test('connDuplex: setTimeout emits timeout after idleness, is refreshed by traffic and disarmed by 0', T, async () => {
  const { a, b } = memoryPair()
  const d = connDuplex(a)
  b.start(new Recorder())
  d.resume()
  // The idle timer is unref'd (as net.Socket's is): something must keep the loop alive meanwhile.
  const keepAlive = setInterval(() => {}, 1000)
  const t0 = Date.now()
  d.setTimeout(80)
  assert.equal(d.timeout, 80)
  // Traffic at 40 ms pushes the deadline out.
  setTimeout(() => b.write(enc.encode('x')), 40)
  await once(d, 'timeout')
  assert.ok(Date.now() - t0 >= 110, `timeout after ${Date.now() - t0} ms despite traffic`)
  d.setTimeout(0)
  assert.equal(d.timeout, 0)
  clearInterval(keepAlive)
  d.destroy()
})

test('connDuplex: works as the socket of Node\'s HTTP client through an Agent (keep-alive reuse)', T, async () => {
  const server = http.createServer((req, res) => {
    void readAll(req).then((body) => res.end(`${req.method} ${req.url} ${body.length}`))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  let created = 0
  class ConnAgent extends http.Agent {
    override createConnection(_o: http.ClientRequestArgs, cb?: (err: Error | null, s: import('node:stream').Duplex) => void): undefined {
      created++
      connectTcp('127.0.0.1', port).then((c) => cb!(null, connDuplex(c, { allowHalfOpen: false })), (e: Error) => cb!(e, undefined as never))
      return undefined
    }
  }
  const agent = new ConnAgent({ keepAlive: true })
  try {
    for (let i = 0; i < 3; i++) {
      const text = await new Promise<string>((resolve, reject) => {
        const req = http.request({ agent, method: 'POST', path: `/r${i}`, host: 'x' }, (res) => void readAll(res).then((b) => resolve(b.toString()), reject))
        req.on('error', reject)
        void pipeline(Readable.from([Buffer.alloc(100_000, i)]), req).catch(reject)
      })
      assert.equal(text, `POST /r${i} 100000`)
    }
    assert.equal(created, 1, 'the agent did not reuse the connection')
  } finally {
    agent.destroy()
    server.closeAllConnections()
    await new Promise<void>((r) => server.close(() => r()))
  }
})
