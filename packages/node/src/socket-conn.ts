import * as net from 'node:net'
import { WsfrpError, type Conn, type ConnSink } from '@wsfrp/core'
import { noteReadBytes } from './gc-pacer.js'

/** Options of {@link socketConn}. */
export interface SocketConnOptions {
  /** Disable Nagle (TCP_NODELAY), as Go does by default for every TCP conn. Default true. */
  noDelay?: boolean
}

/**
 * Wraps a connected `net.Socket` as a Conn with real half-close: `end()` sends a FIN after the queued
 * bytes, the peer's FIN arrives as `onEnd` while writing goes on. `allowHalfOpen` is switched on here
 * (Node reads it when the FIN arrives), so sockets from any server or `net.connect` work.
 *
 * `write()` returns `socket.write()`'s answer and `onDrain` follows the socket's `'drain'`. `pause()`
 * stops reading from the kernel, so TCP flow control reaches the peer. `destroy(err)` resets the
 * connection (RST) so the peer sees an abort, not a clean end; `destroy()` closes it normally.
 * Chunks are the socket's Buffers, passed on without copying.
 */
export function socketConn(socket: net.Socket, opts?: SocketConnOptions): Conn {
  return new SocketConn(socket, opts?.noDelay ?? true)
}

class SocketConn implements Conn {
  readonly canPause = true
  private sink: ConnSink | undefined
  private paused = false
  /** Chunks that arrived while paused (the socket stops reading, but a chunk in flight may still land). */
  private held: Buffer[] | undefined
  private peerEnded = false
  private endDelivered = false
  private needDrain = false
  private err: Error | undefined
  /** destroy() was called here: its error (possibly undefined) wins over what the socket reports. */
  private destroyedLocally = false
  private socketClosed = false
  private closeDelivered = false

  // Bound once per conn: the hot path creates no closures.
  private readonly onSocketData = (chunk: Buffer): void => this.handleData(chunk)
  private readonly afterResumeFn = (): void => this.afterResume()
  private readonly deliverCloseFn = (): void => this.deliverClose()
  private readonly onSocketDrain = (): void => this.handleDrain()
  private readonly onSocketEnd = (): void => {
    this.peerEnded = true
    this.deliverEnd()
  }
  private readonly onSocketError = (err: Error): void => {
    if (this.destroyedLocally) return
    this.err ??= new WsfrpError('ERR_CONN_CLOSED', `socket error: ${err.message}`, { cause: err })
  }
  private readonly onSocketClose = (): void => {
    this.socketClosed = true
    this.deliverClose()
  }

  constructor(
    private readonly socket: net.Socket,
    noDelay: boolean,
  ) {
    socket.allowHalfOpen = true
    // An 'error' without a listener would crash the process; the error is reported through onClose.
    socket.on('error', this.onSocketError)
    socket.on('close', this.onSocketClose)
    socket.on('end', this.onSocketEnd)
    socket.on('drain', this.onSocketDrain)
    if (noDelay && !socket.destroyed) socket.setNoDelay(true)
    if (socket.destroyed) {
      this.socketClosed = true
      this.err ??= new WsfrpError('ERR_CONN_CLOSED', 'socket was already closed when wrapped')
    }
  }

  start(sink: ConnSink): void {
    if (this.sink !== undefined) throw new Error('socketConn: start() called twice')
    this.sink = sink
    if (this.socketClosed) {
      // 'close' came before start(): report it now, but not from inside start().
      queueMicrotask(this.deliverCloseFn)
      return
    }
    if (this.paused) this.socket.pause()
    // Attaching 'data' switches the socket to flowing mode unless it was paused explicitly: bytes that
    // arrived before start() were kept in the socket's buffer and come first.
    this.socket.on('data', this.onSocketData)
  }

  write(chunk: Uint8Array): boolean {
    const s = this.socket
    if (this.destroyedLocally || s.destroyed) return false
    if (s.writableEnded) {
      // Node's write-after-end: an error that tears the conn down, reported through onClose.
      this.destroy(new WsfrpError('ERR_CONN_CLOSED', 'write after end'))
      return false
    }
    const ok = s.write(chunk)
    if (!ok) this.needDrain = true
    return ok
  }

  /**
   * Several chunks in one go (a yamux tick's frames): corked, so Node hands them to the kernel in
   * one writev instead of one syscall each, and nothing is copied to join them.
   */
  writev(chunks: Uint8Array[]): boolean {
    const s = this.socket
    if (this.destroyedLocally || s.destroyed || s.writableEnded) return this.write(chunks[0] ?? new Uint8Array(0))
    s.cork()
    let ok = true
    for (const c of chunks) ok = s.write(c)
    s.uncork()
    if (!ok) this.needDrain = true
    return ok
  }

  end(): void {
    if (this.destroyedLocally || this.socket.destroyed) return
    this.socket.end()
  }

  destroy(err?: Error): void {
    if (this.destroyedLocally) return
    this.destroyedLocally = true
    const s = this.socket
    // On a socket that already failed, keep its error unless a new one is given.
    this.err = err ?? (s.destroyed ? this.err : undefined)
    this.held = undefined
    if (s.destroyed) {
      // Already closed: a close held back by pause() is due now (never from inside destroy()).
      if (this.socketClosed) queueMicrotask(this.deliverCloseFn)
      return
    }
    if (err === undefined) {
      s.destroy()
      return
    }
    try {
      s.resetAndDestroy()
    } catch {
      // Not a TCP handle (e.g. a Unix socket): no RST to send.
      s.destroy()
    }
  }

  pause(): void {
    if (this.paused) return
    this.paused = true
    if (this.sink !== undefined) this.socket.pause()
  }

  resume(): void {
    if (!this.paused) return
    this.paused = false
    if (this.sink === undefined) return
    if (this.held !== undefined || this.peerEnded || this.socketClosed) queueMicrotask(this.afterResumeFn)
    else this.socket.resume()
  }

  private handleData(chunk: Buffer): void {
    noteReadBytes(chunk.length)
    if (this.destroyedLocally) return
    if (this.paused || this.held !== undefined) {
      ;(this.held ??= []).push(chunk)
      return
    }
    try {
      this.sink!.onData(chunk)
    } catch (err) {
      this.destroy(asError(err))
    }
  }

  /** After resume(): what was held back while paused (chunks, then onEnd, then onClose) goes out in order. */
  private afterResume(): void {
    while (this.held !== undefined && this.held.length > 0 && !this.paused && !this.destroyedLocally) {
      const chunk = this.held.shift()!
      try {
        this.sink!.onData(chunk)
      } catch (err) {
        this.destroy(asError(err))
        return
      }
    }
    if (this.paused || this.destroyedLocally) return
    this.held = undefined
    this.deliverEnd()
    if (this.paused) return
    if (this.socketClosed) this.deliverClose()
    else this.socket.resume()
  }

  private handleDrain(): void {
    if (!this.needDrain || this.destroyedLocally || this.sink === undefined) return
    this.needDrain = false
    try {
      this.sink.onDrain()
    } catch (err) {
      this.destroy(asError(err))
    }
  }

  private deliverEnd(): void {
    if (!this.peerEnded || this.endDelivered || this.destroyedLocally || this.held !== undefined) return
    if (this.paused || this.sink === undefined) return
    this.endDelivered = true
    try {
      this.sink.onEnd()
    } catch (err) {
      this.destroy(asError(err))
    }
  }

  private deliverClose(): void {
    if (this.closeDelivered || this.sink === undefined || !this.socketClosed) return
    if (!this.destroyedLocally && this.err === undefined && this.peerEnded && !this.endDelivered) {
      // A clean close while onEnd is held back by pause(): the held bytes and the end come first, and
      // afterResume() calls here again.
      if (this.paused || this.held !== undefined) return
      this.deliverEnd()
      if (this.paused) return
    }
    this.closeDelivered = true
    this.socket.off('data', this.onSocketData)
    this.sink.onClose(this.err)
  }

}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

/** Options of {@link connectTcp}. */
export interface ConnectTcpOptions {
  /** Give up after this many milliseconds with `WsfrpError('ERR_TIMEOUT')`. Default 10,000. */
  timeoutMs?: number
  /** Aborting gives `WsfrpError('ERR_CONN_ABORTED')`. */
  signal?: AbortSignal
  /** See {@link SocketConnOptions.noDelay}. Default true. */
  noDelay?: boolean
}

/**
 * Opens a TCP connection and wraps it with {@link socketConn}. Fails with `ERR_CONNECT` (refused,
 * unreachable, DNS; the Node error is the `cause`), `ERR_TIMEOUT` or `ERR_CONN_ABORTED`.
 */
export function connectTcp(host: string, port: number, opts?: ConnectTcpOptions): Promise<Conn> {
  const timeoutMs = opts?.timeoutMs ?? 10_000
  const signal = opts?.signal
  return new Promise<Conn>((resolve, reject) => {
    if (signal?.aborted) {
      reject(new WsfrpError('ERR_CONN_ABORTED', `connect to ${host}:${port} aborted`, { cause: signal.reason }))
      return
    }
    const socket = net.connect({ host, port, allowHalfOpen: true })
    const fail = (err: WsfrpError): void => {
      cleanup()
      socket.destroy()
      reject(err)
    }
    const onError = (err: Error): void =>
      fail(new WsfrpError('ERR_CONNECT', `connect to ${host}:${port} failed: ${err.message}`, { cause: err }))
    const onAbort = (): void =>
      fail(new WsfrpError('ERR_CONN_ABORTED', `connect to ${host}:${port} aborted`, { cause: signal?.reason }))
    const timer = setTimeout(
      () => fail(new WsfrpError('ERR_TIMEOUT', `connect to ${host}:${port} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    )
    const onConnect = (): void => {
      cleanup()
      resolve(socketConn(socket, { noDelay: opts?.noDelay ?? true }))
    }
    function cleanup(): void {
      clearTimeout(timer)
      socket.off('error', onError)
      socket.off('connect', onConnect)
      signal?.removeEventListener('abort', onAbort)
    }
    socket.once('connect', onConnect)
    socket.on('error', onError)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * Hands every connection of `server` to `onConn` as a Conn (wrapped before any byte is read, so
 * nothing is lost before `start()`). Returns a function that stops listening for new connections.
 */
export function acceptTcp(
  server: net.Server,
  onConn: (conn: Conn, socket: net.Socket) => void,
  opts?: SocketConnOptions,
): () => void {
  const onConnection = (socket: net.Socket): void => onConn(socketConn(socket, opts), socket)
  server.on('connection', onConnection)
  return () => {
    server.off('connection', onConnection)
  }
}

/** Options of {@link listenTcp}. */
export interface ListenTcpOptions extends SocketConnOptions {
  /** Default '127.0.0.1'. */
  host?: string
  /** Default 0: the OS picks a free port; read it from the result. */
  port?: number
}

/** A listening TCP server that hands out Conns. */
export interface TcpListener {
  readonly server: net.Server
  /** The bound address (the real port when 0 was asked for). */
  readonly host: string
  readonly port: number
  /** Stops accepting; resolves once every accepted connection has closed too (destroy your conns). */
  close(): Promise<void>
}

/**
 * Listens on `host:port` (half-open sockets allowed) and hands every connection to `onConn`.
 * Rejects with Node's error (e.g. `EADDRINUSE`) when the address cannot be bound.
 */
export function listenTcp(
  onConn: (conn: Conn, socket: net.Socket) => void,
  opts?: ListenTcpOptions,
): Promise<TcpListener> {
  const server = net.createServer({ allowHalfOpen: true })
  acceptTcp(server, onConn, opts)
  return new Promise<TcpListener>((resolve, reject) => {
    // A bind failure (EADDRINUSE, EACCES) is passed on as Node's own error: its errno code is the news.
    const onError = (err: Error): void => reject(err)
    server.once('error', onError)
    server.listen(opts?.port ?? 0, opts?.host ?? '127.0.0.1', () => {
      server.off('error', onError)
      const addr = server.address() as net.AddressInfo
      resolve({
        server,
        host: addr.address,
        port: addr.port,
        close: () => new Promise<void>((res) => server.close(() => res())),
      })
    })
  })
}
