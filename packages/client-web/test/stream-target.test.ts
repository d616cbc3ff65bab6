import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { pipe, type Conn } from '@wsfrp/core'
import { memoryPair } from '@wsfrp/core/testing'
import { streamTarget, type StreamHandler } from '@wsfrp/client-web'

const enc = new TextEncoder()
const dec = new TextDecoder()
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** The remote client's end of a stream target, with what it received. */
function setup(handler: StreamHandler, opts?: { highWaterMark?: number }) {
  const { a, b } = memoryPair({ highWaterMark: 64 * 1024 })
  const piped = pipe(b, streamTarget(handler, { proxyName: 'tcp1', remoteAddr: '198.51.100.2', remotePort: 4000, ...opts }))
  piped.catch(() => {})
  const received: Uint8Array[] = []
  let drain: (() => void) | undefined
  let endResolve!: () => void
  let closeResolve!: (e: Error | undefined) => void
  const ended = new Promise<void>((r) => (endResolve = r))
  const closed = new Promise<Error | undefined>((r) => (closeResolve = r))
  a.start({
    onData: (c) => received.push(c.slice()),
    onDrain: () => {
      const d = drain
      drain = undefined
      d?.()
    },
    onEnd: endResolve,
    onClose: (err) => {
      drain?.()
      closeResolve(err)
    },
  })
  const write = async (bytes: Uint8Array): Promise<void> => {
    if (!a.write(bytes)) await new Promise<void>((r) => (drain = r))
  }
  const all = (): Uint8Array => {
    const out = new Uint8Array(received.reduce((n, c) => n + c.length, 0))
    let o = 0
    for (const c of received) {
      out.set(c, o)
      o += c.length
    }
    return out
  }
  return { conn: a as Conn, write, ended, closed, piped, all }
}

async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r))
}

test('echo through readable.pipeTo(writable): 4 MiB in, the same 4 MiB out, then a clean close', { timeout: 20_000 }, async () => {
  let info: string | undefined
  const c = setup((conn) => {
    info = `${conn.proxyName} ${conn.remoteAddr}:${conn.remotePort}`
    void conn.readable.pipeTo(conn.writable)
  })
  const data = new Uint8Array(randomBytes(4 * 1024 * 1024))
  for (let o = 0; o < data.length; o += 64 * 1024) await c.write(data.subarray(o, o + 64 * 1024))
  c.conn.end()
  await c.ended
  assert.equal(await c.closed, undefined)
  await c.piped
  assert.equal(sha256(c.all()), sha256(data))
  assert.equal(info, 'tcp1 198.51.100.2:4000')
})

test('half-close: the handler reads to the end, then answers and closes', { timeout: 10_000 }, async () => {
  const c = setup(async (conn) => {
    let text = ''
    for await (const chunk of conn.readable) text += dec.decode(chunk)
    const w = conn.writable.getWriter()
    const buf = enc.encode(`got ${text}`)
    await w.write(buf)
    buf.fill(0) // the target copied the chunk: reusing the buffer is safe
    await w.close()
  })
  await c.write(enc.encode('hello '))
  await c.write(enc.encode('world'))
  c.conn.end()
  await c.ended
  assert.equal(dec.decode(c.all()), 'got hello world')
  await c.piped
})

test('backpressure: a handler that does not read stops the sender after a bounded amount', { timeout: 10_000 }, async () => {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined
  const c = setup((conn) => {
    reader = conn.readable.getReader()
  }, { highWaterMark: 32 * 1024 })
  let accepted = 0
  const writing = (async () => {
    for (let i = 0; i < 256; i++) {
      await c.write(new Uint8Array(16 * 1024))
      accepted += 16 * 1024
    }
    c.conn.end()
  })()
  await settle()
  assert.ok(accepted <= 160 * 1024, `accepted ${accepted} bytes while nothing was read`)
  let got = 0
  for (;;) {
    const { done, value } = await reader!.read()
    if (done) break
    got += value.length
  }
  await writing
  assert.equal(got, 256 * 16 * 1024)
})

test('a handler that throws resets the connection; abort() does too', { timeout: 10_000 }, async () => {
  const thrown = setup(() => {
    throw new Error('nope')
  })
  assert.ok((await thrown.closed) instanceof Error)
  await assert.rejects(thrown.piped, /nope/)

  const aborted = setup((conn) => {
    void conn.writable.abort(new Error('bye'))
  })
  assert.ok((await aborted.closed) instanceof Error)
  await assert.rejects(aborted.piped)
})

test('when the remote side dies, the handler sees both streams error', { timeout: 10_000 }, async () => {
  let result!: (v: [string, string]) => void
  const outcome = new Promise<[string, string]>((r) => (result = r))
  const c = setup(async (conn) => {
    const r = conn.readable.getReader()
    await r.read()
    const readErr = await r.read().then(
      () => 'no error',
      (e: Error) => e.message,
    )
    const writeErr = await conn.writable
      .getWriter()
      .write(enc.encode('x'))
      .then(
        () => 'no error',
        (e: Error) => e.message,
      )
    result([readErr, writeErr])
  })
  await c.write(enc.encode('first'))
  await settle()
  c.conn.destroy(new Error('gone'))
  const [readErr, writeErr] = await outcome
  assert.notEqual(readErr, 'no error')
  assert.notEqual(writeErr, 'no error')
})
