import type * as http from 'node:http'
import type * as net from 'node:net'
import type { Duplex } from 'node:stream'
import WebSocket, { WebSocketServer } from 'ws'
import { WsfrpError, concatBytes, type Conn, type ConnSink } from '@wsfrp/core'
import { noteReadBytes } from './gc-pacer.js'

/** A Conn over a WebSocket, with the batched write yamux uses for one tick's frames. */
export interface WsConn extends Conn {
  /** Sends all `chunks` as ONE binary message (one copy). Same return value as `write()`. */
  writev(chunks: readonly Uint8Array[]): boolean
}

/** Options of {@link wsConn}. */
export interface WsConnOptions {
  /**
   * Bytes buffered for sending (`ws.bufferedAmount`) above which `write()` returns false.
   * Default 256 KiB (262,144): the WebSocket carries a whole yamux session, so stalls are costlier than
   * for one stream. Values below the socket's own high-water mark (16 KiB) act like that mark.
   */
  highWaterMark?: number
}

const DEFAULT_WS_HIGH_WATER_MARK = 256 * 1024
/** ws's default is 100 MiB; a yamux frame is at most a window (frp uses 6 MiB windows) plus a header. */
const DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024
/** One options object for every send: ws copies it, we never allocate one per write. */
const SEND_OPTS = Object.freeze({ binary: true, compress: false, fin: true })

/**
 * Wraps an OPEN WebSocket from `ws` (dialed or accepted) as a Conn.
 *
 * - Sends binary messages. Receives text AND binary messages as raw bytes: frp ≤ 0.69 sends tunnel bytes
 *   in TEXT frames that are not valid UTF-8, so create the socket with `skipUTF8Validation: true`
 *   ({@link dialWs} and {@link createWsServer} do) or ws fails the connection on them. Message
 *   boundaries carry no meaning.
 * - `pause()` is real (`ws.pause()` stops reading the TCP socket); messages ws had already parsed are
 *   held and delivered on `resume()`.
 * - `write()` returns false once `bufferedAmount` passes the high-water mark; `onDrain` follows the
 *   socket's `'drain'`.
 * - No half-close exists at the WebSocket level: `end()` sends a close frame (1000) after the queued
 *   data, and a peer's close frame arrives as `onEnd` then `onClose()` (the reverse direction is closed
 *   too). Close codes other than 1000/1005 and errors give `onClose(WsfrpError('ERR_CONN_CLOSED'))`.
 * - `destroy(err)` terminates the TCP connection at once.
 */
export function wsConn(ws: WebSocket, opts?: WsConnOptions): WsConn {
  return new WsConnImpl(ws, opts?.highWaterMark ?? DEFAULT_WS_HIGH_WATER_MARK)
}

/** ws keeps the TCP socket in a private field; its 'drain' is the only drain signal ws has. */
type WithSocket = { _socket?: net.Socket | null }

class WsConnImpl implements WsConn {
  readonly canPause = true
  private sink: ConnSink | undefined
  private readonly socket: net.Socket | undefined
  private paused = false
  /** Messages ws delivered while paused or before start(). */
  private held: Buffer[] | undefined
  private ended = false
  private needDrain = false
  private peerEnded = false
  private endDelivered = false
  private err: Error | undefined
  private destroyedLocally = false
  private wsClosed = false
  private closeDelivered = false

  private readonly onMessage = (data: WebSocket.RawData): void => this.handleMessage(data as Buffer)
  private readonly onSocketDrain = (): void => this.handleDrain()
  private readonly onSent = (): void => {
    // Fallback drain signal when ws's socket is not reachable: a send callback fires once that message
    // left the process.
    if (this.needDrain && this.ws.bufferedAmount <= this.hwm) this.handleDrain()
  }
  private readonly onError = (err: Error): void => {
    if (this.destroyedLocally) return
    this.err ??= new WsfrpError('ERR_CONN_CLOSED', `WebSocket error: ${err.message}`, { cause: err })
  }
  private readonly onClose = (code: number, reason: Buffer): void => {
    this.wsClosed = true
    if (code === 1000 || code === 1005) this.peerEnded = true
    else if (this.err === undefined && !this.destroyedLocally) {
      const why = reason.length > 0 ? `: ${reason.toString('utf8')}` : ''
      this.err = new WsfrpError('ERR_CONN_CLOSED', `WebSocket closed with code ${code}${why}`)
    }
    this.deliverClose()
  }
  private readonly afterResumeFn = (): void => this.afterResume()
  private readonly deliverCloseFn = (): void => this.deliverClose()

  constructor(
    private readonly ws: WebSocket,
    private readonly hwm: number,
  ) {
    if (ws.readyState === WebSocket.CONNECTING) {
      throw new TypeError("wsConn: the WebSocket is still connecting; wrap it after 'open' (dialWs does)")
    }
    // Buffers for both text and binary messages (fragments joined by ws).
    ws.binaryType = 'nodebuffer'
    ws.on('message', this.onMessage)
    // An 'error' without a listener would crash the process; it is reported through onClose.
    ws.on('error', this.onError)
    ws.on('close', this.onClose)
    this.socket = (ws as unknown as WithSocket)._socket ?? undefined
    this.socket?.on('drain', this.onSocketDrain)
    if (ws.readyState === WebSocket.OPEN) {
      // Nothing may be lost before start(): stop reading until a sink is there.
      ws.pause()
    } else {
      // CLOSING or CLOSED: a 'close' event may already be past.
      if (ws.readyState === WebSocket.CLOSED) this.wsClosed = true
      this.err ??= new WsfrpError('ERR_CONN_CLOSED', 'WebSocket was already closing when wrapped')
    }
  }

  start(sink: ConnSink): void {
    if (this.sink !== undefined) throw new Error('wsConn: start() called twice')
    this.sink = sink
    if (this.held !== undefined || this.peerEnded || this.wsClosed) queueMicrotask(this.afterResumeFn)
    else if (!this.paused) this.ws.resume()
  }

  write(chunk: Uint8Array): boolean {
    if (this.destroyedLocally) return false
    if (this.ended) {
      this.destroy(new WsfrpError('ERR_CONN_CLOSED', 'write after end'))
      return false
    }
    // CLOSING: the peer closed and ws already answered; onEnd/onClose are on their way.
    if (this.ws.readyState !== WebSocket.OPEN) return false
    // A sent message is garbage soon too: our batch copy and, on a client, ws's masked copy.
    noteReadBytes(chunk.length)
    this.ws.send(chunk, SEND_OPTS, this.socket === undefined ? this.onSent : undefined)
    return this.writable()
  }

  writev(chunks: readonly Uint8Array[]): boolean {
    if (chunks.length === 0) return !this.needDrain
    return this.write(concatBytes(chunks))
  }

  end(): void {
    if (this.destroyedLocally || this.ended) return
    this.ended = true
    // Queued behind every sent message by ws's sender, so no data is cut off.
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000)
  }

  destroy(err?: Error): void {
    if (this.destroyedLocally) return
    this.destroyedLocally = true
    this.err = err ?? (this.wsClosed ? this.err : undefined)
    this.held = undefined
    if (this.wsClosed) {
      // Already closed: a close held back by pause() is due now (never from inside destroy()).
      queueMicrotask(this.deliverCloseFn)
      return
    }
    this.ws.terminate()
  }

  pause(): void {
    if (this.paused) return
    this.paused = true
    if (this.sink !== undefined) this.ws.pause()
  }

  resume(): void {
    if (!this.paused) return
    this.paused = false
    if (this.sink === undefined) return
    if (this.held !== undefined || this.peerEnded || this.wsClosed) queueMicrotask(this.afterResumeFn)
    else this.ws.resume()
  }

  private writable(): boolean {
    if (this.ws.bufferedAmount <= this.hwm) return true
    // Only say false when a 'drain' is sure to follow: the socket's own write() said false.
    const s = this.socket
    if (s !== undefined && !s.writableNeedDrain) return true
    this.needDrain = true
    return false
  }

  private handleMessage(chunk: Buffer): void {
    noteReadBytes(chunk.length)
    if (this.destroyedLocally || chunk.length === 0) return
    if (this.sink === undefined || this.paused || this.held !== undefined) {
      ;(this.held ??= []).push(chunk)
      return
    }
    try {
      this.sink.onData(chunk)
    } catch (err) {
      this.destroy(asError(err))
    }
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

  /** After start()/resume(): held messages, then onEnd, then onClose, in that order. */
  private afterResume(): void {
    const sink = this.sink!
    while (this.held !== undefined && this.held.length > 0 && !this.paused && !this.destroyedLocally) {
      const chunk = this.held.shift()!
      try {
        sink.onData(chunk)
      } catch (err) {
        this.destroy(asError(err))
        return
      }
    }
    if (this.paused || this.destroyedLocally) return
    this.held = undefined
    if (this.wsClosed) this.deliverClose()
    else this.ws.resume()
  }

  private deliverClose(): void {
    if (this.closeDelivered || this.sink === undefined || !this.wsClosed) return
    if (!this.destroyedLocally && this.err === undefined && this.peerEnded && !this.endDelivered) {
      // A clean close: the held messages and onEnd come first; afterResume() calls here again.
      if (this.paused || this.held !== undefined) return
      this.endDelivered = true
      try {
        this.sink.onEnd()
      } catch (err) {
        this.err = asError(err)
      }
    }
    this.closeDelivered = true
    this.ws.off('message', this.onMessage)
    this.socket?.off('drain', this.onSocketDrain)
    this.sink.onClose(this.err)
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

/** Options of {@link dialWs}. */
export interface DialWsOptions extends WsConnOptions {
  /**
   * The `Origin` header, always sent: frps (x/net/websocket) answers 403 without one.
   * Default `http://<host[:port]>` of the URL.
   */
  origin?: string
  /** Extra request headers (e.g. `Authorization` for a reverse proxy in front of the server). */
  headers?: Record<string, string>
  /** E.g. an `https-proxy-agent` for a CONNECT proxy. */
  agent?: http.Agent
  /** Whole opening handshake (TCP, TLS, HTTP upgrade), in ms. Default 10,000. */
  handshakeTimeoutMs?: number
  /** wss: verify the server certificate. Default true. */
  rejectUnauthorized?: boolean
  /** wss: trusted CA certificates (PEM), replacing the default roots. */
  ca?: string | Buffer | Array<string | Buffer>
  /** wss: the TLS SNI / certificate name, when it differs from the URL host. */
  servername?: string
  /** Largest message accepted from the server, in bytes. Default 16 MiB. */
  maxPayload?: number
  /** Aborting the dial gives `WsfrpError('ERR_CONN_ABORTED')`. */
  signal?: AbortSignal
}

/**
 * Dials a `ws://` or `wss://` URL the way frpc does (no extensions, binary-tolerant, `Origin` sent) and
 * resolves with an unstarted {@link WsConn} once the connection is open. Fails with `ERR_CONNECT`
 * (refused, TLS, non-101 answer such as 403; the `ws` error is the `cause`), `ERR_TIMEOUT` or
 * `ERR_CONN_ABORTED`; a malformed URL gives `ERR_CONFIG`.
 */
export function dialWs(url: string, opts?: DialWsOptions): Promise<WsConn> {
  let origin: string
  try {
    const u = new URL(url)
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new TypeError(`unsupported scheme ${u.protocol}`)
    origin = opts?.origin ?? `http://${u.host}`
  } catch (err) {
    return Promise.reject(new WsfrpError('ERR_CONFIG', `invalid WebSocket URL ${JSON.stringify(url)}`, { cause: err }))
  }
  const signal = opts?.signal
  if (signal?.aborted) {
    return Promise.reject(new WsfrpError('ERR_CONN_ABORTED', `dial ${url} aborted`, { cause: signal.reason }))
  }
  const timeoutMs = opts?.handshakeTimeoutMs ?? 10_000
  // ws hands `servername` on to tls.connect although its types do not list it.
  const clientOpts: WebSocket.ClientOptions & { servername?: string } = {
    origin,
    perMessageDeflate: false,
    skipUTF8Validation: true,
    maxPayload: opts?.maxPayload ?? DEFAULT_MAX_PAYLOAD,
    followRedirects: false,
  }
  if (opts?.headers !== undefined) clientOpts.headers = opts.headers
  if (opts?.agent !== undefined) clientOpts.agent = opts.agent
  if (opts?.rejectUnauthorized !== undefined) clientOpts.rejectUnauthorized = opts.rejectUnauthorized
  if (opts?.ca !== undefined) clientOpts.ca = opts.ca
  if (opts?.servername !== undefined) clientOpts.servername = opts.servername

  return new Promise<WsConn>((resolve, reject) => {
    let ws: WebSocket
    try {
      ws = new WebSocket(url, clientOpts)
    } catch (err) {
      reject(new WsfrpError('ERR_CONFIG', `cannot dial ${url}: ${asError(err).message}`, { cause: err }))
      return
    }
    const fail = (err: WsfrpError): void => {
      cleanup()
      // terminate() of a connecting socket emits one more 'error': keep a listener so it cannot crash.
      ws.on('error', noop)
      ws.terminate()
      reject(err)
    }
    const onError = (err: Error): void =>
      fail(new WsfrpError('ERR_CONNECT', `WebSocket dial ${url} failed: ${err.message}`, { cause: err }))
    const onAbort = (): void =>
      fail(new WsfrpError('ERR_CONN_ABORTED', `dial ${url} aborted`, { cause: signal?.reason }))
    const timer = setTimeout(
      () => fail(new WsfrpError('ERR_TIMEOUT', `WebSocket dial ${url} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    )
    const onOpen = (): void => {
      cleanup()
      try {
        resolve(wsConn(ws, opts))
      } catch (err) {
        fail(new WsfrpError('ERR_CONNECT', `WebSocket dial ${url} failed`, { cause: err }))
      }
    }
    function cleanup(): void {
      clearTimeout(timer)
      ws.off('open', onOpen)
      ws.off('error', onError)
      signal?.removeEventListener('abort', onAbort)
    }
    ws.once('open', onOpen)
    ws.on('error', onError)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

function noop(): void {}

/** Options of {@link createWsServer}. */
export interface WsServerOptions {
  /** Largest message accepted from a client, in bytes. Default 16 MiB. */
  maxPayload?: number
}

/**
 * A `WebSocketServer` for upgrades you route yourself (`noServer`), set up for frp peers: no
 * permessage-deflate (the x/net client fails the handshake on any extension in the answer) and no UTF-8
 * validation (frpc ≤ 0.69 sends binary bytes in text frames).
 */
export function createWsServer(opts?: WsServerOptions): WebSocketServer {
  return new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    skipUTF8Validation: true,
    maxPayload: opts?.maxPayload ?? DEFAULT_MAX_PAYLOAD,
    clientTracking: false,
  })
}

/**
 * Completes the upgrade of an HTTP `'upgrade'` request on `wss` (normally from {@link createWsServer})
 * and resolves with an unstarted {@link WsConn}. Origin and path checks are the caller's, before this.
 * Rejects with `ERR_CONNECT` when ws refuses the handshake (it then answers 400 and closes the socket).
 */
export function acceptWs(
  wss: WebSocketServer,
  req: http.IncomingMessage,
  socket: Duplex,
  head: Buffer,
  opts?: WsConnOptions,
): Promise<WsConn> {
  return new Promise<WsConn>((resolve, reject) => {
    const onClose = (): void => reject(new WsfrpError('ERR_CONNECT', 'WebSocket upgrade refused (invalid handshake)'))
    socket.once('close', onClose)
    wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off('close', onClose)
      resolve(wsConn(ws, opts))
    })
  })
}
