/**
 * Service-worker mode, page side: registers the service worker that owns the tunnel, keeps it
 * running while this page is open, and serves the handlers this page registers. The worker sends
 * each request here over a MessageChannel (bodies as transferred streams); the handler runs in
 * this page and its Response streams back the same way. See docs/BROWSER.md.
 *
 * ```js
 * import { connectServiceWorker } from '/wsfrp-page.js'
 * const tunnel = await connectServiceWorker({ scriptURL: '/sw.js' })
 * const url = await tunnel.registerHandler('web', { subdomain: 'me' }, async (req) => new Response('hi'))
 * ```
 *
 * This module carries no tunnel code (that lives in the worker): it is a few KB.
 */
import { ProxyStatusEvent, StatusEvent, type ConnectionStatus } from '../client.js'
import type { FetchHandler, HandlerInfo } from '../handler-target.js'
import type { StreamHandler } from '../stream-target.js'
import {
  isWsfrpMessage,
  type HttpHandlerOptions,
  type PageToWorker,
  type RegisterMsg,
  type ReplyMsg,
  type RequestMsg,
  type StreamHandlerOptions,
  type StreamMsg,
  type WorkerToPage,
} from './protocol.js'

export type { HttpHandlerOptions, StreamHandlerOptions }

/** Options of {@link connectServiceWorker}. */
export interface ConnectServiceWorkerOptions {
  /** Your worker script, which calls `serveServiceWorker()` (e.g. after `importScripts('/wsfrp-sw.js')`). */
  scriptURL: string | URL
  /** Registration scope; default the script's directory. */
  scope?: string
  /** `classic` (default, for importScripts) or `module`. */
  type?: WorkerType
  /**
   * Keep-alive interval, in ms. Chromium stops a service worker that had no event for 30 s; each
   * keep-alive is an event (and restarts a stopped worker, which then logs in again). Default 10,000.
   */
  keepAliveMs?: number
  /** Default `navigator.serviceWorker`. */
  container?: ServiceWorkerContainer
}

/** The page's handle on the shared tunnel. Fires `status` ({@link StatusEvent}) and `proxy` ({@link ProxyStatusEvent}). */
export interface ServiceWorkerTunnel extends EventTarget {
  /** The tunnel's status as the worker last reported it. */
  readonly status: ConnectionStatus
  /** The worker instance last heard from; it changes when the worker was stopped and started again. */
  readonly instance: string | undefined
  readonly registration: ServiceWorkerRegistration
  /**
   * Publishes an http handler that runs in this page. Resolves with the proxy's remote address once
   * the server accepted it; rejects when the worker or the server refused it (the name is then free
   * again). After a worker restart the page registers it again by itself.
   */
  registerHandler(name: string, options: HttpHandlerOptions, handler: FetchHandler): Promise<string>
  /** Publishes a tcp stream handler that runs in this page; resolves with the remote address (`:port`). */
  registerStreamHandler(name: string, options: StreamHandlerOptions, handler: StreamHandler): Promise<string>
  /** Withdraws a handler of this page; false when there was none of that name. */
  unregister(name: string): boolean
  /** Names of this page's handlers. */
  handlerNames(): string[]
  /** Sends a keep-alive now (it also wakes a stopped worker). */
  ping(): void
  /** Withdraws every handler of this page and stops the keep-alive. The worker stays registered. */
  close(): void
}

interface PageReg {
  name: string
  kind: 'http' | 'tcp'
  options: HttpHandlerOptions | StreamHandlerOptions
  http: FetchHandler | undefined
  stream: StreamHandler | undefined
  port: MessagePort | undefined
  /** The id of the latest register message; older answers are ignored. */
  id: number
  /** Set until the first outcome of registerHandler(). */
  pending: { resolve: (detail: string) => void; reject: (err: Error) => void } | undefined
}

/** Waits until `reg` has an active worker (a fresh registration is still installing). */
function activeWorker(reg: ServiceWorkerRegistration): Promise<ServiceWorker> {
  if (reg.active !== null) return Promise.resolve(reg.active)
  return new Promise((resolve, reject) => {
    const w = reg.installing ?? reg.waiting
    if (w === null) return reject(new Error('the service worker registration has no worker'))
    const on = (): void => {
      if (w.state === 'activated') {
        w.removeEventListener('statechange', on)
        resolve(w)
      } else if (w.state === 'redundant') {
        w.removeEventListener('statechange', on)
        // Replaced by a newer one (or it failed to install): take whatever is active now.
        if (reg.active !== null) resolve(reg.active)
        else reject(new Error('the service worker failed to install'))
      }
    }
    w.addEventListener('statechange', on)
  })
}

/**
 * Browsers drop "forbidden" request headers (Host, Cookie, Origin, …) from `new Request()`; a
 * handler needs them. A Headers made on its own keeps every name, so it shadows the filtered one on
 * this Request object (as the worker-side handler target does).
 */
function restoreHeaders(request: Request, fields: [string, string][]): void {
  if (fields.every(([name]) => request.headers.has(name))) return
  const all = new Headers()
  for (const [name, value] of fields) all.append(name, value)
  Object.defineProperty(request, 'headers', { value: all, enumerable: true, configurable: true })
}

class PageTunnel extends EventTarget implements ServiceWorkerTunnel {
  private _status: ConnectionStatus = 'connecting'
  private _instance: string | undefined
  private readonly regs = new Map<string, PageReg>()
  private nextId = 0
  private timer: ReturnType<typeof setInterval> | undefined
  private closed = false
  private readonly onMessage = (e: MessageEvent): void => this.fromWorker(e.data)
  private readonly onPageHide = (): void => {
    // Best effort: the worker also forgets pages that are gone, at the next keep-alive.
    for (const name of this.regs.keys()) this.post({ wsfrp: 'unregister', name })
  }
  private readonly onPageShow = (e: PageTransitionEvent): void => {
    // Back from the back/forward cache: the handlers were withdrawn on pagehide.
    if (e.persisted) for (const reg of this.regs.values()) this.sendRegister(reg)
  }

  constructor(
    readonly registration: ServiceWorkerRegistration,
    private readonly container: ServiceWorkerContainer,
    keepAliveMs: number,
  ) {
    super()
    container.addEventListener('message', this.onMessage)
    container.startMessages()
    addEventListener('pagehide', this.onPageHide)
    addEventListener('pageshow', this.onPageShow)
    this.timer = setInterval(() => this.ping(), keepAliveMs)
    this.ping()
  }

  get status(): ConnectionStatus {
    return this._status
  }

  get instance(): string | undefined {
    return this._instance
  }

  registerHandler(name: string, options: HttpHandlerOptions, handler: FetchHandler): Promise<string> {
    if (typeof handler !== 'function') return Promise.reject(new TypeError('registerHandler needs a handler function'))
    return this.add({ name, kind: 'http', options, http: handler, stream: undefined })
  }

  registerStreamHandler(name: string, options: StreamHandlerOptions, handler: StreamHandler): Promise<string> {
    if (typeof handler !== 'function') return Promise.reject(new TypeError('registerStreamHandler needs a handler function'))
    return this.add({ name, kind: 'tcp', options, http: undefined, stream: handler })
  }

  unregister(name: string): boolean {
    const reg = this.regs.get(name)
    if (reg === undefined) return false
    this.forget(reg, new Error(`handler ${name} was unregistered`))
    this.post({ wsfrp: 'unregister', name })
    return true
  }

  handlerNames(): string[] {
    return [...this.regs.keys()]
  }

  ping(): void {
    if (!this.closed) this.post({ wsfrp: 'ping' })
  }

  close(): void {
    if (this.closed) return
    for (const name of [...this.regs.keys()]) this.unregister(name)
    this.closed = true
    clearInterval(this.timer)
    this.container.removeEventListener('message', this.onMessage)
    removeEventListener('pagehide', this.onPageHide)
    removeEventListener('pageshow', this.onPageShow)
  }

  private add(r: Omit<PageReg, 'port' | 'id' | 'pending'>): Promise<string> {
    if (this.closed) return Promise.reject(new Error('this tunnel handle is closed'))
    if (this.regs.has(r.name)) return Promise.reject(new Error(`this page already has a handler named ${r.name}`))
    return new Promise<string>((resolve, reject) => {
      const reg: PageReg = { ...r, port: undefined, id: 0, pending: { resolve, reject } }
      this.regs.set(r.name, reg)
      this.sendRegister(reg)
    })
  }

  private forget(reg: PageReg, why: Error): void {
    if (this.regs.get(reg.name) === reg) this.regs.delete(reg.name)
    reg.port?.close()
    reg.port = undefined
    reg.pending?.reject(why)
    reg.pending = undefined
  }

  /** (Re)sends a registration with a fresh port: a restarted worker has lost the old one. */
  private sendRegister(reg: PageReg): void {
    const ch = new MessageChannel()
    reg.port?.close()
    reg.port = ch.port1
    ch.port1.onmessage = (e: MessageEvent) => this.fromPort(reg, e)
    reg.id = ++this.nextId
    const msg: RegisterMsg = { wsfrp: 'register', id: reg.id, name: reg.name, kind: reg.kind, options: reg.options }
    this.post(msg, [ch.port2])
  }

  private post(msg: PageToWorker, transfer: Transferable[] = []): void {
    const w = this.registration.active
    if (w !== null) {
      w.postMessage(msg, transfer)
      return
    }
    void activeWorker(this.registration).then((a) => a.postMessage(msg, transfer))
  }

  private fromWorker(data: unknown): void {
    if (this.closed || !isWsfrpMessage(data)) return
    const m = data as WorkerToPage
    if (typeof m.instance === 'string' && m.instance !== this._instance) {
      const restarted = this._instance !== undefined
      this._instance = m.instance
      // A new worker knows nothing of this page's handlers: publish them again.
      if (restarted) for (const reg of this.regs.values()) this.sendRegister(reg)
    }
    switch (m.wsfrp) {
      case 'pong':
        this.setStatus(m.status, undefined)
        return
      case 'status':
        this.setStatus(m.status, m.error)
        return
      case 'registered': {
        const reg = this.regs.get(m.name)
        if (reg === undefined || reg.id !== m.id) return
        if (m.error !== undefined) {
          if (reg.pending !== undefined) this.forget(reg, new Error(m.error))
          else this.dispatchEvent(new ProxyStatusEvent(m.name, 'error', m.error))
        } else if (m.proxyStatus !== undefined) {
          this.proxyStatus(reg, m.proxyStatus, m.detail ?? '')
        }
        return
      }
      case 'proxy': {
        const reg = this.regs.get(m.name)
        if (reg !== undefined) this.proxyStatus(reg, m.status, m.detail)
        return
      }
    }
  }

  private setStatus(status: ConnectionStatus, error: string | undefined): void {
    if (status === this._status && error === undefined) return
    this._status = status
    this.dispatchEvent(new StatusEvent(status, error === undefined ? undefined : new Error(error)))
  }

  private proxyStatus(reg: PageReg, status: ProxyStatusEvent['status'], detail: string): void {
    const p = reg.pending
    if (p !== undefined && status === 'running') {
      reg.pending = undefined
      p.resolve(detail)
    } else if (p !== undefined && status === 'error') {
      // A first registration the server refused: withdraw it so the name is free again.
      this.forget(reg, new Error(detail))
      this.post({ wsfrp: 'unregister', name: reg.name })
    }
    this.dispatchEvent(new ProxyStatusEvent(reg.name, status, detail))
  }

  private fromPort(reg: PageReg, e: MessageEvent): void {
    const m = e.data as RequestMsg | StreamMsg
    if (!isWsfrpMessage(m)) return
    if (m.wsfrp === 'request' && reg.http !== undefined && e.ports[0] !== undefined) void this.serve(reg.http, m, e.ports[0])
    else if (m.wsfrp === 'stream' && reg.stream !== undefined) this.serveStream(reg.stream, m)
  }

  private async serve(handler: FetchHandler, m: RequestMsg, reply: MessagePort): Promise<void> {
    const abort = new AbortController()
    reply.onmessage = (e: MessageEvent) => {
      if (isWsfrpMessage(e.data) && e.data.wsfrp === 'abort') abort.abort(new Error('the HTTP client went away'))
    }
    const send = (msg: ReplyMsg, transfer: Transferable[] = []): void => {
      try {
        reply.postMessage(msg, transfer)
      } finally {
        reply.close()
      }
    }
    try {
      const init: RequestInit & { duplex?: 'half' } = { method: m.method, headers: m.headers, signal: abort.signal }
      if (m.body !== null) {
        init.body = m.body
        init.duplex = 'half'
      }
      const request = new Request(m.url, init)
      restoreHeaders(request, m.headers)
      const info: HandlerInfo = { proxyName: m.proxyName, remoteAddr: m.remoteAddr, remotePort: m.remotePort, rawHeaders: m.headers }
      const res: unknown = await handler(request, info)
      if (!(res instanceof Response)) throw new TypeError(`the handler returned ${res === null ? 'null' : typeof res}, not a Response`)
      send({ wsfrp: 'response', status: res.status, statusText: res.statusText, headers: [...res.headers], body: res.body }, res.body !== null ? [res.body] : [])
    } catch (err) {
      if (abort.signal.aborted) {
        reply.close()
        return
      }
      console.warn('wsfrp: handler failed:', err)
      send({ wsfrp: 'error', message: err instanceof Error ? err.message : String(err) })
    }
  }

  private serveStream(handler: StreamHandler, m: StreamMsg): void {
    const fail = (err: unknown): void => {
      console.warn('wsfrp: stream handler failed:', err)
      void m.readable.cancel(err).catch(() => {})
      void m.writable.abort(err).catch(() => {})
    }
    try {
      const r = handler({ readable: m.readable, writable: m.writable, proxyName: m.proxyName, remoteAddr: m.remoteAddr, remotePort: m.remotePort })
      if (r !== undefined) r.catch(fail)
    } catch (err) {
      fail(err)
    }
  }
}

/**
 * Registers the service worker at `scriptURL` (your script, which calls `serveServiceWorker()`)
 * and returns this page's handle on the tunnel it runs. Every tab of the origin shares that one
 * tunnel; each tab serves the handlers it registered, and keeps the worker running while open.
 */
export async function connectServiceWorker(opts: ConnectServiceWorkerOptions): Promise<ServiceWorkerTunnel> {
  const container = opts.container ?? navigator.serviceWorker
  if (container === undefined) {
    throw new Error('service workers are unavailable here (they need a secure context: https, or http://localhost / 127.0.0.1)')
  }
  const registration = await container.register(opts.scriptURL, {
    scope: opts.scope,
    type: opts.type ?? 'classic',
    // The worker script and its importScripts are checked for updates on every registration.
    updateViaCache: 'none',
  })
  await activeWorker(registration)
  return new PageTunnel(registration, container, opts.keepAliveMs ?? 10_000)
}
