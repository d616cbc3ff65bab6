/**
 * A small in-process frps for client tests: an HTTP(S) server on 127.0.0.1:0 whose WebSocket
 * upgrades go to core's FrpServerRole, with tcp proxies on 127.0.0.1 (remote port 0 = any). It
 * records every upgrade request and Login, can refuse upgrades with 503 (to test retries on a port
 * that stays bound), and can drop every session (to test reconnection).
 */
import * as http from 'node:http'
import * as https from 'node:https'
import * as net from 'node:net'
import type { Duplex } from 'node:stream'
import {
  FrpServerRole,
  pipe,
  type ControlHandle,
  type Login,
  type NewProxy,
  type ProxyManager,
} from '@wsfrp/core'
import { createWsServer, nodeCrypto, socketConn, wsConn } from '@wsfrp/node'

export interface UpgradeRecord {
  url: string
  headers: http.IncomingHttpHeaders
}

export interface FrpsOptions {
  token: string
  /** 'reject' answers every upgrade with 503 until `accept()`. Default 'accept'. */
  mode?: 'accept' | 'reject'
  /** Serve https/wss with this key and certificate (PEM). */
  tls?: { key: string | Buffer; cert: string | Buffer }
}

export interface TestFrps {
  readonly port: number
  /** ws://127.0.0.1:port/~!frp (wss:// with tls). */
  readonly url: string
  readonly upgrades: UpgradeRecord[]
  readonly logins: Login[]
  /** WebSocket close codes the server saw, in order. */
  readonly closeCodes: number[]
  /** Proxies currently registered: name → bound port. */
  readonly proxies: Map<string, number>
  /** NewProxy for these names is refused with the given text (as frps does for a taken port). */
  readonly refuse: Map<string, string>
  /** NewProxy messages received, by proxy name. */
  readonly newProxyCount: Map<string, number>
  role: FrpServerRole
  accept(): void
  /** A new token for later logins (the role is replaced; current sessions stay). */
  setToken(token: string): void
  /** Cuts every WebSocket at once (TCP destroy), as a crash or network loss would. */
  dropAll(): void
  /** Resolves once `pred()` holds, re-checked on every server event. */
  until(pred: () => boolean): Promise<void>
  close(): Promise<void>
}

export async function startFrps(opts: FrpsOptions): Promise<TestFrps> {
  let mode = opts.mode ?? 'accept'
  const upgrades: UpgradeRecord[] = []
  const logins: Login[] = []
  const closeCodes: number[] = []
  const bound = new Map<string, number>()
  const refuse = new Map<string, string>()
  const newProxyCount = new Map<string, number>()
  const listeners = new Map<string, net.Server>()
  const sockets = new Set<net.Socket>()
  const rawSockets = new Set<Duplex>()
  const waiters = new Set<() => void>()
  const changed = (): void => {
    for (const w of [...waiters]) w()
  }

  const proxies: ProxyManager = {
    async register(def: NewProxy & { proxy_name: string }, control: ControlHandle): Promise<string> {
      if (def.proxy_type !== 'tcp') throw new Error(`proxy type ${def.proxy_type} is not supported by the test server`)
      const name = def.proxy_name
      newProxyCount.set(name, (newProxyCount.get(name) ?? 0) + 1)
      changed()
      const refusal = refuse.get(name)
      if (refusal !== undefined) throw new Error(refusal)
      const server = net.createServer({ allowHalfOpen: true }, (sock) => {
        sockets.add(sock)
        sock.on('close', () => sockets.delete(sock))
        control
          .startWorkConn(name, { src_addr: sock.remoteAddress, src_port: sock.remotePort, dst_addr: '127.0.0.1', dst_port: (server.address() as net.AddressInfo).port })
          .then(
            (work) => pipe(socketConn(sock), work).catch(() => {}),
            () => sock.destroy(),
          )
      })
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(def.remote_port ?? 0, '127.0.0.1', () => resolve())
      })
      const port = (server.address() as net.AddressInfo).port
      listeners.set(name, server)
      bound.set(name, port)
      changed()
      return `:${port}`
    },
    unregister(name: string): void {
      listeners.get(name)?.close()
      listeners.delete(name)
      bound.delete(name)
      changed()
    },
  }

  const makeRole = (token: string): FrpServerRole =>
    new FrpServerRole({
      token,
      crypto: nodeCrypto,
      proxies,
      onControl: (event, control) => {
        if (event === 'login') logins.push(control.login)
        changed()
      },
    })

  const wss = createWsServer()
  const onRequest = (_req: http.IncomingMessage, res: http.ServerResponse): void => {
    res.writeHead(404).end()
  }
  const server = opts.tls ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, onRequest) : http.createServer(onRequest)
  server.on('connection', (s: net.Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  server.on('secureConnection', (s: Duplex) => {
    rawSockets.add(s)
    s.on('close', () => rawSockets.delete(s))
  })
  const frps: TestFrps = {
    port: 0,
    url: '',
    upgrades,
    logins,
    closeCodes,
    proxies: bound,
    refuse,
    newProxyCount,
    role: makeRole(opts.token),
    accept() {
      mode = 'accept'
    },
    setToken(token) {
      frps.role = makeRole(token)
    },
    dropAll() {
      for (const s of [...rawSockets]) s.destroy()
      for (const s of [...sockets]) s.destroy()
    },
    until(pred) {
      if (pred()) return Promise.resolve()
      return new Promise<void>((resolve) => {
        const check = (): void => {
          if (!pred()) return
          waiters.delete(check)
          resolve()
        }
        waiters.add(check)
      })
    },
    async close() {
      await frps.role.close().catch(() => {})
      for (const l of listeners.values()) l.close()
      for (const s of [...rawSockets]) s.destroy()
      for (const s of [...sockets]) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      wss.close()
    },
  }
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    upgrades.push({ url: req.url ?? '', headers: req.headers })
    changed()
    if (mode === 'reject') {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.once('close', (code: number) => {
        closeCodes.push(code)
        changed()
      })
      frps.role.handleTransport(wsConn(ws), { remoteAddress: `${req.socket.remoteAddress}:${req.socket.remotePort}` })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  Object.assign(frps, { port, url: `${opts.tls ? 'wss' : 'ws'}://127.0.0.1:${port}/~!frp` })
  return frps
}

/** A TCP echo server on 127.0.0.1:0 (half-close aware: it ends after echoing everything). */
export async function startEcho(): Promise<{ port: number; connections: number; close(): Promise<void> }> {
  const socks = new Set<net.Socket>()
  const state = { port: 0, connections: 0, close: async () => {} }
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    state.connections++
    socks.add(s)
    s.on('close', () => socks.delete(s))
    s.on('error', () => {})
    s.pipe(s)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.port = (server.address() as net.AddressInfo).port
  state.close = async () => {
    for (const s of socks) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return state
}

/** Connects to 127.0.0.1:port, sends `data`, half-closes, and resolves with everything read back. */
export function echoThrough(port: number, data: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    let got = ''
    s.setEncoding('utf8')
    s.on('data', (d: string) => (got += d))
    s.on('end', () => {
      s.end()
      resolve(got)
    })
    s.on('error', reject)
    s.on('connect', () => s.end(data))
  })
}
