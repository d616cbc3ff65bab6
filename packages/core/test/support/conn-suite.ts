/**
 * Conformance suite for any Conn implementation (memory pair, TCP socket, WebSocket, yamux stream).
 *
 * `connSuite(name, makePair)` registers node:test tests. `makePair` returns two connected, not yet
 * started Conns: what `a` writes arrives at `b` and the other way round. Every test destroys both conns
 * and runs `cleanup` at the end, whatever happened.
 *
 * Absence checks ("no onData while paused") are made by the recording sink itself, which notes any
 * callback that breaks the contract; the few places that must let in-flight bytes show up wait for
 * event-loop turns, never for wall-clock time.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { pipe, type Conn, type ConnSink } from '@wsfrp/core'

export interface ConnPair {
  a: Conn
  b: Conn
  cleanup?: () => Promise<void> | void
}

export interface ConnSuiteOptions {
  /** The conns cannot pause (`canPause === false`): the pause tests are skipped. Default true. */
  canPause?: boolean
  /**
   * The transport has no half-close (a WebSocket: `end()` closes both directions). The tests then never
   * write after one side ended. Default false.
   */
  skipHalfClose?: boolean
  /** Per-test timeout in ms. Default 30,000. */
  timeoutMs?: number
}

const MiB = 1024 * 1024

export function connSuite(name: string, makePair: () => Promise<ConnPair>, opts?: ConnSuiteOptions): void {
  const canPause = opts?.canPause ?? true
  const halfClose = !(opts?.skipHalfClose ?? false)
  const timeout = opts?.timeoutMs ?? 30_000

  /** Runs `body` with a fresh pair; destroys both conns and cleans up afterwards, pass or fail. */
  async function withPair(body: (a: Conn, b: Conn) => Promise<void>): Promise<void> {
    const pair = await makePair()
    try {
      await body(pair.a, pair.b)
    } finally {
      pair.a.destroy()
      pair.b.destroy()
      await pair.cleanup?.()
    }
  }

  describe(`Conn conformance: ${name}`, () => {
    test('bytes arrive in order and intact in both directions at once (1 MiB each)', { timeout }, () =>
      withPair(async (a, b) => {
        const toB = randomBytes(MiB)
        const toA = randomBytes(MiB)
        const ra = new Recorder().expect(toA)
        const rb = new Recorder().expect(toB)
        a.start(ra)
        b.start(rb)
        assert.equal(typeof a.canPause, 'boolean')
        if (halfClose) {
          // end() right behind the last write: onEnd must still come after every byte.
          await Promise.all([
            writeAll(a, ra, toB, 1).then(() => a.end()),
            writeAll(b, rb, toA, 2).then(() => b.end()),
          ])
          await Promise.all([ra.waitFor(() => ra.ended, 'onEnd'), rb.waitFor(() => rb.ended, 'onEnd')])
        } else {
          await Promise.all([writeAll(a, ra, toB, 1), writeAll(b, rb, toA, 2)])
          await Promise.all([
            ra.waitFor(() => ra.bytes >= toA.length, 'all bytes'),
            rb.waitFor(() => rb.bytes >= toB.length, 'all bytes'),
          ])
          a.end()
          b.end()
        }
        rb.assertReceivedAll('a → b')
        ra.assertReceivedAll('b → a')
        await Promise.all([ra.waitClosed(), rb.waitClosed()])
        ra.assertCleanClose()
        rb.assertCleanClose()
      }),
    )

    test('write() returns false past the high-water mark and onDrain follows', { timeout }, () =>
      withPair(async (a, b) => {
        const ra = new Recorder()
        const rb = new Recorder()
        a.start(ra)
        b.start(rb)
        if (canPause) {
          b.pause()
          rb.paused = true
        }
        // One chunk written over and over: the bytes are never modified, so reuse is within the contract.
        const chunk = new Uint8Array(64 * 1024).fill(0x5a)
        const drainsBefore = ra.drains
        let written = 0
        let ok = true
        // A paused TCP reader still lets the kernel buffers fill (a few MiB on loopback); 512 MiB is a
        // bound that only a conn whose write() never says false reaches.
        while (ok && written < 512 * MiB) {
          ok = a.write(chunk)
          written += chunk.length
        }
        assert.equal(ok, false, `write() never returned false after ${written} bytes`)
        if (canPause) {
          rb.paused = false
          b.resume()
        }
        await ra.waitFor(() => ra.drains > drainsBefore, 'onDrain')
        await rb.waitFor(() => rb.bytes >= written, 'all bytes')
        assert.equal(rb.bytes, written)
        a.end()
        b.end()
        await Promise.all([ra.waitClosed(), rb.waitClosed()])
        ra.assertCleanClose()
        rb.assertCleanClose()
      }),
    )

    test('pause() stops onData; resume() delivers the rest, then onEnd', { timeout, skip: !canPause && 'canPause is false' }, () =>
      withPair(async (a, b) => {
        const data = randomBytes(2 * MiB)
        const ra = new Recorder()
        const rb = new Recorder().expect(data)
        let firstSeen!: () => void
        const first = new Promise<void>((resolve) => (firstSeen = resolve))
        rb.onDataHook = () => {
          if (rb.dataCount === 1) {
            b.pause()
            rb.paused = true
            firstSeen()
          }
        }
        a.start(ra)
        b.start(rb)
        // Ignore write()'s result on purpose: the bytes are accepted either way, and this puts as many as
        // possible in flight while the reader is paused.
        for (let off = 0; off < data.length; off += 16 * 1024) a.write(data.subarray(off, off + 16 * 1024))
        // The end must wait behind the held bytes too.
        a.end()
        await first
        const atPause = rb.bytes
        await turns(30)
        assert.equal(rb.bytes, atPause, 'onData while paused')
        rb.paused = false
        b.resume()
        await rb.waitFor(() => rb.ended, 'onEnd')
        rb.assertReceivedAll('a → b')
        b.end()
        await Promise.all([ra.waitClosed(), rb.waitClosed()])
        ra.assertCleanClose()
        rb.assertCleanClose()
      }),
    )

    test(
      halfClose
        ? 'end() gives the peer onEnd while the reverse direction still works (half-close)'
        : 'end() gives the peer onEnd, then both sides close cleanly',
      { timeout },
      () =>
        withPair(async (a, b) => {
          const hello = randomBytes(1000)
          const reply = randomBytes(300 * 1024)
          const ra = new Recorder().expect(halfClose ? reply : new Uint8Array(0))
          const rb = new Recorder().expect(hello)
          a.start(ra)
          b.start(rb)
          a.write(hello)
          a.end()
          await rb.waitFor(() => rb.ended, 'onEnd')
          rb.assertReceivedAll('a → b before end')
          if (halfClose) {
            assert.equal(ra.closes + rb.closes, 0, 'a half-closed conn must stay open')
            await writeAll(b, rb, reply, 3)
            b.end()
            await ra.waitFor(() => ra.ended, 'onEnd')
            ra.assertReceivedAll('b → a after a ended')
          }
          await Promise.all([ra.waitClosed(), rb.waitClosed()])
          ra.assertCleanClose()
          rb.assertCleanClose()
        }),
    )

    test('destroy(err): onClose(err) here, exactly one onClose on both sides, later calls harmless', { timeout }, () =>
      withPair(async (a, b) => {
        const ra = new Recorder()
        const rb = new Recorder()
        // A transport may report a destroyed peer as a plain end (TCP FIN): the normal reaction is to end too.
        rb.onEndHook = () => b.end()
        a.start(ra)
        b.start(rb)
        a.write(new Uint8Array(100))
        await rb.waitFor(() => rb.bytes >= 100, 'first bytes')
        const err = new Error('boom')
        a.destroy(err)
        await Promise.all([ra.waitClosed(), rb.waitClosed()])
        assert.equal(ra.closeErr, err, 'onClose gets the error given to destroy()')
        // Every method after close must be a harmless no-op.
        a.destroy(new Error('again'))
        a.end()
        a.write(new Uint8Array(10))
        a.pause()
        a.resume()
        b.destroy()
        b.write(new Uint8Array(10))
        await turns(10)
        assert.equal(ra.closes, 1)
        assert.equal(rb.closes, 1)
        ra.assertNoViolations()
        rb.assertNoViolations()
      }),
    )

    test('destroy() without an error: onClose() here, one onClose on the peer', { timeout }, () =>
      withPair(async (a, b) => {
        const ra = new Recorder()
        const rb = new Recorder()
        rb.onEndHook = () => b.end()
        a.start(ra)
        b.start(rb)
        b.write(new Uint8Array(10))
        await ra.waitFor(() => ra.bytes >= 10, 'first bytes')
        a.destroy()
        await Promise.all([ra.waitClosed(), rb.waitClosed()])
        assert.equal(ra.closeErr, undefined)
        await turns(10)
        assert.equal(ra.closes, 1)
        assert.equal(rb.closes, 1)
        ra.assertNoViolations()
        rb.assertNoViolations()
      }),
    )

    test('start() delivers the bytes (and the end) that arrived before it: nothing is lost', { timeout }, () =>
      withPair(async (a, b) => {
        const data = randomBytes(100 * 1024)
        const ra = new Recorder()
        const rb = new Recorder().expect(data)
        a.start(ra)
        a.write(data)
        a.end()
        // Let the bytes cross the transport before b has a sink.
        await turns(30)
        b.start(rb)
        await rb.waitFor(() => rb.ended, 'onEnd')
        rb.assertReceivedAll('a → b')
        if (halfClose) b.end()
        await Promise.all([ra.waitClosed(), rb.waitClosed()])
        ra.assertCleanClose()
        rb.assertCleanClose()
      }),
    )

    test('pipe() joins two pairs: bytes both ways with backpressure, and the half-close travels through', { timeout }, async () => {
      const p1 = await makePair()
      const p2 = await makePair()
      try {
        // x1 ⇄ y1 ═pipe═ x2 ⇄ y2: x1 and y2 talk through the pipe.
        const x1 = p1.a
        const y1 = p1.b
        const x2 = p2.a
        const y2 = p2.b
        const up = randomBytes(MiB)
        const down = randomBytes(256 * 1024)
        const rx = new Recorder().expect(down)
        const ry = new Recorder().expect(up)
        x1.start(rx)
        y2.start(ry)
        const piped = pipe(y1, x2)
        if (halfClose) {
          await writeAll(x1, rx, up, 4)
          x1.end()
          await ry.waitFor(() => ry.ended, 'onEnd through the pipe')
          ry.assertReceivedAll('x1 → y2')
          assert.equal(rx.closes + ry.closes, 0, 'the other direction must stay open')
          await writeAll(y2, ry, down, 5)
          y2.end()
          await rx.waitFor(() => rx.ended, 'onEnd through the pipe')
          rx.assertReceivedAll('y2 → x1')
        } else {
          await Promise.all([writeAll(x1, rx, up, 4), writeAll(y2, ry, down, 5)])
          await Promise.all([
            ry.waitFor(() => ry.bytes >= up.length, 'all bytes'),
            rx.waitFor(() => rx.bytes >= down.length, 'all bytes'),
          ])
          ry.assertReceivedAll('x1 → y2')
          rx.assertReceivedAll('y2 → x1')
          x1.end()
          y2.end()
        }
        await piped
        await Promise.all([rx.waitClosed(), ry.waitClosed()])
        rx.assertCleanClose()
        ry.assertCleanClose()
      } finally {
        for (const c of [p1.a, p1.b, p2.a, p2.b]) c.destroy()
        await p1.cleanup?.()
        await p2.cleanup?.()
      }
    })
  })
}

/**
 * A sink that records what happened and notes every contract violation: data after onEnd or while the
 * test has paused the conn, anything after onClose, onClose twice.
 */
export class Recorder implements ConnSink {
  private expected: Uint8Array | undefined
  private mismatchAt = -1
  bytes = 0
  dataCount = 0
  drains = 0
  ended = false
  closes = 0
  closeErr: Error | undefined
  /** Set by the test while it has the conn paused; onData then is a violation. */
  paused = false
  readonly violations: string[] = []
  onDataHook: ((chunk: Uint8Array) => void) | undefined
  onEndHook: (() => void) | undefined
  private waiters: Array<{ pred: () => boolean; what: string; resolve: () => void; reject: (e: Error) => void }> = []


  onData(chunk: Uint8Array): void {
    if (this.closes > 0) this.violations.push('onData after onClose')
    if (this.ended) this.violations.push('onData after onEnd')
    if (this.paused) this.violations.push('onData while paused')
    if (!(chunk instanceof Uint8Array)) this.violations.push('onData with a non-Uint8Array')
    this.dataCount++
    const exp = this.expected
    if (exp !== undefined && this.mismatchAt < 0) {
      // Compared as it arrives, so even a 1-byte-per-chunk transport needs no copy of what it delivered.
      const base = this.bytes
      if (base + chunk.length > exp.length) this.mismatchAt = exp.length
      else {
        for (let i = 0; i < chunk.length; i++) {
          if (chunk[i] !== exp[base + i]) {
            this.mismatchAt = base + i
            break
          }
        }
      }
    }
    this.bytes += chunk.length
    this.onDataHook?.(chunk)
    this.check()
  }

  onDrain(): void {
    if (this.closes > 0) this.violations.push('onDrain after onClose')
    this.drains++
    this.check()
  }

  onEnd(): void {
    if (this.closes > 0) this.violations.push('onEnd after onClose')
    if (this.ended) this.violations.push('onEnd twice')
    this.ended = true
    this.onEndHook?.()
    this.check()
  }

  onClose(err?: Error): void {
    this.closes++
    if (this.closes > 1) this.violations.push('onClose twice')
    else this.closeErr = err
    this.check()
  }

  /** The bytes this sink must receive, compared as they arrive. Set before any arrives. */
  expect(data: Uint8Array): this {
    this.expected = data
    return this
  }

  /** Everything expected arrived, in order and intact, and nothing more. */
  assertReceivedAll(what: string): void {
    const exp = this.expected
    assert.ok(exp !== undefined, 'expect() was not called')
    if (this.mismatchAt >= 0) assert.fail(`${what}: first difference at byte ${this.mismatchAt}`)
    assert.equal(this.bytes, exp.length, `${what}: byte count`)
  }

  /** Resolves when `pred` holds; rejects if the conn closes first (so a failure is not a timeout). */
  waitFor(pred: () => boolean, what: string): Promise<void> {
    if (pred()) return Promise.resolve()
    if (this.closes > 0) return Promise.reject(this.closedBefore(what))
    return new Promise((resolve, reject) => this.waiters.push({ pred, what, resolve, reject }))
  }

  waitClosed(): Promise<void> {
    if (this.closes > 0) return Promise.resolve()
    return new Promise((resolve, reject) =>
      this.waiters.push({ pred: () => this.closes > 0, what: 'onClose', resolve, reject }),
    )
  }

  assertNoViolations(): void {
    assert.deepEqual(this.violations, [])
  }

  assertCleanClose(): void {
    this.assertNoViolations()
    assert.equal(this.closes, 1)
    assert.equal(this.closeErr, undefined, `unexpected close error: ${String(this.closeErr)}`)
  }

  private closedBefore(what: string): Error {
    return new Error(`conn closed before ${what} (error: ${String(this.closeErr)}; ${this.bytes} bytes received)`)
  }

  private check(): void {
    if (this.waiters.length === 0) return
    const keep: typeof this.waiters = []
    for (const w of this.waiters) {
      if (w.pred()) w.resolve()
      else if (this.closes > 0) w.reject(this.closedBefore(w.what))
      else keep.push(w)
    }
    this.waiters = keep
  }
}

/** Writes `data` in pseudo-random chunk sizes (1 B … 64 KiB), waiting for onDrain whenever asked to. */
export async function writeAll(conn: Conn, rec: Recorder, data: Uint8Array, seed: number): Promise<void> {
  let x = seed * 2654435761 + 1
  let off = 0
  while (off < data.length) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    const n = Math.min(data.length - off, 1 + ((x >>> 0) % (64 * 1024)))
    const drains = rec.drains
    const ok = conn.write(data.subarray(off, off + n))
    off += n
    if (!ok) await rec.waitFor(() => rec.drains > drains, 'onDrain')
  }
}

/** Lets `n` turns of the event loop pass (I/O included): not a wall-clock delay. */
export async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}
