/**
 * A WHATWG WebSocket (browser, service worker, or the `ws` package in Node) as a core `Conn`.
 */
import DefaultWebSocket from 'isomorphic-ws'
import { WsfrpError, type Conn, type ConnSink } from '@wsfrp/core'

/** The part of the WHATWG WebSocket API used here; browsers' `WebSocket` and `ws`'s both have it. */
export interface WebSocketLike {
  binaryType: string
  readonly readyState: number
  /** Bytes queued by `send()` and not yet handed to the network. */
  readonly bufferedAmount: number
  /** Only ArrayBuffer-backed views: WebSocket.send takes no SharedArrayBuffer (WHATWG `BufferSource`). */
  send(data: Uint8Array<ArrayBuffer>): void
  close(code?: number, reason?: string): void
  addEventListener(type: 'message', listener: (ev: MessageEvent) => void): void
  addEventListener(type: 'close', listener: (ev: CloseEvent) => void): void
  addEventListener(type: 'open' | 'error', listener: (ev: Event) => void): void
  removeEventListener(type: 'message', listener: (ev: MessageEvent) => void): void
  removeEventListener(type: 'close', listener: (ev: CloseEvent) => void): void
  removeEventListener(type: 'open' | 'error', listener: (ev: Event) => void): void
}

/** A WebSocket constructor: `globalThis.WebSocket` in browsers, `ws`'s class in Node. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike

/**
 * The constructor used when none is given: `isomorphic-ws` is the global `WebSocket` in browser
 * bundles (its package.json `browser` field) and the `ws` package in Node.
 */
export const defaultWebSocket = DefaultWebSocket as unknown as WebSocketConstructor

/** Options of {@link websocketConn}. */
export interface WebSocketConnOptions {
  /**
   * `bufferedAmount` above which `write()` returns false, in bytes. Default 1 MiB (1,048,576).
   * The WebSocket carries a whole yamux session, so the mark is above a single stream's.
   */
  highWaterMark?: number
  /** `bufferedAmount` at or below which `onDrain` follows, in bytes. Default 256 KiB (262,144). */
  lowWaterMark?: number
  /**
   * How often `bufferedAmount` is checked after `write()` returned false, in ms. Default 5.
   * WHATWG WebSockets have no drain event; a timer (not a busy loop) polls until the buffer is low.
   */
  drainPollMs?: number
}

const OPEN = 1
const CLOSED = 3
const DEFAULT_HWM = 1024 * 1024
const DEFAULT_LWM = 256 * 1024
const DEFAULT_POLL_MS = 5

/**
 * Wraps an OPEN WebSocket as a Conn.
 *
 * - Sets `binaryType = 'arraybuffer'` and sends binary messages; message boundaries carry no meaning.
 *   A text message is an error: frps ≤ 0.69 sends tunnel bytes as text frames, which browsers cannot
 *   decode (yamux-notes.md §0, finding 1); such a server needs frps ≥ 0.70 or wsfrps.
 * - `canPause` is false and `pause()` does nothing: a WHATWG WebSocket cannot stop reading, so the
 *   yamux windows are what bound received-but-unread bytes.
 * - `write()` returns false once `bufferedAmount` exceeds the high-water mark; `onDrain` follows
 *   when polling sees it at or below the low-water mark.
 * - There is no half-close: `end()` closes with code 1000 after the queued data. A close from the
 *   peer with 1000 or 1005 gives `onEnd` then `onClose()`; any other code, or an error event, gives
 *   `onClose(WsfrpError('ERR_CONN_CLOSED'))`.
 * - `destroy(err)` closes with 1000, or 4000 when `err` is set (1006 may never be sent: runtimes
 *   throw on it), and reports `onClose(err)` at once.
 */
export function websocketConn(ws: WebSocketLike, opts?: WebSocketConnOptions): Conn {
  return new WebSocketConn(ws, opts)
}

class WebSocketConn implements Conn {
  readonly canPause = false
  private _sink: ConnSink | undefined
  private readonly _hwm: number
  private readonly _lwm: number
  private readonly _pollMs: number
  /** Messages that arrived before start(). */
  private _held: Uint8Array[] | undefined = []
  private _ended = false
  private _needDrain = false
  private _pollTimer: ReturnType<typeof setTimeout> | undefined
  private _peerEnded = false
  private _endDelivered = false
  private _err: Error | undefined
  private _wsClosed = false
  private _destroyed = false
  private _closeDelivered = false

  private readonly _onMessage = (ev: MessageEvent): void => this._handleMessage(ev.data)
  private readonly _onError = (ev: Event): void => {
    const detail = (ev as Event & { message?: string }).message
    this._err ??= new WsfrpError('ERR_CONN_CLOSED', `WebSocket error${detail ? `: ${detail}` : ''}`)
  }
  private readonly _onClose = (ev: CloseEvent): void => {
    this._wsClosed = true
    if (ev.code === 1000 || ev.code === 1005) this._peerEnded = true
    else this._err ??= new WsfrpError('ERR_CONN_CLOSED', `WebSocket closed with code ${ev.code}${ev.reason ? `: ${ev.reason}` : ''}`)
    this._settle()
  }
  private readonly _poll = (): void => {
    this._pollTimer = undefined
    if (this._closeDelivered || !this._needDrain) return
    if (this._ws.bufferedAmount <= this._lwm) {
      this._needDrain = false
      this._sink?.onDrain()
    } else this._pollTimer = setTimeout(this._poll, this._pollMs)
  }

  private readonly _ws: WebSocketLike

  constructor(ws: WebSocketLike, opts: WebSocketConnOptions | undefined) {
    this._ws = ws
    this._hwm = opts?.highWaterMark ?? DEFAULT_HWM
    this._lwm = Math.min(opts?.lowWaterMark ?? DEFAULT_LWM, this._hwm)
    this._pollMs = opts?.drainPollMs ?? DEFAULT_POLL_MS
    if (!(this._hwm >= 0) || !(this._lwm >= 0) || !(this._pollMs >= 0)) throw new RangeError('websocketConn: marks and poll interval must be >= 0')
    ws.binaryType = 'arraybuffer'
    ws.addEventListener('message', this._onMessage)
    ws.addEventListener('error', this._onError)
    ws.addEventListener('close', this._onClose)
    if (ws.readyState !== OPEN) {
      if (ws.readyState === CLOSED) this._wsClosed = true
      this._err = new WsfrpError('ERR_CONN_CLOSED', 'websocketConn: the WebSocket is not open')
    }
  }

  start(sink: ConnSink): void {
    if (this._sink !== undefined) throw new Error('websocketConn: start() called twice')
    this._sink = sink
    // Out of the caller's stack: start() must not re-enter the sink.
    queueMicrotask(() => {
      const held = this._held
      this._held = undefined
      if (held !== undefined) for (const m of held) if (!this._closeDelivered) sink.onData(m)
      this._settle()
    })
  }

  write(chunk: Uint8Array): boolean {
    if (this._destroyed || this._wsClosed) return false
    if (this._ended) {
      this.destroy(new WsfrpError('ERR_CONN_CLOSED', 'write after end'))
      return false
    }
    // CLOSING: the close event is on its way.
    if (this._ws.readyState !== OPEN) return false
    // Conn chunks are ArrayBuffer-backed (yamux frames, encoder output); a SharedArrayBuffer view would
    // be refused by the runtime, which the type cannot express for Conn in general.
    if (chunk.length > 0) this._ws.send(chunk as Uint8Array<ArrayBuffer>)
    if (this._ws.bufferedAmount <= this._hwm) return true
    if (!this._needDrain) {
      this._needDrain = true
      this._pollTimer ??= setTimeout(this._poll, this._pollMs)
    }
    return false
  }

  end(): void {
    if (this._destroyed || this._ended) return
    this._ended = true
    // The close frame goes out after every message already queued.
    if (this._ws.readyState === OPEN) this._ws.close(1000)
  }

  destroy(err?: Error): void {
    if (this._destroyed) return
    this._destroyed = true
    this._err = err
    this._held = undefined
    if (!this._wsClosed) {
      try {
        this._ws.close(err === undefined ? 1000 : 4000, err === undefined ? undefined : 'destroyed')
      } catch {
        // Already closing: nothing more to do.
      }
    }
    this._settle()
  }

  pause(): void {}
  resume(): void {}

  private _handleMessage(data: unknown): void {
    if (this._destroyed) return
    let chunk: Uint8Array
    if (data instanceof ArrayBuffer) chunk = new Uint8Array(data)
    else if (ArrayBuffer.isView(data)) chunk = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    else {
      this.destroy(
        new WsfrpError('ERR_CONN_CLOSED', 'the server sent a text WebSocket message: wsfrp needs binary frames (frps >= 0.70 or wsfrps)'),
      )
      return
    }
    if (chunk.length === 0) return
    if (this._held !== undefined) this._held.push(chunk)
    else this._sink?.onData(chunk)
  }

  /** Delivers onEnd/onClose once the outcome is known and start() has run. */
  private _settle(): void {
    const sink = this._sink
    if (sink === undefined || this._held !== undefined || this._closeDelivered) return
    if (!this._destroyed && !this._wsClosed) return
    if (this._peerEnded && !this._endDelivered && !this._destroyed) {
      this._endDelivered = true
      sink.onEnd()
      if (this._closeDelivered) return
    }
    this._closeDelivered = true
    if (this._pollTimer !== undefined) clearTimeout(this._pollTimer)
    this._ws.removeEventListener('message', this._onMessage)
    this._ws.removeEventListener('error', this._onError)
    this._ws.removeEventListener('close', this._onClose)
    sink.onClose(this._destroyed ? this._err : this._peerEnded ? undefined : this._err)
  }
}

/** Options of {@link dialWebSocket}. */
export interface DialWebSocketOptions extends WebSocketConnOptions {
  /** Default: {@link defaultWebSocket}. */
  WebSocket?: WebSocketConstructor
  protocols?: string | string[]
  /** Give up (and close the attempt) after this long, in ms. Default 10,000; 0 = never. */
  timeoutMs?: number
  /** Aborting closes the attempt; the promise rejects with `ERR_CONN_ABORTED`. */
  signal?: AbortSignal
}

const ignore = (): void => {}

/** Opens a WebSocket and resolves with it as a Conn once open; rejects with `ERR_CONNECT` otherwise. */
export function dialWebSocket(url: string, opts?: DialWebSocketOptions): Promise<Conn> {
  const Ctor = opts?.WebSocket ?? defaultWebSocket
  return new Promise<Conn>((resolve, reject) => {
    const signal = opts?.signal
    if (signal?.aborted) {
      reject(new WsfrpError('ERR_CONN_ABORTED', 'dial aborted', { cause: signal.reason }))
      return
    }
    let ws: WebSocketLike
    try {
      ws = new Ctor(url, opts?.protocols)
    } catch (err) {
      reject(new WsfrpError('ERR_CONNECT', `cannot open a WebSocket to ${url}: ${(err as Error).message}`, { cause: err }))
      return
    }
    let done = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const finish = (err: Error | undefined): void => {
      if (done) return
      done = true
      if (timer !== undefined) clearTimeout(timer)
      ws.removeEventListener('open', onOpen)
      ws.removeEventListener('error', onFail)
      ws.removeEventListener('close', onFail)
      signal?.removeEventListener('abort', onAbort)
      if (err === undefined) {
        resolve(websocketConn(ws, opts))
        return
      }
      // Closing while CONNECTING makes `ws` emit an 'error' later; without a listener Node would
      // treat it as unhandled. Browsers just fire it.
      ws.addEventListener('error', ignore)
      try {
        ws.close()
      } catch {
        // closing an attempt that already failed
      }
      reject(err)
    }
    const onOpen = (): void => finish(undefined)
    const onFail = (ev: Event): void => {
      const code = (ev as Partial<CloseEvent>).code
      finish(new WsfrpError('ERR_CONNECT', `WebSocket to ${url} failed${code !== undefined ? ` (close code ${code})` : ''}`))
    }
    const onAbort = (): void => finish(new WsfrpError('ERR_CONN_ABORTED', 'dial aborted', { cause: signal?.reason }))
    ws.addEventListener('open', onOpen)
    ws.addEventListener('error', onFail)
    ws.addEventListener('close', onFail)
    signal?.addEventListener('abort', onAbort, { once: true })
    const ms = opts?.timeoutMs ?? 10_000
    if (ms > 0) timer = setTimeout(() => finish(new WsfrpError('ERR_CONNECT', `WebSocket to ${url}: no connection within ${ms} ms`)), ms)
  })
}
