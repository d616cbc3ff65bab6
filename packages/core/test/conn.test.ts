import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { isWsfrpError, pipe, type Conn } from '@wsfrp/core'
import { memoryPair } from '@wsfrp/core/testing'
import { connSuite, Recorder, turns, writeAll } from './support/conn-suite.js'

connSuite('memoryPair', async () => memoryPair())
connSuite('memoryPair split 1', async () => memoryPair({ split: 1 }))
connSuite('memoryPair random splits', async () => {
  let x = 7
  return memoryPair({
    // Cuts every chunk at pseudo-random points, 1..300 bytes apart.
    split: function* (chunk) {
      for (let off = 0; off < chunk.length; ) {
        x = (x * 1103515245 + 12345) >>> 0
        const n = 1 + (x % 300)
        yield n
        off += n
      }
    },
  })
})
connSuite('memoryPair canPause false', async () => memoryPair({ canPause: false }), { canPause: false })
connSuite('memoryPair highWaterMark 1', async () => memoryPair({ highWaterMark: 1 }))

const T = { timeout: 10_000 }

test('memoryPair: split by function delivers exactly the asked pieces, remainder last', T, async () => {
  const { a, b } = memoryPair({ split: () => [3, 0, 2] })
  const sizes: number[] = []
  const rb = new Recorder()
  rb.onDataHook = (c) => sizes.push(c.length)
  a.start(new Recorder())
  b.start(rb)
  a.write(new Uint8Array(10))
  a.write(new Uint8Array(4))
  await rb.waitFor(() => rb.bytes === 14, 'bytes')
  assert.deepEqual(sizes, [3, 2, 5, 3, 1])
  a.destroy()
})

test('memoryPair: write() is false from the high-water mark on, onDrain after the reader drained', T, async () => {
  const { a, b } = memoryPair({ highWaterMark: 10 })
  const ra = new Recorder()
  const rb = new Recorder()
  a.start(ra)
  b.start(rb)
  b.pause()
  assert.equal(a.write(new Uint8Array(9)), true)
  assert.equal(a.write(new Uint8Array(1)), false)
  await turns(3)
  assert.equal(rb.bytes, 0, 'paused reader got data')
  assert.equal(ra.drains, 0, 'onDrain before the reader drained')
  b.resume()
  await ra.waitFor(() => ra.drains === 1, 'onDrain')
  assert.equal(rb.bytes, 10)
  a.destroy()
})

test('memoryPair: delivery is asynchronous', T, async () => {
  const { a, b } = memoryPair()
  const rb = new Recorder()
  a.start(new Recorder())
  b.start(rb)
  a.write(new Uint8Array(5))
  assert.equal(rb.bytes, 0)
  await rb.waitFor(() => rb.bytes === 5, 'bytes')
  a.destroy()
})

test('memoryPair: destroy(err) → onClose(err) here and ERR_CONN_CLOSED on the peer, queued bytes dropped', T, async () => {
  const { a, b } = memoryPair()
  const ra = new Recorder()
  const rb = new Recorder()
  a.start(ra)
  b.pause()
  b.start(rb)
  a.write(new Uint8Array(100))
  const err = new Error('x')
  a.destroy(err)
  await Promise.all([ra.waitClosed(), rb.waitClosed()])
  assert.equal(ra.closeErr, err)
  assert.ok(isWsfrpError(rb.closeErr, 'ERR_CONN_CLOSED'))
  assert.equal(rb.bytes, 0)
})

test('memoryPair: destroy before start is reported at start', T, async () => {
  const { a, b } = memoryPair()
  a.destroy()
  const ra = new Recorder()
  const rb = new Recorder()
  a.start(ra)
  b.start(rb)
  await Promise.all([ra.waitClosed(), rb.waitClosed()])
  assert.equal(ra.closeErr, undefined)
  assert.ok(isWsfrpError(rb.closeErr, 'ERR_CONN_CLOSED'))
})

test('memoryPair: write after end() destroys with ERR_CONN_CLOSED', T, async () => {
  const { a, b } = memoryPair()
  const ra = new Recorder()
  a.start(ra)
  b.start(new Recorder())
  a.end()
  assert.equal(a.write(new Uint8Array(1)), false)
  await ra.waitClosed()
  assert.ok(isWsfrpError(ra.closeErr, 'ERR_CONN_CLOSED'))
})

test('memoryPair: a sink that throws destroys its conn with the thrown error', T, async () => {
  const { a, b } = memoryPair()
  const ra = new Recorder()
  const rb = new Recorder()
  const boom = new Error('sink bug')
  rb.onDataHook = () => {
    throw boom
  }
  a.start(ra)
  b.start(rb)
  a.write(new Uint8Array(1))
  await Promise.all([ra.waitClosed(), rb.waitClosed()])
  assert.equal(rb.closeErr, boom)
  assert.ok(isWsfrpError(ra.closeErr, 'ERR_CONN_CLOSED'))
})

test('memoryPair: canPause false makes pause() a no-op', T, async () => {
  const { a, b } = memoryPair({ canPause: false })
  assert.equal(b.canPause, false)
  const rb = new Recorder()
  a.start(new Recorder())
  b.start(rb)
  b.pause()
  a.write(new Uint8Array(3))
  await rb.waitFor(() => rb.bytes === 3, 'bytes while "paused"')
  a.destroy()
})

/** x1 ⇄ y1 ═pipe═ x2 ⇄ y2 over memory pairs. */
function piped(opts?: Parameters<typeof memoryPair>[0], signal?: AbortSignal) {
  const p1 = memoryPair(opts)
  const p2 = memoryPair(opts)
  const rx = new Recorder()
  const ry = new Recorder()
  p1.a.start(rx)
  p2.b.start(ry)
  const done = pipe(p1.b, p2.a, { signal })
  return { x1: p1.a, y1: p1.b, x2: p2.a, y2: p2.b, rx, ry, done }
}

test('pipe: a paused far reader pauses the source through the pipe (bounded buffering)', T, async () => {
  const hwm = 16 * 1024
  const { x1, y2, rx, ry, done } = piped({ highWaterMark: hwm })
  y2.pause()
  ry.paused = true
  const chunk = new Uint8Array(1024)
  let written = 0
  const drains = rx.drains
  // Each hop holds about one high-water mark: x1's writes must say false long before 1 MiB.
  while (x1.write(chunk)) {
    written += chunk.length
    await turns(1)
    assert.ok(written < 1024 * 1024, 'backpressure did not reach the writer')
  }
  written += chunk.length
  await turns(5)
  assert.ok(written <= 4 * hwm, `${written} bytes accepted`)
  ry.paused = false
  y2.resume()
  await ry.waitFor(() => ry.bytes === written, 'all bytes')
  await rx.waitFor(() => rx.drains > drains, 'onDrain at the writer')
  x1.end()
  y2.end()
  await done
  await Promise.all([rx.waitClosed(), ry.waitClosed()])
  rx.assertCleanClose()
  ry.assertCleanClose()
})

test('pipe: works when the source cannot pause', T, async () => {
  const { x1, y2, rx, ry, done } = piped({ canPause: false, highWaterMark: 1024 })
  const data = randomBytes(256 * 1024)
  ry.expect(data)
  await writeAll(x1, rx, data, 9)
  x1.end()
  await ry.waitFor(() => ry.ended, 'onEnd')
  ry.assertReceivedAll('x1 → y2')
  y2.end()
  await done
})

test('pipe: an error on one side destroys both and rejects with it', T, async () => {
  const { x1, y2, rx, ry, done } = piped()
  const rejected = assert.rejects(done, (err: unknown) => isWsfrpError(err, 'ERR_CONN_CLOSED'))
  x1.write(new Uint8Array(10))
  await ry.waitFor(() => ry.bytes === 10, 'bytes')
  x1.destroy(new Error('x1 failed'))
  await rejected
  await Promise.all([rx.waitClosed(), ry.waitClosed()])
  assert.ok(isWsfrpError(ry.closeErr, 'ERR_CONN_CLOSED'), 'the far side sees the teardown')
  rx.assertNoViolations()
  ry.assertNoViolations()
})

test('pipe: abort destroys both sides and rejects with ERR_CONN_ABORTED', T, async () => {
  const ac = new AbortController()
  const { rx, ry, done } = piped(undefined, ac.signal)
  const rejected = assert.rejects(done, (err: unknown) => isWsfrpError(err, 'ERR_CONN_ABORTED'))
  ac.abort(new Error('stop'))
  await rejected
  await Promise.all([rx.waitClosed(), ry.waitClosed()])
  assert.ok(isWsfrpError(rx.closeErr, 'ERR_CONN_CLOSED'))
  assert.ok(isWsfrpError(ry.closeErr, 'ERR_CONN_CLOSED'))
})

test('pipe: an already aborted signal rejects at once and still starts and destroys both conns', T, async () => {
  const p = memoryPair()
  const q = memoryPair()
  const rp = new Recorder()
  const rq = new Recorder()
  p.a.start(rp)
  q.b.start(rq)
  await assert.rejects(pipe(p.b, q.a, { signal: AbortSignal.abort() }), (err: unknown) =>
    isWsfrpError(err, 'ERR_CONN_ABORTED'),
  )
  await Promise.all([rp.waitClosed(), rq.waitClosed()])
})

test('pipe: data for a side that already closed fails the pipe instead of vanishing', T, async () => {
  // A conn that, like a WebSocket, closes fully once its peer ended.
  const p1 = memoryPair()
  const p2 = memoryPair()
  const wsLike: Conn = {
    canPause: true,
    start(sink) {
      p1.b.start({
        onData: (c) => sink.onData(c),
        onDrain: () => sink.onDrain(),
        onEnd: () => {
          sink.onEnd()
          p1.b.destroy()
        },
        onClose: (err) => sink.onClose(err),
      })
    },
    write: (c) => p1.b.write(c),
    end: () => p1.b.end(),
    destroy: (err) => p1.b.destroy(err),
    pause: () => p1.b.pause(),
    resume: () => p1.b.resume(),
  }
  const rx = new Recorder()
  const ry = new Recorder()
  p1.a.start(rx)
  p2.b.start(ry)
  const done = pipe(wsLike, p2.a)
  const rejected = assert.rejects(done, (err: unknown) => isWsfrpError(err, 'ERR_CONN_CLOSED'))
  p1.a.end()
  await ry.waitFor(() => ry.ended, 'onEnd')
  p2.b.write(new Uint8Array(5))
  await rejected
  await ry.waitClosed()
  assert.ok(isWsfrpError(ry.closeErr, 'ERR_CONN_CLOSED'))
})
