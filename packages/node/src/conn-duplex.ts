import { Duplex } from 'node:stream'
import { WsfrpError, type Conn, type ConnSink } from '@wsfrp/core'

/** Options of {@link connDuplex}. */
export interface ConnDuplexOptions {
  /**
   * Keep the writable side open after the peer's FIN (`'end'`), like `net.Socket`'s option of the same
   * name. Default true: a half-close travels through and writing goes on. Set it to false for a
   * consumer that expects a plain client socket (Node's HTTP client): the writable side then ends by
   * itself once the readable side has ended, so the stream closes and leaves connection pools.
   */
  allowHalfOpen?: boolean
  /** Readable and writable buffer sizes, in bytes. Default 65,536 (64 KiB), the size of a yamux frame burst. */
  highWaterMark?: number
}

/**
 * A Conn seen as a Node `stream.Duplex`, for Node APIs that want a socket (the HTTP client through
 * an `http.Agent`'s `createConnection`, `stream.pipeline`).
 *
 * - Backpressure both ways: when the readable buffer is full the conn is paused (a yamux stream then
 *   stops crediting its peer) and resumed by `_read()`; a `write()` that the conn answers with false
 *   completes only at the conn's `onDrain`, so the writer sees `write()` return false in turn.
 * - Half-close: `end()` → `conn.end()` (FIN after the queued bytes); the conn's `onEnd` → `push(null)`.
 * - Teardown: `destroy(err)` → `conn.destroy(err)`; a conn that fails destroys the Duplex with its error.
 *   A conn that closes cleanly while its data still sits in the readable buffer keeps that data: the
 *   Duplex ends normally once it has been read.
 * - Socket-shaped extras so that `http.Agent` can pool it: `setTimeout(ms)` (idle timer over reads and
 *   writes, emits `'timeout'`, never closes by itself, like `net.Socket`), and no-op `setNoDelay`,
 *   `setKeepAlive`, `ref`, `unref`.
 *
 * Starts the conn: it must not have been started before.
 */
export function connDuplex(conn: Conn, opts?: ConnDuplexOptions): ConnDuplex {
  return new ConnDuplex(conn, opts)
}

const DEFAULT_HWM = 64 * 1024

export class ConnDuplex extends Duplex {
  /** The wrapped conn. */
  readonly conn: Conn
  private connClosed = false
  private connEnded = false
  /** The conn was paused because the readable buffer is full. */
  private readPaused = false
  /** Completion of a write that the conn answered with false; called at onDrain. */
  private pendingWrite: ((err?: Error | null) => void) | undefined
  private finalCalled = false
  private idleMs = 0
  private idleTimer: ReturnType<typeof setTimeout> | undefined

  constructor(conn: Conn, opts?: ConnDuplexOptions) {
    const hwm = opts?.highWaterMark ?? DEFAULT_HWM
    super({ allowHalfOpen: opts?.allowHalfOpen ?? true, readableHighWaterMark: hwm, writableHighWaterMark: hwm })
    this.conn = conn
    const sink: ConnSink = {
      onData: (chunk) => this.onConnData(chunk),
      onDrain: () => this.onConnDrain(),
      onEnd: () => this.onConnEnd(),
      onClose: (err) => this.onConnClose(err),
    }
    conn.start(sink)
  }

  private onConnData(chunk: Uint8Array): void {
    if (this.destroyed) return
    this.touch()
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (!this.push(buf) && !this.readPaused && this.conn.canPause) {
      this.readPaused = true
      this.conn.pause()
    }
  }

  private onConnDrain(): void {
    const cb = this.pendingWrite
    if (cb === undefined) return
    this.pendingWrite = undefined
    cb()
  }

  private onConnEnd(): void {
    this.connEnded = true
    if (!this.destroyed) this.push(null)
  }

  private onConnClose(err?: Error): void {
    this.connClosed = true
    this.clearIdle()
    const cb = this.pendingWrite
    this.pendingWrite = undefined
    if (err !== undefined) {
      cb?.(err)
      if (!this.destroyed) this.destroy(err)
      return
    }
    if (cb !== undefined) cb(new WsfrpError('ERR_CONN_CLOSED', 'connection closed before the write was sent'))
    if (this.destroyed) return
    if (!this.connEnded) {
      // A clean close without an end of data (a local destroy() of the conn): the data was cut.
      this.destroy(new WsfrpError('ERR_CONN_CLOSED', 'connection closed before its data ended'))
    }
    // Otherwise both directions finished: the Duplex ends by itself once its buffer has been read
    // (destroying it here would drop what the reader has not taken yet).
  }

  override _read(): void {
    if (this.readPaused) {
      this.readPaused = false
      this.conn.resume()
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.connClosed) {
      cb(new WsfrpError('ERR_CONN_CLOSED', 'write on a closed connection'))
      return
    }
    this.touch()
    if (this.conn.write(chunk)) cb()
    else this.pendingWrite = cb
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    // Node's HTTP client corks the request head and the first body bytes: one conn write keeps them
    // in one yamux frame instead of one frame each.
    const bufs = chunks.map((c) => c.chunk)
    this._write(bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs), 'binary', cb)
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.finalCalled = true
    if (!this.connClosed) this.conn.end()
    cb()
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.clearIdle()
    const pending = this.pendingWrite
    this.pendingWrite = undefined
    pending?.(err ?? new WsfrpError('ERR_CONN_CLOSED', 'destroyed before the write was sent'))
    // After a clean end both ways (autoDestroy) the conn closes by itself once its FIN is out;
    // destroying it now could drop bytes still queued behind end().
    const cleanEnd = err === null && this.connEnded && this.finalCalled
    if (!this.connClosed && !cleanEnd) this.conn.destroy(err ?? undefined)
    cb(err)
  }

  /** The idle timeout set by {@link ConnDuplex.setTimeout}, in ms (0 = none); read by `http.Agent`. */
  get timeout(): number {
    return this.idleMs
  }

  /** Like `net.Socket#setTimeout`: emits `'timeout'` after `ms` without reads or writes; 0 disables. */
  setTimeout(ms: number, callback?: () => void): this {
    if (callback !== undefined) {
      if (ms === 0) this.off('timeout', callback)
      else this.once('timeout', callback)
    }
    this.idleMs = ms > 0 ? ms : 0
    this.clearIdle()
    if (this.idleMs > 0 && !this.destroyed) this.armIdle()
    return this
  }

  /** No-op (a conn has no Nagle switch of its own). */
  setNoDelay(_noDelay?: boolean): this {
    return this
  }

  /** No-op (liveness of the underlying transport is the transport's job: yamux pings). */
  setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
    return this
  }

  /** No-op: a conn holds no handle that keeps the event loop alive by itself. */
  ref(): this {
    return this
  }

  /** No-op, see {@link ConnDuplex.ref}. */
  unref(): this {
    return this
  }

  private armIdle(): void {
    // The timer object stays after it fired: activity refresh()es it, which arms it again (as in net).
    this.idleTimer = setTimeout(() => {
      if (!this.destroyed) this.emit('timeout')
    }, this.idleMs)
    this.idleTimer.unref()
  }

  private touch(): void {
    this.idleTimer?.refresh()
  }

  private clearIdle(): void {
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer)
      this.idleTimer = undefined
    }
  }
}
