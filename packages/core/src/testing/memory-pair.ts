import type { Conn, ConnSink } from '../conn.js'
import { WsfrpError } from '../errors.js'

/**
 * How a memory pair cuts written chunks before delivery: a number N delivers pieces of at most N bytes;
 * a function returns the lengths of the pieces for one chunk (lengths ≤ 0 are skipped, a remainder is
 * delivered as one last piece, lengths past the end are clipped). Used to prove decoders re-assemble.
 */
export type MemorySplit = number | ((chunk: Uint8Array) => Iterable<number>)

/** Options of {@link memoryPair}. */
export interface MemoryPairOptions {
  /**
   * Bytes queued towards the reader (written, not yet delivered) at or above which `write()` returns
   * false. Default 64 KiB (65,536). `onDrain` follows once the reader has taken everything queued.
   */
  highWaterMark?: number
  /** Cut chunks into smaller deliveries. Default: deliver each chunk as written. */
  split?: MemorySplit
  /** Default true. When false, `pause()` is a no-op, like a browser WebSocket. */
  canPause?: boolean
}

/** The two connected ends of {@link memoryPair}. */
export interface MemoryPair {
  a: Conn
  b: Conn
}

const DEFAULT_HIGH_WATER_MARK = 64 * 1024

/**
 * Two in-memory Conns wired to each other: what `a` writes arrives at `b` and the other way round.
 *
 * Delivery is asynchronous (a microtask after the write), keeps order, respects the reader's `pause()`
 * (bytes queue up and the writer sees `write()` return false, then `onDrain` once the reader drained),
 * supports real half-close (`end()` → the peer's `onEnd` after the queued bytes; the other direction goes
 * on), and closes both ends cleanly (`onClose()`) once each side has seen the other's `onEnd`.
 * `destroy(err)` gives `onClose(err)` here and `onClose(WsfrpError('ERR_CONN_CLOSED'))` on the peer,
 * dropping what was queued. A sink that throws destroys its conn with the thrown error.
 *
 * Chunks are delivered without copying: the reader receives the writer's chunk (or views of it).
 */
export function memoryPair(opts?: MemoryPairOptions): MemoryPair {
  const hwm = opts?.highWaterMark ?? DEFAULT_HIGH_WATER_MARK
  if (!(hwm >= 0)) throw new RangeError(`memoryPair: highWaterMark must be >= 0, got ${hwm}`)
  const split = opts?.split
  if (typeof split === 'number' && !(split >= 1)) throw new RangeError(`memoryPair: split must be >= 1, got ${split}`)
  const canPause = opts?.canPause ?? true
  const a = new MemoryConn(hwm, split, canPause)
  const b = new MemoryConn(hwm, split, canPause)
  a.peer = b
  b.peer = a
  return { a, b }
}

class MemoryConn implements Conn {
  peer!: MemoryConn
  readonly canPause: boolean
  private sink: ConnSink | undefined
  private readonly flushFn: () => void
  private scheduled = false

  // Receive side: chunks the peer wrote, not yet delivered. `head` indexes the next chunk and `headOff`
  // the next byte in it (numeric split cuts lazily, so a 1-byte split of 1 MiB costs no 1M-entry queue).
  private queue: Uint8Array[] = []
  private head = 0
  private headOff = 0
  queued = 0
  private paused = false
  /** The peer called end(): deliver onEnd after the queue. */
  peerEnded = false
  endDelivered = false

  // Send side.
  private ended = false
  /** A write returned false and no onDrain was delivered since. */
  needDrain = false
  /** The peer drained our bytes; deliver onDrain in our next flush. */
  drainPending = false

  // Lifecycle: `closed` is set when the outcome is known; onClose is delivered by flush, once.
  closed = false
  private closeErr: Error | undefined
  private closeDelivered = false

  constructor(
    private readonly hwm: number,
    private readonly split: MemorySplit | undefined,
    canPause: boolean,
  ) {
    this.canPause = canPause
    this.flushFn = () => this.flush()
  }

  start(sink: ConnSink): void {
    if (this.sink !== undefined) throw new Error('memoryPair: start() called twice')
    this.sink = sink
    this.schedule()
  }

  write(chunk: Uint8Array): boolean {
    if (this.closed) return false
    if (this.ended) {
      // Node's write-after-end: an error that destroys the stream, reported through onClose.
      this.destroy(new WsfrpError('ERR_CONN_CLOSED', 'write after end'))
      return false
    }
    const peer = this.peer
    if (chunk.length > 0) {
      const split = this.split
      if (typeof split === 'function') peer.enqueuePieces(chunk, split)
      else peer.queue.push(chunk)
      peer.queued += chunk.length
      peer.schedule()
    }
    if (peer.queued < this.hwm) return true
    this.needDrain = true
    return false
  }

  end(): void {
    if (this.closed || this.ended) return
    this.ended = true
    this.peer.peerEnded = true
    this.peer.schedule()
  }

  destroy(err?: Error): void {
    if (this.closed) return
    this.setClosed(err)
    const peer = this.peer
    if (!peer.closed) {
      peer.setClosed(new WsfrpError('ERR_CONN_CLOSED', 'peer destroyed the connection', { cause: err }))
    }
  }

  pause(): void {
    if (this.canPause) this.paused = true
  }

  resume(): void {
    if (!this.paused) return
    this.paused = false
    this.schedule()
  }

  private enqueuePieces(chunk: Uint8Array, split: (chunk: Uint8Array) => Iterable<number>): void {
    let off = 0
    for (const n of split(chunk)) {
      if (!(n > 0)) continue
      if (off >= chunk.length) break
      const end = Math.min(chunk.length, off + n)
      this.queue.push(chunk.subarray(off, end))
      off = end
    }
    if (off < chunk.length) this.queue.push(off === 0 ? chunk : chunk.subarray(off))
  }

  private setClosed(err: Error | undefined): void {
    this.closed = true
    this.closeErr = err
    this.queue = []
    this.head = 0
    this.headOff = 0
    this.queued = 0
    this.schedule()
  }

  private schedule(): void {
    if (this.scheduled || this.sink === undefined || this.closeDelivered) return
    this.scheduled = true
    queueMicrotask(this.flushFn)
  }

  private flush(): void {
    this.scheduled = false
    const sink = this.sink
    if (sink === undefined || this.closeDelivered) return
    try {
      this.deliver(sink)
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)))
    }
    if (this.closed && !this.closeDelivered) {
      this.closeDelivered = true
      sink.onClose(this.closeErr)
    }
  }

  private deliver(sink: ConnSink): void {
    if (this.closed) return
    const q = this.queue
    const piece = typeof this.split === 'number' ? this.split : Infinity
    while (this.head < q.length && !this.paused) {
      const chunk = q[this.head]!
      let out: Uint8Array
      if (this.headOff === 0 && chunk.length <= piece) {
        out = chunk
        this.head++
      } else {
        const end = Math.min(chunk.length, this.headOff + piece)
        out = chunk.subarray(this.headOff, end)
        if (end === chunk.length) {
          this.head++
          this.headOff = 0
        } else this.headOff = end
      }
      this.queued -= out.length
      sink.onData(out)
      // The handler may have destroyed or paused us, or (through the peer) appended to the queue.
      if (this.closed) return
    }
    if (this.head === q.length && this.head > 0) {
      q.length = 0
      this.head = 0
    }
    const peer = this.peer
    if (this.queued === 0 && peer.needDrain && !peer.closed) {
      peer.needDrain = false
      peer.drainPending = true
      peer.schedule()
    }
    if (this.drainPending) {
      this.drainPending = false
      sink.onDrain()
      if (this.closed) return
    }
    if (this.peerEnded && !this.endDelivered && this.queued === 0 && !this.paused) {
      this.endDelivered = true
      sink.onEnd()
      if (this.closed) return
      if (peer.endDelivered && !peer.closed) {
        // Both directions are finished: both ends close cleanly, each after its own onEnd.
        this.setClosed(undefined)
        peer.setClosed(undefined)
      }
    }
  }
}
