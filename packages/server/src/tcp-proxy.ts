/**
 * tcp proxies: for each NewProxy of type tcp, a TCP listener on `proxyBindAddr:remote_port`; every
 * user connection it accepts is joined to a work connection of the owning client
 * (frp-wire-protocol.md §10.1).
 */
import * as net from 'node:net'
import { isPortAllowed, isWsfrpError, noopLogger, pipe, plainAddress, type Conn, type ControlHandle, type Logger, type NewProxy, type PortRange } from '@wsfrp/core'
import { socketConn } from '@wsfrp/node'

/** What the server reports about a tcp proxy when it opens and closes. */
export interface TcpProxyEvent {
  name: string
  runId: string
  /** The address the listener was bound to. */
  bindAddr: string
  port: number
}

export interface TcpProxyManagerOptions {
  /** Address the proxy listeners bind (frp `proxyBindAddr`). Default `"0.0.0.0"`. */
  proxyBindAddr?: string
  /** Ports proxies may use; `[]` (default) = any port. */
  allowPorts?: readonly PortRange[]
  /** Ports one client may hold at once; 0 (default) = unlimited. */
  maxPortsPerClient?: number
  /**
   * User connections per proxy that may wait for a work connection at once. Beyond it, new user
   * connections are closed at once, so a flood cannot queue unbounded work. Default 1,024.
   */
  maxPendingUserConns?: number
  /**
   * How long the port a `remote_port = 0` proxy got stays reserved for that proxy name, in ms, so a
   * reconnecting client gets the same port back (frps keeps it 24 h). Default 86,400,000.
   */
  portReservationMs?: number
  /**
   * Further port ranges for one client's proxies (its user's `allowPorts`), on top of
   * `allowPorts`; undefined = none. `remote_port = 0` picks a port inside both.
   */
  allowPortsFor?: (control: ControlHandle) => readonly PortRange[] | undefined
  logger?: Logger
  /** Called once the proxy's listener is bound. */
  onOpen?: (e: TcpProxyEvent) => void
  /** Called once the listener is closed and the port free again (after unregister or close). */
  onClose?: (e: TcpProxyEvent) => void
}

/** frps tries this many random candidates from `allowPorts` for `remote_port = 0` (ports.go). */
const RANDOM_PORT_TRIES = 5
const DAY_MS = 24 * 60 * 60 * 1000
/** Most remembered `remote_port = 0` ports (released ones are forgotten first, oldest first). */
const MAX_RESERVATIONS = 10_000

interface Entry {
  readonly name: string
  readonly control: ControlHandle
  readonly log: Logger
  server: net.Server | undefined
  port: number
  bindAddr: string
  /** User connections (pending or piped), destroyed on unregister. */
  readonly conns: Set<Conn>
  pending: number
  closed: boolean
}

/** A listen failure that names the port and says what went wrong, in frp's words where frp has them. */
function listenError(port: number, host: string, err: unknown): Error {
  const code = (err as { code?: unknown }).code
  if (code === 'EADDRINUSE') return new Error(`port ${port} is already in use`)
  if (code === 'EACCES') return new Error(`port ${port} cannot be bound on ${host}: permission denied`)
  if (code === 'EADDRNOTAVAIL') return new Error(`cannot listen on ${host}:${port}: address not available`)
  return new Error(`cannot listen on ${host}:${port}: ${err instanceof Error ? err.message : String(err)}`)
}

function listen(host: string, port: number): Promise<net.Server> {
  return new Promise<net.Server>((resolve, reject) => {
    // allowHalfOpen: a user's FIN must travel to the client's target while the answer still flows back.
    const server = net.createServer({ allowHalfOpen: true })
    const onError = (err: Error): void => reject(err)
    server.once('error', onError)
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', onError)
      resolve(server)
    })
  })
}

/** The ports inside both lists of ranges (`[]` in `a` means every port). */
function intersectRanges(a: readonly PortRange[], b: readonly PortRange[]): PortRange[] {
  if (a.length === 0) return [...b]
  const out: PortRange[] = []
  for (const x of a) {
    for (const y of b) {
      const start = Math.max(x.start, y.start)
      const end = Math.min(x.end, y.end)
      if (start <= end) out.push({ start, end })
    }
  }
  return out
}

/** Go prints IPv4-mapped IPv6 addresses as plain IPv4; do the same in StartWorkConn. */
function plainIp(addr: string | undefined): string {
  if (addr === undefined) return ''
  return plainAddress(addr)
}

/**
 * The `ProxyManager` side of tcp proxies. Proxy names are unique across all clients; ports are
 * checked against `allowPorts` and `maxPortsPerClient`; `unregister` frees the port at once.
 */
export class TcpProxyManager {
  private readonly entries = new Map<string, Entry>()
  /** Ports chosen for `remote_port = 0`, by proxy name, with the time they were last released. */
  private readonly reserved = new Map<string, { port: number; releasedAt: number | undefined }>()
  private readonly closing = new Set<Promise<void>>()
  private readonly log: Logger
  private readonly bindAddr: string
  private readonly allowPorts: readonly PortRange[]
  private readonly maxPortsPerClient: number
  private readonly maxPending: number
  private readonly reservationMs: number

  constructor(private readonly opts: TcpProxyManagerOptions = {}) {
    this.log = opts.logger ?? noopLogger
    this.bindAddr = opts.proxyBindAddr ?? '0.0.0.0'
    this.allowPorts = opts.allowPorts ?? []
    this.maxPortsPerClient = opts.maxPortsPerClient ?? 0
    // Bursts of hundreds of connections are normal (frp has no such cap); the bound is there so that a
    // client that never opens work streams cannot make the server queue sockets without end.
    this.maxPending = opts.maxPendingUserConns ?? 1024
    this.reservationMs = opts.portReservationMs ?? DAY_MS
  }

  /** Open tcp proxies (names). */
  get size(): number {
    return this.entries.size
  }

  /** The bound port of a proxy, or undefined. */
  portOf(name: string): number | undefined {
    const e = this.entries.get(name)
    return e?.server === undefined ? undefined : e.port
  }

  async register(proxy: NewProxy & { proxy_name: string }, control: ControlHandle): Promise<string> {
    const name = proxy.proxy_name
    const type = proxy.proxy_type || 'tcp'
    if (type !== 'tcp') throw new Error(`proxy type ${type} is not supported by this server yet`)
    if (this.entries.has(name)) throw new Error(`proxy [${name}] is already in use`)
    // Without snappy on the work stream the client would read our raw bytes as compressed ones:
    // refuse instead of corrupting the data (frp-wire-protocol.md §6.3).
    if (proxy.use_compression === true) throw new Error('use_compression (transport.useCompression) is not supported by this server yet')
    const asked = proxy.remote_port ?? 0
    if (!Number.isInteger(asked) || asked < 0 || asked > 65535) throw new Error(`remote port ${String(asked)} is not a valid port`)
    if (asked !== 0 && !isPortAllowed(asked, this.allowPorts)) throw new Error(`port ${asked} is not allowed`)
    const extra = this.opts.allowPortsFor?.(control)
    let allowed = this.allowPorts
    if (extra !== undefined && extra.length > 0) {
      if (asked !== 0 && !isPortAllowed(asked, extra)) throw new Error(`port ${asked} is not allowed for this user`)
      allowed = intersectRanges(this.allowPorts, extra)
      if (allowed.length === 0) throw new Error('no port is allowed for this user: its allowPorts and the server\'s allowPorts do not overlap')
    }
    if (this.maxPortsPerClient > 0) {
      let held = 0
      for (const e of this.entries.values()) if (e.control === control) held++
      if (held >= this.maxPortsPerClient) {
        throw new Error(`exceed the max ports per client: this client already holds ${held} (maxPortsPerClient = ${this.maxPortsPerClient})`)
      }
    }

    // Claim the name before the first await, so that two NewProxy with one name cannot both pass.
    const entry: Entry = {
      name,
      control,
      log: this.log.child(`[${control.runId}] [${name}]`),
      server: undefined,
      port: 0,
      bindAddr: this.bindAddr,
      conns: new Set(),
      pending: 0,
      closed: false,
    }
    this.entries.set(name, entry)
    try {
      const server = await this.bind(name, asked, allowed)
      entry.server = server
      entry.port = (server.address() as net.AddressInfo).port
      if (entry.closed) {
        // unregister() came while we were binding: give the port back at once.
        this.closeServer(entry)
        throw new Error(`proxy [${name}] was closed while it was starting`)
      }
      server.on('error', (err) => entry.log.warn('proxy listener error', { error: err.message }))
      server.on('connection', (socket) => this.onUserConn(entry, socket))
      if (asked === 0) this.reserve(name, entry.port)
      entry.log.info('tcp proxy listening', { bind: `${this.bindAddr}:${entry.port}` })
      this.opts.onOpen?.(this.event(entry))
      return `:${entry.port}`
    } catch (err) {
      if (this.entries.get(name) === entry) this.entries.delete(name)
      throw err
    }
  }

  unregister(proxyName: string, control: ControlHandle): void {
    const entry = this.entries.get(proxyName)
    // Only the owner may close a proxy: a late CloseProxy of a replaced client must not hit the new one.
    if (entry === undefined || entry.control !== control) return
    this.entries.delete(proxyName)
    entry.closed = true
    const r = this.reserved.get(proxyName)
    if (r !== undefined && r.port === entry.port) r.releasedAt = Date.now()
    for (const c of entry.conns) c.destroy()
    entry.conns.clear()
    // Still binding: register() closes the listener when the bind completes.
    if (entry.server !== undefined) this.closeServer(entry)
  }

  /** Closes every proxy; resolves when every listener is closed. */
  async close(): Promise<void> {
    for (const e of [...this.entries.values()]) this.unregister(e.name, e.control)
    await Promise.all([...this.closing])
  }

  /** Remembers the port of a `remote_port = 0` proxy; the table is bounded so names cannot grow it forever. */
  private reserve(name: string, port: number): void {
    this.reserved.delete(name)
    this.reserved.set(name, { port, releasedAt: undefined })
    if (this.reserved.size <= MAX_RESERVATIONS) return
    for (const [n, r] of this.reserved) {
      if (this.reserved.size <= MAX_RESERVATIONS) break
      // Oldest first (insertion order); ports still held by a running proxy are kept.
      if (r.releasedAt !== undefined) this.reserved.delete(n)
    }
  }

  private event(e: Entry): TcpProxyEvent {
    return { name: e.name, runId: e.control.runId, bindAddr: e.bindAddr, port: e.port }
  }

  private closeServer(entry: Entry): void {
    const server = entry.server!
    // server.close() releases the listening socket now; its callback waits for accepted sockets,
    // which were all destroyed above.
    const done = new Promise<void>((resolve) => {
      server.close(() => resolve())
    }).then(() => {
      this.closing.delete(done)
      entry.log.info('tcp proxy closed', { port: entry.port })
      this.opts.onClose?.(this.event(entry))
    })
    this.closing.add(done)
  }

  /** Binds `asked`, or for 0: the port reserved for this name, else a random allowed port, else any. */
  private async bind(name: string, asked: number, allowPorts: readonly PortRange[]): Promise<net.Server> {
    const host = this.bindAddr
    if (asked !== 0) {
      try {
        return await listen(host, asked)
      } catch (err) {
        throw listenError(asked, host, err)
      }
    }
    const candidates: number[] = []
    const r = this.reserved.get(name)
    if (r !== undefined) {
      if (r.releasedAt !== undefined && Date.now() - r.releasedAt > this.reservationMs) this.reserved.delete(name)
      else if (isPortAllowed(r.port, allowPorts)) candidates.push(r.port)
    }
    if (allowPorts.length > 0) {
      const total = allowPorts.reduce((n, p) => n + (p.end - p.start + 1), 0)
      for (let i = 0; i < RANDOM_PORT_TRIES; i++) {
        let k = Math.floor(Math.random() * total)
        for (const p of allowPorts) {
          const n = p.end - p.start + 1
          if (k < n) {
            candidates.push(p.start + k)
            break
          }
          k -= n
        }
      }
    } else {
      candidates.push(0) // the OS picks a free port
    }
    let last: unknown
    for (const port of candidates) {
      try {
        return await listen(host, port)
      } catch (err) {
        last = err
        if ((err as { code?: unknown }).code !== 'EADDRINUSE') throw listenError(port, host, err)
      }
    }
    if (allowPorts.length > 0) throw new Error('no allowed port is free: every port tried is already in use')
    throw listenError(0, host, last)
  }

  private onUserConn(entry: Entry, socket: net.Socket): void {
    if (entry.closed) {
      socket.destroy()
      return
    }
    const src = `${plainIp(socket.remoteAddress)}:${socket.remotePort ?? 0}`
    if (entry.pending >= this.maxPending) {
      entry.log.warn('too many user connections waiting for a work connection: closing a new one', { remote: src, pending: entry.pending })
      socket.destroy()
      return
    }
    // Wrapped at once so that no byte the user sends before the work connection exists is lost.
    const user = socketConn(socket)
    entry.conns.add(user)
    entry.pending++
    entry.log.debug('user connection', { remote: src })
    entry.control
      .startWorkConn(entry.name, {
        src_addr: plainIp(socket.remoteAddress),
        src_port: socket.remotePort ?? 0,
        dst_addr: plainIp(socket.localAddress),
        dst_port: socket.localPort ?? entry.port,
      })
      .then(
        (work) => {
          entry.pending--
          if (entry.closed || !entry.conns.has(user)) {
            work.destroy()
            user.destroy()
            return
          }
          pipe(user, work).then(
            () => entry.log.debug('user connection closed', { remote: src }),
            (err: Error) => entry.log.debug('user connection ended with an error', { remote: src, error: err.message }),
          ).finally(() => entry.conns.delete(user))
        },
        (err: unknown) => {
          entry.pending--
          entry.conns.delete(user)
          const fields = { remote: src, error: err instanceof Error ? err.message : String(err) }
          // A user's connection limit refuses by design; at warn, a flood would flood the log too.
          if (isWsfrpError(err, 'ERR_LIMIT')) entry.log.debug('user connection refused: a limit was reached', fields)
          else entry.log.warn('no work connection for a user connection: closing it', fields)
          user.destroy()
        },
      )
  }
}
