/**
 * What the dashboard, the REST API and `/metrics` report: bytes and open connections per proxy (with
 * a 7-day per-day history, as frps keeps), login failures, and the yamux sessions behind the clients.
 *
 * Bytes are counted where every proxy type meets its client: the work connection that
 * `ControlHandle.startWorkConn` hands out. {@link ServerMetrics.countTraffic} wraps the server's
 * ProxyManager so that every manager (tcp, http vhosts, later types) gets controls whose work
 * connections count themselves, without any of them knowing. "In" is what users send towards the
 * client, "out" what comes back, as in frps (frp-wire-protocol.md §11.2).
 */
import { EventEmitter } from 'node:events'
import { ForwardingConn, type Conn, type ControlHandle, type LoginRefusalReason, type NewProxy, type ProxyManager, type YamuxSession } from '@wsfrp/core'

/** Days of per-day traffic kept per proxy (frps keeps 7). */
export const HISTORY_DAYS = 7
const DAY_MS = 86_400_000
/** Default bound on remembered proxies (online ones plus offline ones whose history is kept). */
const DEFAULT_MAX_PROXIES = 10_000

/** The local calendar day of a time, as a count of days (local midnights are the boundaries). */
export function localDay(ms: number): number {
  return Math.floor((ms - new Date(ms).getTimezoneOffset() * 60_000) / DAY_MS)
}

/**
 * A byte total with its split per local day. Adding is a plain `+=` on `total`; the split is only
 * worked out when the day changes (`roll`), so counting stays one addition per chunk.
 */
export class DailyCounter {
  /** Bytes since the counter was created. */
  total = 0
  /** The day `total - base` belongs to. */
  private day: number
  /** `total` at the start of `day`. */
  private base = 0
  /** Bytes of earlier days: `[yesterday, the day before, …]`, HISTORY_DAYS - 1 entries. */
  private readonly past: number[] = new Array<number>(HISTORY_DAYS - 1).fill(0)

  constructor(day: number) {
    this.day = day
  }

  /**
   * Moves on to `day`. Bytes counted since the last roll are booked on the day that was current then
   * (rolls happen at midnight and before every read, so that is where they belong); skipped days get 0.
   */
  roll(day: number): void {
    if (day <= this.day) return
    const gap = day - this.day
    const last = this.total - this.base
    // [0 for each skipped day, the finished day, the older days], cut to the kept length.
    const next = [...new Array<number>(Math.min(gap - 1, HISTORY_DAYS)).fill(0), last, ...this.past]
    for (let i = 0; i < this.past.length; i++) this.past[i] = next[i]!
    this.day = day
    this.base = this.total
  }

  /** Bytes of today (since local midnight, as of the last roll). */
  get today(): number {
    return this.total - this.base
  }

  /** `[today, yesterday, …]`, HISTORY_DAYS entries (frps's `/api/traffic` order). */
  lastDays(): number[] {
    return [this.today, ...this.past]
  }

  /** The day `today` refers to. */
  get currentDay(): number {
    return this.day
  }
}

/**
 * A proxy's definition as the API shows it: the NewProxy fields that are safe to publish, in frp's
 * camelCase (frp ≥ 0.53 `conf`). Keys, passwords, headers, metas and annotations are never kept:
 * they may carry secrets (`http_pwd`, `sk`, `group_key`, an Authorization header).
 */
export interface ProxyConf {
  readonly name: string
  readonly type: string
  readonly transport: {
    readonly useEncryption: boolean
    readonly useCompression: boolean
    readonly bandwidthLimit?: string
    readonly bandwidthLimitMode?: string
  }
  readonly loadBalancer?: { readonly group: string }
  /** tcp, udp: the port asked for (0 = any; the port given is in `remoteAddr`). */
  readonly remotePort?: number
  /** http, https, tcpmux. */
  readonly customDomains?: readonly string[]
  readonly subdomain?: string
  readonly locations?: readonly string[]
  readonly hostHeaderRewrite?: string
  readonly multiplexer?: string
  readonly routeByHTTPUser?: string
}

/**
 * Picks the publishable fields of a NewProxy (see {@link ProxyConf}). The result is deeply frozen, so
 * snapshots can share it.
 */
export function proxyConf(p: NewProxy & { proxy_name: string }): ProxyConf {
  const list = (v: string[] | undefined): readonly string[] | undefined => (v !== undefined && v.length > 0 ? Object.freeze([...v]) : undefined)
  const customDomains = list(p.custom_domains)
  const locations = list(p.locations)
  const type = p.proxy_type || 'tcp'
  return Object.freeze({
    name: p.proxy_name,
    type,
    transport: Object.freeze({
      useEncryption: p.use_encryption === true,
      useCompression: p.use_compression === true,
      ...(p.bandwidth_limit ? { bandwidthLimit: p.bandwidth_limit } : {}),
      ...(p.bandwidth_limit_mode ? { bandwidthLimitMode: p.bandwidth_limit_mode } : {}),
    }),
    ...(p.group ? { loadBalancer: Object.freeze({ group: p.group }) } : {}),
    // frp leaves a 0 port out of NewProxy; the conf shows it, as frps does for tcp and udp.
    ...(p.remote_port !== undefined || type === 'tcp' || type === 'udp' ? { remotePort: p.remote_port ?? 0 } : {}),
    ...(customDomains ? { customDomains } : {}),
    ...(p.subdomain ? { subdomain: p.subdomain } : {}),
    ...(locations ? { locations } : {}),
    ...(p.host_header_rewrite ? { hostHeaderRewrite: p.host_header_rewrite } : {}),
    ...(p.multiplexer ? { multiplexer: p.multiplexer } : {}),
    ...(p.route_by_http_user ? { routeByHTTPUser: p.route_by_http_user } : {}),
  })
}

/** One proxy's counters, as read by the API (a copy; times in ms since the epoch, 0 = never). */
export interface ProxyStats {
  name: string
  type: string
  /** `"online"` while a client holds it, `"offline"` after (its history is kept for 7 days). */
  status: 'online' | 'offline'
  /** Run id of the client that holds (or last held) it. */
  runId: string
  /** frp `user` of that client (`""` = none). */
  user: string
  /** frp `client_id` of that client (frp ≥ 0.67; `""` = none). */
  clientId: string
  /**
   * The `[[auth.users]]` user whose client holds (or last held) it; undefined for a client of the
   * shared token. The REST API shows a user only its own proxies ({@link visibleTo}).
   */
  tenant: string | undefined
  conf: ProxyConf
  /** NewProxyResp.remote_addr (tcp: `":<port>"`). */
  remoteAddr: string
  /** User connections joined to a work connection right now. */
  curConns: number
  /** Bytes from users towards the client, since the server started (survives reconnects). */
  trafficIn: number
  /** Bytes from the client back to users. */
  trafficOut: number
  todayTrafficIn: number
  todayTrafficOut: number
  lastStartTime: number
  lastCloseTime: number
}

/** Server-wide counters. */
export interface TrafficTotals {
  /** Bytes from users towards clients, all proxies, since the server started. */
  trafficIn: number
  trafficOut: number
  /** Open user connections (joined to a work connection), all proxies. */
  curConns: number
  /** Refused logins (bad token, too old a client, refused by `authorizeLogin`). */
  loginFailures: number
}

/** The yamux sessions (one per WebSocket transport), summed. */
export interface SessionTotals {
  transports: number
  /** Streams open in all sessions (controls, pooled and active work streams). */
  streams: number
  /** Bytes waiting in stream receive buffers, all sessions (`YamuxStats.receiveBufferedBytes`). */
  receiveBufferedBytes: number
}

/** Events of {@link ServerMetrics} (for tests and live views). */
export interface ServerMetricsEvents {
  /** A user connection was joined to a work connection (`open`), or that pair ended. */
  conn: [info: { name: string; type: string; open: boolean }]
  /** A login was refused, and why (the session role's reason code). */
  'login-failure': [reason: LoginRefusalReason]
}

export interface ServerMetricsOptions {
  /** Clock in ms since the epoch (tests). Default `Date.now`. */
  now?: () => number
  /**
   * Proxies remembered at most (online, plus offline ones whose traffic history is kept). Past it the
   * offline proxy closed longest ago is forgotten. Default 10,000.
   */
  maxProxies?: number
}

interface Entry {
  name: string
  type: string
  /** The control that holds the proxy now (the raw one, not the counting wrapper). */
  owner: ControlHandle | undefined
  runId: string
  user: string
  clientId: string
  tenant: string | undefined
  conf: ProxyConf
  remoteAddr: string
  curConns: number
  readonly in: DailyCounter
  readonly out: DailyCounter
  lastStartTime: number
  lastCloseTime: number
}

/**
 * The server's counters. Created by the server; read them through the API (`server.metrics`), not
 * by poking the fields.
 */
export class ServerMetrics extends EventEmitter<ServerMetricsEvents> {
  private readonly now: () => number
  private readonly maxProxies: number
  private readonly entries = new Map<string, Entry>()
  private readonly counted = new WeakMap<ControlHandle, ControlHandle>()
  private readonly sessions = new Map<string, YamuxSession>()
  private day: number
  private timer: NodeJS.Timeout | undefined
  private closed = false
  private totalIn = 0
  private totalOut = 0
  private conns = 0
  private failures = 0

  constructor(opts: ServerMetricsOptions = {}) {
    super()
    this.now = opts.now ?? Date.now
    this.maxProxies = opts.maxProxies ?? DEFAULT_MAX_PROXIES
    this.day = localDay(this.now())
    this.scheduleRoll()
  }

  /**
   * Wraps the ProxyManager the session role talks to. Proxies are recorded once their manager
   * accepted them; the managers get, instead of each control, a stand-in (one per control, so
   * identity checks keep working) whose `startWorkConn` hands out counting connections.
   */
  countTraffic(inner: ProxyManager): ProxyManager {
    return {
      register: async (proxy, control) => {
        const remoteAddr = await inner.register(proxy, this.countedControl(control))
        this.proxyOnline(proxy, control, remoteAddr)
        return remoteAddr
      },
      unregister: (name, control) => {
        try {
          inner.unregister(name, this.countedControl(control))
        } finally {
          this.proxyOffline(name, control)
        }
      },
    }
  }

  /** Counts one refused login; the server wires it to the session role's `onLoginRefused`. */
  loginFailed(reason: LoginRefusalReason): void {
    this.failures++
    this.emit('login-failure', reason)
  }

  /** Follows a transport's yamux session until it closes (for stream counts and buffered bytes). */
  trackSession(remoteAddress: string, session: YamuxSession): void {
    this.sessions.set(remoteAddress, session)
    void session.closed.then(() => {
      if (this.sessions.get(remoteAddress) === session) this.sessions.delete(remoteAddress)
    })
  }

  /** Open yamux streams of the transport at `remoteAddress` (a control's `remoteAddress`); 0 if none. */
  streamsOf(remoteAddress: string): number {
    return this.sessions.get(remoteAddress)?.stats().streams ?? 0
  }

  sessionTotals(): SessionTotals {
    let streams = 0
    let buffered = 0
    for (const s of this.sessions.values()) {
      const st = s.stats()
      streams += st.streams
      buffered += st.receiveBufferedBytes
    }
    return { transports: this.sessions.size, streams, receiveBufferedBytes: buffered }
  }

  totals(): TrafficTotals {
    return { trafficIn: this.totalIn, trafficOut: this.totalOut, curConns: this.conns, loginFailures: this.failures }
  }

  /** Proxies held by a client now (`online`), or every remembered one (`all`), in registration order. */
  proxies(which: 'online' | 'all' = 'online'): ProxyStats[] {
    this.rollIfNeeded()
    const out: ProxyStats[] = []
    for (const e of this.entries.values()) if (which === 'all' || e.owner !== undefined) out.push(snapshot(e))
    return out
  }

  /** One proxy (online or remembered), or undefined. */
  proxy(name: string): ProxyStats | undefined {
    this.rollIfNeeded()
    const e = this.entries.get(name)
    return e === undefined ? undefined : snapshot(e)
  }

  /** Per-day bytes of a proxy, `[today, yesterday, …]` (7 entries), or undefined for an unknown name. */
  traffic(name: string): { trafficIn: number[]; trafficOut: number[] } | undefined {
    this.rollIfNeeded()
    const e = this.entries.get(name)
    if (e === undefined) return undefined
    return { trafficIn: e.in.lastDays(), trafficOut: e.out.lastDays() }
  }

  /** Stops the midnight timer. The counters stay readable. */
  close(): void {
    this.closed = true
    clearTimeout(this.timer)
    this.timer = undefined
  }

  /** The stand-in for `control` that managers see (created once per control). */
  private countedControl(control: ControlHandle): ControlHandle {
    let c = this.counted.get(control)
    if (c !== undefined) return c
    const startWorkConn: ControlHandle['startWorkConn'] = (name, info) =>
      control.startWorkConn(name, info).then((conn) => {
        const e = this.entries.get(name)
        // A proxy not (or no longer) recorded for this control: hand the conn over uncounted.
        return e !== undefined && e.owner === control ? new CountingConn(conn, e, this) : conn
      })
    // A Proxy rather than a copy: whatever ControlHandle grows later is passed through unchanged.
    c = new Proxy(control, {
      get(target, prop) {
        if (prop === 'startWorkConn') return startWorkConn
        const v: unknown = Reflect.get(target, prop, target)
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
    this.counted.set(control, c)
    return c
  }

  private proxyOnline(proxy: NewProxy & { proxy_name: string }, control: ControlHandle, remoteAddr: string): void {
    this.rollIfNeeded()
    const name = proxy.proxy_name
    const now = this.now()
    let e = this.entries.get(name)
    // A name taken over by another user (or by the shared token from a user, or back) starts a new
    // history: one user's traffic must never show up in another's API.
    if (e !== undefined && e.owner === undefined && e.tenant !== control.tenant) {
      this.entries.delete(name)
      e = undefined
    }
    if (e === undefined) {
      e = {
        name,
        type: '',
        owner: undefined,
        runId: '',
        user: '',
        clientId: '',
        tenant: control.tenant,
        conf: proxyConf(proxy),
        remoteAddr: '',
        curConns: 0,
        in: new DailyCounter(this.day),
        out: new DailyCounter(this.day),
        lastStartTime: 0,
        lastCloseTime: 0,
      }
      this.entries.set(name, e)
      this.evict()
    } else {
      // Most recently started last, so eviction (oldest first) keeps the busy ones.
      this.entries.delete(name)
      this.entries.set(name, e)
    }
    // A proxy name keeps its history across clients and restarts (frps keys its statistics by name).
    e.type = proxy.proxy_type || 'tcp'
    e.owner = control
    e.runId = control.runId
    e.user = control.login.user ?? ''
    e.clientId = control.login.client_id ?? ''
    e.tenant = control.tenant
    e.conf = proxyConf(proxy)
    e.remoteAddr = remoteAddr
    e.lastStartTime = now
  }

  private proxyOffline(name: string, control: ControlHandle): void {
    const e = this.entries.get(name)
    // A late unregister from a replaced client must not take the new holder's proxy offline.
    if (e === undefined || e.owner !== control) return
    e.owner = undefined
    e.lastCloseTime = this.now()
  }

  /** Forgets offline proxies beyond `maxProxies`, oldest start first. */
  private evict(): void {
    if (this.entries.size <= this.maxProxies) return
    for (const [name, e] of this.entries) {
      if (this.entries.size <= this.maxProxies) break
      if (e.owner === undefined) this.entries.delete(name)
    }
  }

  /** @internal Called by CountingConn. */
  connOpened(e: Entry): void {
    e.curConns++
    this.conns++
    this.emit('conn', { name: e.name, type: e.type, open: true })
  }

  /** @internal Called by CountingConn. */
  connClosed(e: Entry): void {
    e.curConns--
    this.conns--
    this.emit('conn', { name: e.name, type: e.type, open: false })
  }

  /** @internal Called by CountingConn for every chunk: two additions, nothing allocated. */
  addIn(e: Entry, n: number): void {
    e.in.total += n
    this.totalIn += n
  }

  /** @internal */
  addOut(e: Entry, n: number): void {
    e.out.total += n
    this.totalOut += n
  }

  private rollIfNeeded(): void {
    const day = localDay(this.now())
    if (day <= this.day) return
    this.day = day
    const expired = day - HISTORY_DAYS
    for (const [name, e] of this.entries) {
      e.in.roll(day)
      e.out.roll(day)
      // An offline proxy whose whole history is zero-filled has nothing left to show.
      if (e.owner === undefined && localDay(e.lastCloseTime) <= expired) this.entries.delete(name)
    }
  }

  /** Rolls the day over at the next local midnight, so bytes are booked on the day they flowed. */
  private scheduleRoll(): void {
    if (this.closed) return
    const now = this.now()
    const d = new Date(now)
    const midnight = new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1).getTime()
    // A little past midnight, so that localDay() has moved on when the timer fires.
    this.timer = setTimeout(() => {
      this.rollIfNeeded()
      this.scheduleRoll()
    }, Math.max(1000, midnight - now + 1000))
    this.timer.unref()
  }
}

function snapshot(e: Entry): ProxyStats {
  return {
    name: e.name,
    type: e.type,
    status: e.owner === undefined ? 'offline' : 'online',
    runId: e.runId,
    user: e.user,
    clientId: e.clientId,
    tenant: e.tenant,
    conf: e.conf,
    remoteAddr: e.remoteAddr,
    curConns: e.curConns,
    trafficIn: e.in.total,
    trafficOut: e.out.total,
    todayTrafficIn: e.in.today,
    todayTrafficOut: e.out.today,
    lastStartTime: e.lastStartTime,
    lastCloseTime: e.lastCloseTime,
  }
}

/**
 * A work connection that counts what passes: bytes written to it came from a user ("in"), bytes it
 * delivers go back to the user ("out"); open from construction until it is finished.
 */
class CountingConn extends ForwardingConn {
  constructor(
    inner: Conn,
    private readonly entry: Entry,
    private readonly m: ServerMetrics,
  ) {
    super(inner)
    m.connOpened(entry)
  }

  override write(chunk: Uint8Array): boolean {
    this.m.addIn(this.entry, chunk.byteLength)
    return super.write(chunk)
  }

  override onData(chunk: Uint8Array): void {
    this.m.addOut(this.entry, chunk.byteLength)
    super.onData(chunk)
  }

  protected override onFinish(): void {
    this.m.connClosed(this.entry)
  }
}
