/**
 * Test bench for the http vhost: a real frps side (FrpServerRole + HttpVhost) and a real frpc side
 * (FrpClientRole) joined over loopback TCP, local HTTP services on 127.0.0.1:0 reached through
 * connectTcp, and a public http.Server on 127.0.0.1:0 wired to the vhost the way server.ts does it.
 */
import * as http from 'node:http'
import * as net from 'node:net'
import type { AddressInfo } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { FrpClientRole, FrpServerRole, type ClientProxy, type StartWorkConn } from '@wsfrp/core'
import { connectTcp, listenTcp, nodeCrypto, type TcpListener } from '@wsfrp/node'
import { HttpVhost, serveVhostOnly, VHOST_DEFAULTS, type HttpVhostOptions } from '../src/vhost/index.js'

export const TOKEN = 'vhost-test-token'

/** Listens on 127.0.0.1:0 and resolves with the port. */
export async function listen(server: http.Server | net.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  return (server.address() as AddressInfo).port
}

export async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}

/** A local HTTP service; `requests` counts what reached it. */
export interface LocalService {
  server: http.Server
  port: number
  requests: http.IncomingMessage[]
}

export async function localService(handler: http.RequestListener, opts?: http.ServerOptions): Promise<LocalService> {
  const requests: http.IncomingMessage[] = []
  const server = http.createServer(opts ?? {}, (req, res) => {
    requests.push(req)
    handler(req, res)
  })
  const port = await listen(server)
  return { server, port, requests }
}

/** A local service that answers with JSON describing the request it got (method, url, headers). */
export function describeHandler(id: string): http.RequestListener {
  return (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = JSON.stringify({ id, method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString() })
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) })
      res.end(body)
    })
  }
}

export interface BenchProxy {
  name: string
  /** NewProxy fields: custom_domains, subdomain, locations, http_user, … */
  fields: ClientProxy['fields']
  /** Port of the local service on 127.0.0.1. */
  localPort: number
}

export interface Bench {
  vhost: HttpVhost
  role: FrpServerRole
  client: FrpClientRole
  /** The public (user-facing) http server and its port. */
  server: http.Server
  port: number
  /** Every StartWorkConn the client received (one per work stream used), with the proxy name. */
  starts: (StartWorkConn & { proxy: string })[]
  /** Proxy status from NewProxyResp: [status, remote_addr or error]. */
  status: Map<string, [string, string]>
  /** Resolves with a proxy's status once NewProxyResp arrived. */
  proxyStatus(name: string): Promise<[string, string]>
  close(): Promise<void>
}

export interface BenchOptions {
  proxies: BenchProxy[]
  vhost?: HttpVhostOptions
  poolCount?: number
  userConnTimeoutMs?: number
  /** Wait for every proxy's NewProxyResp (default true). */
  waitRunning?: boolean
}

/** Builds the whole chain and waits until every proxy is registered. */
export async function startBench(opts: BenchOptions): Promise<Bench> {
  const vhost = new HttpVhost({ ...opts.vhost, vhostPort: opts.vhost?.vhostPort ?? (() => port) })
  const role = new FrpServerRole({
    token: TOKEN,
    crypto: nodeCrypto,
    proxies: vhost,
    yamux: { keepAliveInterval: 0 },
    userConnTimeoutMs: opts.userConnTimeoutMs ?? 5_000,
  })
  const transport: TcpListener = await listenTcp((conn, socket) => role.handleTransport(conn, { remoteAddress: `${socket.remoteAddress}:${socket.remotePort}` }))

  // The public listener, wired as server.ts wires a vhostHTTPPort of its own.
  const server = http.createServer({ maxHeaderSize: VHOST_DEFAULTS.maxHeaderBytes, requestTimeout: 0 })
  serveVhostOnly(server, vhost)
  const port = await listen(server)

  const starts: Bench['starts'] = []
  const status = new Map<string, [string, string]>()
  const statusWaiters = new Map<string, ((s: [string, string]) => void)[]>()
  const localPorts = new Map(opts.proxies.map((p) => [p.name, p.localPort]))
  const conn = await connectTcp(transport.host, transport.port)
  const client = new FrpClientRole(conn, {
    token: TOKEN,
    crypto: nodeCrypto,
    poolCount: opts.poolCount ?? 1,
    proxies: opts.proxies.map((p) => ({ name: p.name, type: 'http' as const, fields: p.fields })),
    yamux: { keepAliveInterval: 0 },
    dialTarget: (proxy, start) => {
      starts.push({ ...start, proxy: proxy.name })
      return connectTcp('127.0.0.1', localPorts.get(proxy.name)!, { timeoutMs: 2_000 })
    },
    onProxyStatus: (name, s, detail) => {
      status.set(name, [s, detail])
      for (const w of statusWaiters.get(name)?.splice(0) ?? []) w([s, detail])
    },
  })
  const proxyStatus = (name: string): Promise<[string, string]> => {
    const s = status.get(name)
    if (s !== undefined) return Promise.resolve(s)
    return new Promise((resolve) => {
      const list = statusWaiters.get(name) ?? []
      list.push(resolve)
      statusWaiters.set(name, list)
    })
  }
  await client.login()
  if (opts.waitRunning ?? true) {
    for (const p of opts.proxies) {
      const [s, detail] = await proxyStatus(p.name)
      if (s !== 'running') throw new Error(`proxy ${p.name} did not start: ${detail}`)
    }
  }
  return {
    vhost,
    role,
    client,
    server,
    port,
    starts,
    status,
    proxyStatus,
    close: async () => {
      client.close()
      await role.close()
      vhost.close()
      await closeServer(server)
      await transport.close()
    },
  }
}

/** What a test request got back. */
export interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  rawHeaders: string[]
  body: Buffer
  /** Set when the request went through a keep-alive agent: it used a socket that was used before. */
  reused: boolean
}

export interface RequestOpts {
  method?: string
  path?: string
  headers?: http.OutgoingHttpHeaders
  body?: string | Buffer
  agent?: http.Agent | false
}

/** One request to the public port (a new TCP connection unless an agent is given). */
export function request(port: number, host: string, o: RequestOpts = {}): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: o.method ?? 'GET',
        path: o.path ?? '/',
        headers: { host, ...o.headers },
        agent: o.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks), reused: req.reusedSocket }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(o.body)
  })
}

/** Sends raw bytes on a fresh TCP connection and collects everything until the server closes or `until` holds. */
export function rawExchange(port: number, data: string | Buffer, until?: (text: string) => boolean): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    let text = ''
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1')
      if (until?.(text)) {
        s.destroy()
        resolve(text)
      }
    })
    s.on('end', () => resolve(text))
    s.on('close', () => resolve(text))
    s.on('error', reject)
    s.write(data)
  })
}

/**
 * Samples memory while a transfer runs. Every sample first forces a full GC (through the
 * `--expose_gc` flag set at run time), so garbage from chunk allocation does not count and what is
 * measured is what is really held: `livePeak` is the highest heapUsed + arrayBuffers growth, `rssPeak`
 * the highest RSS growth, both in bytes over the value at start().
 */
export function memoryProbe(everyMs = 25): { stop(): { livePeak: number; rssPeak: number } } {
  setFlagsFromString('--expose_gc')
  const gc = runInNewContext('gc') as () => void
  const live = (): number => {
    const m = process.memoryUsage()
    return m.heapUsed + m.arrayBuffers
  }
  gc()
  const baseLive = live()
  const baseRss = process.memoryUsage().rss
  let livePeak = 0
  let rssPeak = 0
  const sample = (): void => {
    gc()
    livePeak = Math.max(livePeak, live() - baseLive)
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss - baseRss)
  }
  const timer = setInterval(sample, everyMs)
  return {
    stop() {
      clearInterval(timer)
      sample()
      return { livePeak, rssPeak }
    },
  }
}
