/**
 * The byte pipe every hop implements: a WebSocket, a TCP socket, a yamux stream, an in-memory pair.
 *
 * Shaped after Node's `write`/`end`/`destroy` and `'data'/'drain'/'end'/'close'` so that Node developers
 * read it without a glossary, but delivered through one handler object (undici's DispatchHandler
 * pattern) so the hot path allocates no event per chunk.
 */
export interface ConnSink {
  /** A chunk of bytes from the peer. The receiver owns the chunk; the producer never reuses it. */
  onData(chunk: Uint8Array): void
  /** After `write()` returned false: the write buffer has drained and writing may go on. */
  onDrain(): void
  /** The peer half-closed: no more `onData` follows. Writing is still allowed. */
  onEnd(): void
  /**
   * Called exactly once, last: both directions are finished (`err` undefined) or the conn failed or
   * was destroyed (`err` set, unless destroyed locally without an error).
   */
  onClose(err?: Error): void
}

export interface Conn {
  /** Installs the sink. Called once; no data is delivered before it, and none is lost. */
  start(sink: ConnSink): void
  /**
   * Queues bytes. Returns false when the caller should stop and wait for `sink.onDrain()`; the bytes
   * were still accepted. The caller must not modify `chunk` afterwards.
   */
  write(chunk: Uint8Array): boolean
  /** Half-close after all queued bytes are sent (TCP FIN, yamux FIN). Reading goes on. */
  end(): void
  /** Tears down both directions now; queued bytes may be lost. `onClose(err)` follows. */
  destroy(err?: Error): void
  /** Stops `onData` delivery (and, for a flow-controlled conn, stops crediting the peer). */
  pause(): void
  resume(): void
  /**
   * False when the source cannot be paused (a browser WebSocket): `pause()` is then a no-op and only
   * the yamux windows bound what is buffered.
   */
  readonly canPause: boolean
}
