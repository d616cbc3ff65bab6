import * as net from 'node:net'
import { once } from 'node:events'
import {
  FrpClientRole,
  noopLogger,
  type ClientProxy,
  type ClientRoleOptions,
  type Conn,
  type ControlHandle,
  type Login,
  type Logger,
  type StartWorkConn,
} from '@wsfrp/core'
import { connectTcp, dialWs, nodeCrypto } from '@wsfrp/node'
import { createServer, type ServerConfigInput, type WsfrpServer } from '@wsfrp/server'

export const TOKEN = 'server-test-token-8f2c'

/** A logger that keeps lines in memory (set WSFRP_TEST_LOG=1 to also print them). */
export function memoryLogger(lines: string[] = []): Logger & { lines: string[] } {
  const print = process.env.WSFRP_TEST_LOG === '1'
  const make = (prefix: string): Logger => {
    const at =
      (level: string) =>
      (msg: string, fields?: Record<string, unknown>): void => {
        const line = `[${level}] ${prefix}${msg}${fields ? ` ${JSON.stringify(fields)}` : ''}`
        lines.push(line)
        if (print) process.stderr.write(`${line}\n`)
      }
    return { debug: at('D'), info: at('I'), warn: at('W'), error: at('E'), child: (p) => make(`${prefix}${p} `) }
  }
  return Object.assign(make(''), { lines })
}

/** A listening server on 127.0.0.1:0 (tcp proxies on 127.0.0.1 too). */
export async function startServer(config: ServerConfigInput = {}, logger: Logger = noopLogger): Promise<{ server: WsfrpServer; port: number; url: string }> {
  const server = createServer(
    { bindAddr: '127.0.0.1', bindPort: 0, proxyBindAddr: '127.0.0.1', auth: { token: TOKEN }, ...config },
    { logger },
  )
  const { port } = await server.listen()
  return { server, port, url: `ws://127.0.0.1:${port}/~!frp` }
}

/** A TCP echo server on 127.0.0.1:0 that half-closes when the peer does. */
export async function echoServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>()
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    s.pipe(s)
  })
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        srv.close(() => resolve())
      }),
  }
}

/** Sends `data` on a new TCP connection, half-closes, and resolves with everything read until the peer's end. */
export function roundTrip(port: number, data: string | Buffer): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => {
      s.end(data)
    })
    s.on('data', (c: Buffer) => chunks.push(c))
    s.on('end', () => {
      s.end()
      resolve(Buffer.concat(chunks))
    })
    s.on('error', reject)
    s.on('close', () => reject(new Error('closed before end')))
  })
}

export interface ConnectedClient {
  client: FrpClientRole
  /** The client's WebSocket, as a Conn (destroy it to cut the connection abruptly). */
  transport: Conn
  runId: string
  /** Resolves with the status of a proxy once the server answered its NewProxy. */
  status(name: string): Promise<{ status: string; detail: string }>
}

/** Dials the server with the client role, logs in and registers `proxies`. */
export async function connectClient(
  url: string,
  proxies: ClientProxy[],
  opts: { token?: string; targetPort?: number; runId?: string; extra?: Partial<ClientRoleOptions> } = {},
): Promise<ConnectedClient> {
  const statuses = new Map<string, { status: string; detail: string }>()
  const waiters = new Map<string, ((s: { status: string; detail: string }) => void)[]>()
  const transport = await dialWs(url)
  const client = new FrpClientRole(transport, {
    token: opts.token ?? TOKEN,
    crypto: nodeCrypto,
    runId: opts.runId,
    proxies,
    dialTarget: (): Promise<Conn> => {
      if (opts.targetPort === undefined) return Promise.reject(new Error('no target'))
      return connectTcp('127.0.0.1', opts.targetPort)
    },
    onProxyStatus: (name, status, detail) => {
      const s = { status, detail }
      statuses.set(name, s)
      for (const w of waiters.get(name)?.splice(0) ?? []) w(s)
    },
    ...opts.extra,
  })
  const { runId } = await client.login()
  return {
    client,
    transport,
    runId,
    status: (name) => {
      const s = statuses.get(name)
      if (s !== undefined) return Promise.resolve(s)
      return new Promise((resolve) => {
        const list = waiters.get(name) ?? []
        list.push(resolve)
        waiters.set(name, list)
      })
    },
  }
}

/** Resolves when `server` emits `proxy-close` for `name`. */
export function proxyClosed(server: WsfrpServer, name: string): Promise<number> {
  return new Promise((resolve) => {
    const on = (e: { name: string; port: number }): void => {
      if (e.name !== name) return
      server.off('proxy-close', on)
      resolve(e.port)
    }
    server.on('proxy-close', on)
  })
}

/** Listens on 127.0.0.1:port; resolves with the server (or rejects with the listen error). */
export function listenOn(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve(s))
  })
}

export function closeNet(s: net.Server): Promise<void> {
  return new Promise((resolve) => s.close(() => resolve()))
}

/** A ControlHandle stand-in for driving a ProxyManager directly. */
export function fakeControl(runId: string, startWorkConn: (name: string, info: Omit<StartWorkConn, 'type' | 'proxy_name'>) => Promise<Conn>): ControlHandle {
  return {
    runId,
    login: { type: 'Login', version: '0.44.0' } as Login,
    remoteAddress: '127.0.0.1:1',
    proxyNames: new Set<string>(),
    since: Date.now(),
    startWorkConn,
    close() {},
  }
}

/**
 * A port that was free a moment ago (the OS picked it, then it was closed), for listeners that need
 * a fixed number (a dashboard or vhost port of their own); the caller retries if it is taken since.
 */
export async function freePort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as net.AddressInfo
  await new Promise<void>((r) => s.close(() => r()))
  return port
}
