/**
 * Service-worker mode, worker side: one tunnel per origin, shared by every open tab. The service
 * worker logs in once (with {@link connect}) and publishes the handlers that pages register; each
 * request is forwarded to the page that registered the handler over a MessageChannel, with the
 * request body and the response body as transferred ReadableStreams (page-proxied handlers: the
 * handler code lives in the page, where the app's state is). docs/BROWSER.md has the lifetime rules.
 *
 * ```js
 * // sw.js
 * importScripts('/wsfrp-sw.js')
 * wsfrp.serveServiceWorker({ serverURL: 'wss://tunnel.example.com', token: '…' })
 * ```
 */
import { connect, type ConnectOptions, type ProxyStatusEvent, type StatusEvent, type WebProxy, type WsfrpClient } from '../client.js'
import type { FetchHandler } from '../handler-target.js'
import type { StreamHandler } from '../stream-target.js'
import type { ProxyStatus } from '@wsfrp/core'
import {
  isWsfrpMessage,
  type HttpHandlerOptions,
  type PongMsg,
  type RegisterMsg,
  type RegisteredMsg,
  type ReplyMsg,
  type RequestMsg,
  type StreamHandlerOptions,
  type StreamMsg,
  type WorkerToPage,
} from './protocol.js'

// The client-web package compiles against the DOM library; these are the few service-worker
// globals used here (lib "WebWorker" cannot be combined with "DOM").
interface SwClient {
  readonly id: string
  postMessage(message: unknown, transfer?: Transferable[]): void
}
interface SwClients {
  get(id: string): Promise<SwClient | undefined>
  matchAll(options?: { includeUncontrolled?: boolean; type?: 'window' | 'worker' | 'sharedworker' | 'all' }): Promise<readonly SwClient[]>
  claim(): Promise<void>
}
interface SwExtendableEvent extends Event {
  waitUntil(promise: Promise<unknown>): void
}
interface SwMessageEvent extends SwExtendableEvent {
  readonly data: unknown
  readonly source: SwClient | MessagePort | ServiceWorker | null
  readonly ports: readonly MessagePort[]
}
/** The parts of `ServiceWorkerGlobalScope` this module needs. */
export interface ServiceWorkerScope extends EventTarget {
  readonly clients: SwClients
  skipWaiting(): Promise<void>
}

/** Options of {@link serveServiceWorker}: those of {@link connect}, without proxies (pages register them). */
export interface ServeServiceWorkerOptions extends Omit<ConnectOptions, 'proxies'> {
  /**
   * How long one keep-alive message from a page holds the worker up, in ms (an open
   * `waitUntil`, released by the next one). Longer than the pages' interval, so that a background
   * tab whose timers Chromium throttles to one per minute still keeps the tunnel. Default 65,000.
   */
  holdMs?: number
  /** `skipWaiting()` on install and `clients.claim()` on activate, so a new worker takes over at once. Default true. */
  takeOver?: boolean
  /** A page unseen for this long is asked again (`clients.get`) before a request is sent to it, in ms. Default 2,000. */
  aliveCheckMs?: number
  /** The global scope; default `self`. */
  scope?: ServiceWorkerScope
}

/** A published handler and the page that serves it. */
export interface PublishedHandler {
  readonly name: string
  readonly kind: 'http' | 'tcp'
  /** The page's `Client.id`. */
  readonly clientId: string
  readonly status: ProxyStatus | undefined
  readonly detail: string | undefined
}

/** What {@link serveServiceWorker} returns. */
export interface ServiceWorkerHost {
  /** The tunnel. Its proxies are the registered handlers. */
  readonly client: WsfrpClient
  /** Random per worker start: pages compare it to notice a restart and register again. */
  readonly instance: string
  registrations(): PublishedHandler[]
  /** Closes the tunnel and stops answering pages. */
  close(): Promise<void>
}

// `_` fields are shortened by the bundler (build.mjs mangleProps); none of them leaves this module.
interface Registration {
  name: string
  kind: 'http' | 'tcp'
  /** The page's `Client.id`. */
  _owner: string
  _port: MessagePort
  /** The options as JSON: a page that registers the same thing again only swaps its port. */
  _key: string
  status: ProxyStatus | undefined
  detail: string | undefined
}

function text(status: number, body: string): Response {
  return new Response(`${body}\n`, { status, headers: { 'Content-Type': 'text/plain; charset=utf-8' } })
}

function pick<T extends object>(src: unknown, keys: readonly (keyof T)[]): T {
  const out: Record<string, unknown> = {}
  if (typeof src === 'object' && src !== null) {
    for (const k of keys) {
      const v = (src as Record<string, unknown>)[k as string]
      if (v !== undefined) out[k as string] = v
    }
  }
  return out as T
}

const HTTP_KEYS: readonly (keyof HttpHandlerOptions)[] = ['subdomain', 'customDomains', 'locations', 'hostHeaderRewrite', 'httpUser', 'httpPassword', 'useEncryption', 'metadatas']
const TCP_KEYS: readonly (keyof StreamHandlerOptions)[] = ['remotePort', 'useEncryption', 'metadatas']

function randomId(): string {
  const b = crypto.getRandomValues(new Uint8Array(8))
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
}

/**
 * Runs the tunnel in this service worker and serves the handlers pages register with
 * `connectServiceWorker()` (the page-side API). Call it once, synchronously, while the worker
 * script is evaluated (event listeners added later are ignored by browsers).
 */
export function serveServiceWorker(opts: ServeServiceWorkerOptions): ServiceWorkerHost {
  const scope = opts.scope ?? (globalThis as unknown as ServiceWorkerScope)
  const holdMs = opts.holdMs ?? 65_000
  const aliveCheckMs = opts.aliveCheckMs ?? 2_000
  const instance = randomId()
  const regs = new Map<string, Registration>()
  /** When each page was last known to be open. */
  const seen = new Map<string, number>()
  let closed = false
  let releaseHold: (() => void) | undefined

  const { holdMs: _h, takeOver = true, aliveCheckMs: _a, scope: _s, ...connectOpts } = opts
  const client = connect({ ...connectOpts, proxies: [] })

  const post = (c: SwClient | undefined, msg: WorkerToPage): void => {
    try {
      c?.postMessage(msg)
    } catch {
      // the page went away meanwhile
    }
  }
  const broadcast = (msg: WorkerToPage): void => {
    void scope.clients.matchAll({ includeUncontrolled: true, type: 'window' }).then((all) => {
      for (const c of all) post(c, msg)
    })
  }
  const toOwner = (reg: Registration, msg: WorkerToPage): void => {
    void scope.clients.get(reg._owner).then((c) => post(c, msg))
  }

  /** Whether a page is still open; asks the browser only when the page was not heard from lately. */
  const alive = async (clientId: string): Promise<boolean> => {
    const t = seen.get(clientId)
    if (t !== undefined && Date.now() - t < aliveCheckMs) return true
    const c = await scope.clients.get(clientId)
    if (c === undefined) {
      seen.delete(clientId)
      return false
    }
    seen.set(clientId, Date.now())
    return true
  }

  const drop = (reg: Registration): void => {
    if (regs.get(reg.name) !== reg) return
    regs.delete(reg.name)
    client.removeProxy(reg.name)
    reg._port.close()
  }

  /** Forgets the handlers of pages that closed without saying so (crash, killed tab, no pagehide). */
  const prune = async (): Promise<void> => {
    for (const reg of [...regs.values()]) {
      if (!(await alive(reg._owner))) drop(reg)
    }
  }

  /** The registration that serves `name`, or why there is none (a page that went away is dropped). */
  const served = async (name: string): Promise<Registration | string> => {
    const reg = regs.get(name)
    if (reg === undefined) return 'this handler was unregistered'
    // A MessagePort to a closed page swallows messages silently: check before waiting on one.
    if (!(await alive(reg._owner))) {
      drop(reg)
      return 'the page of this handler is gone'
    }
    return reg
  }

  const httpHandler =
    (name: string): FetchHandler =>
    async (request, info) => {
      const reg = await served(name)
      if (typeof reg === 'string') return text(503, reg)
      return new Promise<Response>((resolve, reject) => {
        const ch = new MessageChannel()
        const signal = request.signal
        const onAbort = (): void => {
          try {
            ch.port1.postMessage({ wsfrp: 'abort' })
          } catch {
            // closed already
          }
          ch.port1.close()
          reject(signal.reason instanceof Error ? signal.reason : new Error('the request was aborted'))
        }
        if (signal.aborted) return onAbort()
        signal.addEventListener('abort', onAbort, { once: true })
        ch.port1.onmessage = (e: MessageEvent) => {
          signal.removeEventListener('abort', onAbort)
          ch.port1.onmessage = null
          ch.port1.close()
          const m = e.data as ReplyMsg
          if (!isWsfrpMessage(m) || (m.wsfrp !== 'response' && m.wsfrp !== 'error')) {
            reject(new TypeError('the page sent an unexpected reply'))
          } else if (m.wsfrp === 'error') {
            reject(new Error(`the page handler failed: ${m.message}`))
          } else {
            try {
              resolve(new Response(m.body, { status: m.status, statusText: m.statusText, headers: m.headers }))
            } catch (err) {
              reject(err)
            }
          }
        }
        const body = request.body
        const msg: RequestMsg = {
          wsfrp: 'request',
          method: request.method,
          url: request.url,
          headers: [...request.headers],
          body,
          proxyName: info.proxyName,
          remoteAddr: info.remoteAddr,
          remotePort: info.remotePort,
        }
        try {
          reg._port.postMessage(msg, body !== null ? [ch.port2, body] : [ch.port2])
        } catch (err) {
          signal.removeEventListener('abort', onAbort)
          ch.port1.close()
          reject(err)
        }
      })
    }

  const streamHandler =
    (name: string): StreamHandler =>
    async (conn) => {
      const reg = await served(name)
      if (typeof reg === 'string') throw new Error(reg)
      const msg: StreamMsg = {
        wsfrp: 'stream',
        readable: conn.readable,
        writable: conn.writable,
        proxyName: conn.proxyName,
        remoteAddr: conn.remoteAddr,
        remotePort: conn.remotePort,
      }
      reg._port.postMessage(msg, [conn.readable, conn.writable])
    }

  const register = async (m: RegisterMsg, source: SwClient, port: MessagePort | undefined): Promise<void> => {
    const reply = (extra: Partial<RegisteredMsg>): void => post(source, { wsfrp: 'registered', instance, id: m.id, name: m.name, ...extra })
    if (port === undefined) return reply({ error: 'a registration needs a MessagePort' })
    if (typeof m.name !== 'string' || m.name === '' || (m.kind !== 'http' && m.kind !== 'tcp')) {
      port.close()
      return reply({ error: 'a registration needs a name and kind "http" or "tcp"' })
    }
    const options = m.kind === 'http' ? pick<HttpHandlerOptions>(m.options, HTTP_KEYS) : pick<StreamHandlerOptions>(m.options, TCP_KEYS)
    const key = `${m.kind} ${JSON.stringify(options)}`
    const old = regs.get(m.name)
    if (old !== undefined) {
      if (old._owner === source.id && old._key === key) {
        // The same page again (it noticed a restart, or raced one): keep the proxy, take the new port.
        old._port.close()
        old._port = port
        return reply({ proxyStatus: old.status, detail: old.detail })
      }
      if (old._owner !== source.id && (await alive(old._owner))) {
        port.close()
        return reply({ error: `${m.name} is registered by another tab` })
      }
      drop(old)
    }
    const proxy: WebProxy =
      m.kind === 'http'
        ? { ...(options as HttpHandlerOptions), name: m.name, type: 'http', handler: httpHandler(m.name) }
        : { ...(options as StreamHandlerOptions), name: m.name, type: 'tcp', handler: streamHandler(m.name) }
    try {
      client.addProxy(proxy)
    } catch (err) {
      port.close()
      return reply({ error: err instanceof Error ? err.message : String(err) })
    }
    regs.set(m.name, { name: m.name, kind: m.kind, _owner: source.id, _port: port, _key: key, status: undefined, detail: undefined })
    reply({})
  }

  /** Keeps the worker running until the next keep-alive (or `holdMs`): one open waitUntil at a time. */
  const hold = (e: SwExtendableEvent): void => {
    releaseHold?.()
    e.waitUntil(
      new Promise<void>((resolve) => {
        const t = setTimeout(done, holdMs)
        function done(): void {
          clearTimeout(t)
          if (releaseHold === done) releaseHold = undefined
          resolve()
        }
        releaseHold = done
      }),
    )
  }

  const onMessage = (ev: Event): void => {
    const e = ev as SwMessageEvent
    if (closed || !isWsfrpMessage(e.data)) return
    const source = e.source
    if (source === null || !('id' in source) || typeof source.id !== 'string') return
    const c = source as SwClient
    seen.set(c.id, Date.now())
    const m = e.data as { wsfrp: string }
    switch (m.wsfrp) {
      case 'ping': {
        post(c, { wsfrp: 'pong', instance, status: client.status } satisfies PongMsg)
        hold(e)
        e.waitUntil(prune())
        return
      }
      case 'register':
        e.waitUntil(register(m as RegisterMsg, c, e.ports[0]))
        return
      case 'unregister': {
        const reg = regs.get((m as { name?: string }).name ?? '')
        if (reg !== undefined && reg._owner === c.id) drop(reg)
        return
      }
    }
  }

  const onInstall = (ev: Event): void => {
    if (takeOver) (ev as SwExtendableEvent).waitUntil(scope.skipWaiting())
  }
  const onActivate = (ev: Event): void => {
    if (takeOver) (ev as SwExtendableEvent).waitUntil(scope.clients.claim())
  }
  scope.addEventListener('message', onMessage)
  scope.addEventListener('install', onInstall)
  scope.addEventListener('activate', onActivate)

  client.addEventListener('status', (ev) => {
    const e = ev as StatusEvent
    broadcast({ wsfrp: 'status', instance, status: e.status, error: e.error?.message })
  })
  client.addEventListener('proxy', (ev) => {
    const e = ev as ProxyStatusEvent
    const reg = regs.get(e.name)
    if (reg === undefined) return
    reg.status = e.status
    reg.detail = e.detail
    toOwner(reg, { wsfrp: 'proxy', instance, name: e.name, status: e.status, detail: e.detail })
  })

  return {
    client,
    instance,
    registrations: () => [...regs.values()].map(({ name, kind, _owner: clientId, status, detail }) => ({ name, kind, clientId, status, detail })),
    close: async () => {
      if (closed) return
      closed = true
      scope.removeEventListener('message', onMessage)
      scope.removeEventListener('install', onInstall)
      scope.removeEventListener('activate', onActivate)
      releaseHold?.()
      for (const reg of regs.values()) reg._port.close()
      regs.clear()
      await client.close()
    },
  }
}

