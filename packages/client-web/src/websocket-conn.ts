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
  // A closure rather than a class: it ships in the size-budgeted service-worker bundle, where every
  // `this._x` access costs six bytes more than a closure variable.
  const hwm = opts?.highWaterMark ?? DEFAULT_HWM
  const lwm = Math.min(opts?.lowWaterMark ?? DEFAULT_LWM, hwm)
  const pollMs = opts?.drainPollMs ?? DEFAULT_POLL_MS
  if (!(hwm >= 0) || !(lwm >= 0) || !(pollMs >= 0)) throw new RangeError('websocketConn: marks and poll interval must be >= 0')
  let sink: ConnSink | undefined
  /** Messages that arrived before start(). */
  let held: Uint8Array[] | undefined = []
  let ended = false
  let needDrain = false
  let pollTimer: ReturnType<typeof setTimeout> | undefined
  let peerEnded = false
  let endDelivered = false
  let error: Error | undefined
  let wsClosed = false
  let destroyed = false
  let closeDelivered = false

  const onMessage = (ev: MessageEvent): void => {
    if (destroyed) return
    const data: unknown = ev.data
    let chunk: Uint8Array
    if (data instanceof ArrayBuffer) chunk = new Uint8Array(data)
    else if (ArrayBuffer.isView(data)) chunk = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    else {
      destroy(new WsfrpError('ERR_CONN_CLOSED', 'the server sent a text WebSocket message: wsfrp needs binary frames (frps >= 0.70 or wsfrps)'))
      return
    }
    if (chunk.length === 0) return
    if (held !== undefined) held.push(chunk)
    else sink?.onData(chunk)
  }
  const onError = (ev: Event): void => {
    const detail = (ev as Event & { message?: string }).message
    error ??= new WsfrpError('ERR_CONN_CLOSED', `WebSocket error${detail ? `: ${detail}` : ''}`)
  }
  const onClose = (ev: CloseEvent): void => {
    wsClosed = true
    if (ev.code === 1000 || ev.code === 1005) peerEnded = true
    else error ??= new WsfrpError('ERR_CONN_CLOSED', `WebSocket closed with code ${ev.code}${ev.reason ? `: ${ev.reason}` : ''}`)
    settle()
  }
  const poll = (): void => {
    pollTimer = undefined
    if (closeDelivered || !needDrain) return
    if (ws.bufferedAmount <= lwm) {
      needDrain = false
      sink?.onDrain()
    } else pollTimer = setTimeout(poll, pollMs)
  }

  /** Delivers onEnd/onClose once the outcome is known and start() has run. */
  const settle = (): void => {
    const s = sink
    if (s === undefined || held !== undefined || closeDelivered) return
    if (!destroyed && !wsClosed) return
    if (peerEnded && !endDelivered && !destroyed) {
      endDelivered = true
      s.onEnd()
      if (closeDelivered) return
    }
    closeDelivered = true
    if (pollTimer !== undefined) clearTimeout(pollTimer)
    ws.removeEventListener('message', onMessage)
    ws.removeEventListener('error', onError)
    ws.removeEventListener('close', onClose)
    s.onClose(destroyed ? error : peerEnded ? undefined : error)
  }

  const destroy = (err?: Error): void => {
    if (destroyed) return
    destroyed = true
    error = err
    held = undefined
    if (!wsClosed) {
      try {
        ws.close(err === undefined ? 1000 : 4000, err === undefined ? undefined : 'destroyed')
      } catch {
        // Already closing: nothing more to do.
      }
    }
    settle()
  }

  ws.binaryType = 'arraybuffer'
  ws.addEventListener('message', onMessage)
  ws.addEventListener('error', onError)
  ws.addEventListener('close', onClose)
  if (ws.readyState !== OPEN) {
    if (ws.readyState === CLOSED) wsClosed = true
    error = new WsfrpError('ERR_CONN_CLOSED', 'websocketConn: the WebSocket is not open')
  }

  return {
    canPause: false,
    start(s) {
      if (sink !== undefined) throw new Error('websocketConn: start() called twice')
      sink = s
      // Out of the caller's stack: start() must not re-enter the sink.
      queueMicrotask(() => {
        const h = held
        held = undefined
        if (h !== undefined) for (const m of h) if (!closeDelivered) s.onData(m)
        settle()
      })
    },
    write(chunk) {
      if (destroyed || wsClosed) return false
      if (ended) {
        destroy(new WsfrpError('ERR_CONN_CLOSED', 'write after end'))
        return false
      }
      // CLOSING: the close event is on its way.
      if (ws.readyState !== OPEN) return false
      // Conn chunks are ArrayBuffer-backed (yamux frames, encoder output); a SharedArrayBuffer view would
      // be refused by the runtime, which the type cannot express for Conn in general.
      if (chunk.length > 0) ws.send(chunk as Uint8Array<ArrayBuffer>)
      if (ws.bufferedAmount <= hwm) return true
      if (!needDrain) {
        needDrain = true
        pollTimer ??= setTimeout(poll, pollMs)
      }
      return false
    },
    end() {
      if (destroyed || ended) return
      ended = true
      // The close frame goes out after every message already queued.
      if (ws.readyState === OPEN) ws.close(1000)
    },
    destroy,
    pause() {},
    resume() {},
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
