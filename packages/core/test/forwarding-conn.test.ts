import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ForwardingConn, type Conn, type ConnSink } from '@wsfrp/core'
import { memoryPair, type MemoryPairOptions } from '@wsfrp/core/testing'
import { connSuite, Recorder, turns } from './support/conn-suite.js'

/** A wrapper that only counts onFinish, and lets a test wait for it without polling. */
class Counting extends ForwardingConn {
  finishes = 0
  /** What the sink had seen when onFinish ran: it must run before the sink's onClose. */
  sinkClosesAtFinish = -1
  private waiters: (() => void)[] = []

  protected override onFinish(): void {
    this.finishes++
    const s = this.sink
    if (s instanceof Recorder) this.sinkClosesAtFinish = s.closes
    for (const w of this.waiters.splice(0)) w()
  }

  whenFinished(): Promise<void> {
    if (this.finishes > 0) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push(resolve))
  }
}

/** Both ends of a memory pair wrapped; cleanup checks that each wrapper finished exactly once. */
function wrappedPair(opts?: MemoryPairOptions): { a: Counting; b: Counting; cleanup(): Promise<void> } {
  const inner = memoryPair(opts)
  const a = new Counting(inner.a)
  const b = new Counting(inner.b)
  return {
    a,
    b,
    async cleanup() {
      // The suite destroyed both; a close may still be on its way through the memory pair.
      await Promise.all([a.whenFinished(), b.whenFinished()])
      await turns(3)
      assert.equal(a.finishes, 1, 'onFinish of a ran exactly once')
      assert.equal(b.finishes, 1, 'onFinish of b ran exactly once')
    },
  }
}

// Every path the suite takes (clean close after both ends, destroy with and without an error,
// late start, pipe) must forward faithfully and finish each wrapper exactly once.
connSuite('ForwardingConn over memoryPair', async () => wrappedPair())
connSuite('ForwardingConn over memoryPair highWaterMark 1', async () => wrappedPair({ highWaterMark: 1 }))
connSuite('ForwardingConn over memoryPair canPause false', async () => wrappedPair({ canPause: false }), { canPause: false })

const T = { timeout: 10_000 }

test('ForwardingConn: onFinish runs once, before the sink\'s onClose, on a clean close', T, async () => {
  const { a, b } = wrappedPair()
  const ra = new Recorder()
  const rb = new Recorder()
  rb.onEndHook = () => b.end()
  a.start(ra)
  b.start(rb)
  a.end()
  await Promise.all([ra.waitClosed(), rb.waitClosed()])
  ra.assertCleanClose()
  rb.assertCleanClose()
  assert.equal(a.finishes, 1)
  assert.equal(b.finishes, 1)
  assert.equal(a.sinkClosesAtFinish, 0, 'onFinish before the sink heard onClose')
  assert.equal(b.sinkClosesAtFinish, 0)
  // Calls after the close change nothing.
  a.destroy()
  a.destroy(new Error('late'))
  b.end()
  await turns(5)
  assert.equal(a.finishes, 1)
  assert.equal(b.finishes, 1)
  ra.assertNoViolations()
})

test('ForwardingConn: destroy() of a started conn finishes it once, through onClose', T, async () => {
  const { a, b } = wrappedPair()
  const ra = new Recorder()
  const rb = new Recorder()
  a.start(ra)
  b.start(rb)
  const err = new Error('boom')
  a.destroy(err)
  a.destroy(err)
  await Promise.all([ra.waitClosed(), rb.waitClosed()])
  assert.equal(ra.closeErr, err)
  await turns(5)
  assert.equal(a.finishes, 1)
  assert.equal(ra.closes, 1)
  assert.equal(b.finishes, 1, 'the peer wrapper finishes too when its side closes')
})

test('ForwardingConn: destroy() of a conn never started finishes it at once (no onClose will come)', T, async () => {
  const { a, b } = wrappedPair()
  const rb = new Recorder()
  b.start(rb)
  a.destroy()
  assert.equal(a.finishes, 1, 'synchronously: nothing else would ever release what the wrapper holds')
  a.destroy(new Error('again'))
  assert.equal(a.finishes, 1)
  await rb.waitClosed()
  await b.whenFinished()
  assert.equal(b.finishes, 1)
})

/** A Conn that records the calls it gets, with a write() result the test chooses. */
class SpyConn implements Conn {
  calls: string[] = []
  sink: ConnSink | undefined
  writeResult = true
  constructor(readonly canPause: boolean) {}
  start(sink: ConnSink): void {
    this.calls.push('start')
    this.sink = sink
  }
  write(chunk: Uint8Array): boolean {
    this.calls.push(`write ${chunk.length}`)
    return this.writeResult
  }
  end(): void {
    this.calls.push('end')
  }
  destroy(err?: Error): void {
    this.calls.push(err === undefined ? 'destroy' : `destroy ${err.message}`)
  }
  pause(): void {
    this.calls.push('pause')
  }
  resume(): void {
    this.calls.push('resume')
  }
}

test('ForwardingConn: every call and callback is passed through unchanged, write() results included', T, () => {
  for (const canPause of [true, false]) {
    const inner = new SpyConn(canPause)
    const w = new Counting(inner)
    assert.equal(w.canPause, canPause)
    const r = new Recorder()
    w.start(r)
    assert.equal(inner.sink, w, 'the wrapper installs itself as the inner sink')
    assert.equal(w.write(new Uint8Array(3)), true)
    inner.writeResult = false
    assert.equal(w.write(new Uint8Array(4)), false, 'backpressure reaches the caller')
    w.pause()
    w.resume()
    w.end()
    assert.deepEqual(inner.calls, ['start', 'write 3', 'write 4', 'pause', 'resume', 'end'])
    const chunk = new Uint8Array([1, 2, 3])
    let seen: Uint8Array | undefined
    r.onDataHook = (c) => (seen = c)
    inner.sink!.onData(chunk)
    assert.equal(seen, chunk, 'the same chunk, not a copy')
    inner.sink!.onDrain()
    inner.sink!.onEnd()
    assert.equal(w.finishes, 0, 'an end alone does not finish the conn')
    const err = new Error('x')
    inner.sink!.onClose(err)
    assert.equal(r.bytes, 3)
    assert.equal(r.drains, 1)
    assert.equal(r.ended, true)
    assert.equal(r.closeErr, err)
    assert.equal(w.finishes, 1)
    // A destroy() after the close is passed on (the inner conn ignores it) but finishes nothing again.
    w.destroy()
    assert.equal(w.finishes, 1)
    assert.equal(inner.calls.at(-1), 'destroy')
    r.assertNoViolations()
  }
})

test('ForwardingConn: a subclass overrides one call and passes it on with super', T, async () => {
  class ByteCounter extends ForwardingConn {
    written = 0
    override write(chunk: Uint8Array): boolean {
      this.written += chunk.length
      return super.write(chunk)
    }
  }
  const { a, b } = memoryPair()
  const w = new ByteCounter(a)
  const rw = new Recorder()
  const rb = new Recorder().expect(new Uint8Array(10).fill(7))
  w.start(rw)
  b.start(rb)
  w.write(new Uint8Array(6).fill(7))
  w.write(new Uint8Array(4).fill(7))
  w.end()
  await rb.waitFor(() => rb.ended, 'onEnd')
  rb.assertReceivedAll('through the wrapper')
  assert.equal(w.written, 10)
  b.end()
  await Promise.all([rw.waitClosed(), rb.waitClosed()])
  rw.assertCleanClose()
})
