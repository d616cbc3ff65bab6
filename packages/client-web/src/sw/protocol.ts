/**
 * Messages between pages and the service worker that owns the tunnel (service-worker mode,
 * docs/BROWSER.md). Every message is a plain object tagged `wsfrp`, so that an app's own messages
 * on the same channels are left alone. Bodies and tcp connections travel as transferred streams.
 */
import type { ConnectionStatus } from '../client.js'
import type { ProxyStatus } from '@wsfrp/core'

/** What a page asks for when it registers an http handler. */
export interface HttpHandlerOptions {
  /** Label prepended to the server's subDomainHost. */
  subdomain?: string
  /** Host names routed to this handler. */
  customDomains?: string[]
  /** URL path prefixes routed to this handler; default every path. */
  locations?: string[]
  hostHeaderRewrite?: string
  httpUser?: string
  httpPassword?: string
  useEncryption?: boolean
  metadatas?: Record<string, string>
}

/** What a page asks for when it registers a tcp stream handler. */
export interface StreamHandlerOptions {
  /** Server port; 0 or absent = the server picks one. */
  remotePort?: number
  useEncryption?: boolean
  metadatas?: Record<string, string>
}

// --- page → worker (postMessage to the registration's active worker) ------------------------------

/** Keep-alive and hello: the worker answers with a {@link PongMsg}. */
export interface PingMsg {
  wsfrp: 'ping'
}

/** Publish a handler. `ports[0]` of the message is where the worker sends requests for it. */
export interface RegisterMsg {
  wsfrp: 'register'
  /** Echoed in the {@link RegisteredMsg}. */
  id: number
  name: string
  kind: 'http' | 'tcp'
  options: HttpHandlerOptions | StreamHandlerOptions
}

export interface UnregisterMsg {
  wsfrp: 'unregister'
  name: string
}

export type PageToWorker = PingMsg | RegisterMsg | UnregisterMsg

// --- worker → page (Client.postMessage; arrives on navigator.serviceWorker) ----------------------

/** Every worker message carries the worker's instance id: a new id means the worker was restarted. */
interface FromWorker {
  instance: string
}

export interface PongMsg extends FromWorker {
  wsfrp: 'pong'
  status: ConnectionStatus
}

export interface StatusMsg extends FromWorker {
  wsfrp: 'status'
  status: ConnectionStatus
  error?: string
}

export interface RegisteredMsg extends FromWorker {
  wsfrp: 'registered'
  id: number
  name: string
  /** Why the worker refused the registration (a name taken by another tab, bad options). */
  error?: string
  /** The proxy's last known state, when the name was already registered by this page. */
  proxyStatus?: ProxyStatus
  detail?: string
}

export interface ProxyMsg extends FromWorker {
  wsfrp: 'proxy'
  name: string
  status: ProxyStatus
  detail: string
}

export type WorkerToPage = PongMsg | StatusMsg | RegisteredMsg | ProxyMsg

// --- worker → page, on a registration's port --------------------------------------------------------

/** One HTTP request for a page handler. `ports[0]` takes the {@link ReplyMsg}. */
export interface RequestMsg {
  wsfrp: 'request'
  method: string
  url: string
  /** Every header as received (Host, Cookie and the rest included). */
  headers: [string, string][]
  /** Transferred; null without a body. */
  body: ReadableStream<Uint8Array> | null
  proxyName: string
  remoteAddr: string | undefined
  remotePort: number | undefined
}

/** One tcp connection for a page stream handler; both streams are transferred. */
export interface StreamMsg {
  wsfrp: 'stream'
  readable: ReadableStream<Uint8Array>
  writable: WritableStream<Uint8Array>
  proxyName: string
  remoteAddr: string | undefined
  remotePort: number | undefined
}

/** The worker gave up on a request (the HTTP client went away): the page may stop working on it. */
export interface AbortMsg {
  wsfrp: 'abort'
}

// --- page → worker, on a request's reply port --------------------------------------------------------

export interface ResponseMsg {
  wsfrp: 'response'
  status: number
  statusText: string
  headers: [string, string][]
  /** Transferred; null without a body. */
  body: ReadableStream<Uint8Array> | null
}

export interface ErrorMsg {
  wsfrp: 'error'
  message: string
}

export type ReplyMsg = ResponseMsg | ErrorMsg

/** True for an object tagged as one of ours. */
export function isWsfrpMessage(data: unknown): data is { wsfrp: string } {
  return typeof data === 'object' && data !== null && typeof (data as { wsfrp?: unknown }).wsfrp === 'string'
}
