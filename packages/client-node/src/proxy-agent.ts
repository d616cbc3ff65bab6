/**
 * An `http.Agent` that reaches the WebSocket server through a forward proxy (`transport.proxyURL`,
 * frp's `http_proxy`, or the usual environment variables), without a dependency: ws hands every
 * request's connection to `agent.createConnection`, which may answer through its callback later.
 *
 * - `http://` and `https://` proxies: `CONNECT host:port` (RFC 9110 §9.3.6). Credentials go through
 *   a small hook ({@link ProxyAuthHook}); the default sends Basic from the URL's user and password.
 * - `socks5://` and `socks5h://` proxies: SOCKS5 CONNECT (RFC 1928) with username/password
 *   (RFC 1929). `socks5` resolves the server's name here, `socks5h` lets the proxy resolve it (curl's
 *   convention).
 */
import * as dns from 'node:dns'
import * as http from 'node:http'
import * as net from 'node:net'
import * as tls from 'node:tls'
import type { Duplex } from 'node:stream'

/** What a {@link ProxyAuthHook} is told before each CONNECT. */
export interface ProxyAuthChallenge {
  /** 0 for the first CONNECT (credentials sent up front), then 1, 2, … after each 407. */
  round: number
  /** The `Proxy-Authenticate` values of the last 407, e.g. `['Basic realm="x"', 'NTLM']`; empty in round 0. */
  proxyAuthenticate: string[]
  /** The proxy, credentials included. */
  proxyUrl: URL
  /** The `host:port` the tunnel is asked for. */
  target: string
}

/**
 * Headers to add to a CONNECT request (`Proxy-Authorization`, usually). Return `undefined` to give
 * up after a 407. Connection-based schemes (NTLM, Negotiate) work: after a 407 that keeps the
 * connection open the next round is sent on the same connection.
 */
export type ProxyAuthHook = (
  challenge: ProxyAuthChallenge,
) => Record<string, string> | undefined | Promise<Record<string, string> | undefined>

/** Options of {@link ConnectProxyAgent}. */
export interface ConnectProxyAgentOptions {
  /**
   * `http://[user:password@]host[:port]`, `https://…` (TLS to the proxy itself), or
   * `socks5://[user:password@]host[:port]` / `socks5h://…` (port 1080 by default).
   */
  proxyUrl: string
  /** True when the tunnelled connection carries TLS to the server (wss). */
  secureTarget: boolean
  /** Give up on the proxy (TCP connect and CONNECT answer) after this many ms. Default 10,000. */
  timeoutMs?: number
  /** http(s) proxies: credentials for CONNECT. Default {@link basicProxyAuth}. */
  auth?: ProxyAuthHook
  /** Names the setting in errors, e.g. `transport.proxyURL` or `HTTPS_PROXY`. Default `proxy URL`. */
  source?: string
}

/** The proxy schemes {@link ConnectProxyAgent} speaks. */
export const PROXY_SCHEMES: readonly string[] = ['http:', 'https:', 'socks5:', 'socks5h:']

/** The longest CONNECT answer header we read before giving up (a real one is a few hundred bytes). */
const MAX_HEADER = 16 * 1024
/** Round 0 plus two challenges: enough for NTLM (negotiate, then authenticate). */
const MAX_AUTH_ROUNDS = 3

type ConnectCallback = (err: Error | null, stream: Duplex) => void

/**
 * Parses and checks a proxy URL. Throws a one-line TypeError naming `source` and the URL without
 * its password.
 */
export function parseProxyUrl(value: string, source = 'proxy URL'): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    // Never echo the value: it may hold a password.
    throw new TypeError(`${source} is not a URL (expected http://[user:password@]host:port or socks5://…)`)
  }
  if (!PROXY_SCHEMES.includes(url.protocol)) {
    throw new TypeError(`${source}: unsupported proxy scheme ${url.protocol} in ${proxyLabel(url)} (use http://, https://, socks5:// or socks5h://)`)
  }
  if (url.hostname === '') throw new TypeError(`${source}: the proxy URL ${proxyLabel(url)} has no host`)
  if (url.pathname !== '' && url.pathname !== '/') throw new TypeError(`${source}: the proxy URL ${proxyLabel(url)} must not have a path`)
  if (url.protocol.startsWith('socks')) {
    // RFC 1929 carries each in one length byte.
    if (Buffer.byteLength(decodeURIComponent(url.username)) > 255 || Buffer.byteLength(decodeURIComponent(url.password)) > 255) {
      throw new TypeError(`${source}: SOCKS5 user name and password must be at most 255 bytes each`)
    }
  }
  return url
}

/** The proxy as shown in messages: scheme, user name (never the password), host and port. */
export function proxyLabel(url: URL): string {
  const user = url.username !== '' ? `${url.username}@` : ''
  return `${url.protocol}//${user}${url.host}`
}

/** The default {@link ProxyAuthHook}: Basic with the URL's credentials up front, nothing after a 407. */
export function basicProxyAuth(challenge: ProxyAuthChallenge): Record<string, string> | undefined {
  const { proxyUrl, round } = challenge
  if (round > 0 || (proxyUrl.username === '' && proxyUrl.password === '')) return undefined
  const cred = `${decodeURIComponent(proxyUrl.username)}:${decodeURIComponent(proxyUrl.password)}`
  return { 'Proxy-Authorization': `Basic ${Buffer.from(cred, 'utf8').toString('base64')}` }
}

/**
 * Tunnels each connection through the proxy, then (for wss) starts TLS to the server inside the
 * tunnel with the request's TLS options (ca, servername, rejectUnauthorized).
 */
export class ConnectProxyAgent extends http.Agent {
  private readonly proxy: URL
  private readonly secureTarget: boolean
  private readonly timeoutMs: number
  private readonly auth: ProxyAuthHook
  private readonly shown: string

  constructor(opts: ConnectProxyAgentOptions) {
    super({ keepAlive: false })
    this.proxy = parseProxyUrl(opts.proxyUrl, opts.source)
    this.shown = proxyLabel(this.proxy)
    this.secureTarget = opts.secureTarget
    this.timeoutMs = opts.timeoutMs ?? 10_000
    this.auth = opts.auth ?? basicProxyAuth
    // ClientRequest refuses an agent whose protocol differs from the request's: https.request (wss)
    // needs "https:" although the agent is an http.Agent underneath.
    ;(this as unknown as { protocol: string }).protocol = opts.secureTarget ? 'https:' : 'http:'
    ;(this as unknown as { defaultPort: number }).defaultPort = opts.secureTarget ? 443 : 80
  }

  /** The proxy without its password, for logs. */
  get label(): string {
    return this.shown
  }

  override createConnection(options: http.ClientRequestArgs, callback?: ConnectCallback): Duplex | null | undefined {
    const cb: ConnectCallback = callback ?? (() => {})
    const targetHost = String(options.host ?? options.hostname ?? 'localhost').replace(/^\[(.*)\]$/, '$1')
    const targetPort = Number(options.port ?? (this.secureTarget ? 443 : 80))
    this.tunnel(targetHost, targetPort).then(
      (socket) => {
        if (!this.secureTarget) {
          cb(null, socket)
          // The request attaches its 'data' listener in a tick queued by cb(); only then resume.
          process.nextTick(() => socket.resume())
          return
        }
        const t = options as tls.ConnectionOptions & http.ClientRequestArgs
        // `host` is the name the certificate is checked against when no servername is set: without
        // it tls.connect checks "localhost", so wss://127.0.0.1 through a proxy would be checked
        // against the wrong name.
        const tlsOpts: tls.ConnectionOptions = { socket, host: targetHost }
        // ws does the same without a proxy: SNI is the host name, never an IP address.
        const servername = t.servername || (net.isIP(targetHost) ? undefined : targetHost)
        if (servername !== undefined) tlsOpts.servername = servername
        // Only what was set: tls.connect treats an explicit undefined (e.g. checkServerIdentity)
        // differently from a missing key.
        if (t.ca !== undefined) tlsOpts.ca = t.ca
        if (t.cert !== undefined) tlsOpts.cert = t.cert
        if (t.key !== undefined) tlsOpts.key = t.key
        if (t.rejectUnauthorized !== undefined) tlsOpts.rejectUnauthorized = t.rejectUnauthorized
        if (t.checkServerIdentity !== undefined) tlsOpts.checkServerIdentity = t.checkServerIdentity
        let secure: tls.TLSSocket
        try {
          secure = tls.connect(tlsOpts)
        } catch (err) {
          socket.destroy()
          cb(err instanceof Error ? err : new Error(String(err)), undefined as unknown as Duplex)
          return
        }
        cb(null, secure)
      },
      (err: Error) => cb(err, undefined as unknown as Duplex),
    )
    return undefined
  }

  /** Connects to the proxy and asks it for a tunnel; resolves with the raw tunnel socket. */
  private async tunnel(host: string, port: number): Promise<net.Socket> {
    const authority = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`
    const deadline = Date.now() + this.timeoutMs
    const socks = this.proxy.protocol === 'socks5:' || this.proxy.protocol === 'socks5h:'
    let reader = this.open(authority, deadline)
    try {
      if (socks) await this.socksConnect(reader, host, port, authority)
      else reader = await this.httpConnect(reader, authority, deadline)
    } catch (err) {
      reader.destroy()
      throw err
    }
    return reader.release()
  }

  /** A new connection to the proxy, read through a {@link Reader}. */
  private open(authority: string, deadline: number): Reader {
    const proxy = this.proxy
    const proxyHost = proxy.hostname.replace(/^\[(.*)\]$/, '$1')
    const defaultPort = proxy.protocol === 'https:' ? 443 : proxy.protocol === 'http:' ? 80 : 1080
    const proxyPort = Number(proxy.port || defaultPort)
    const socket: net.Socket =
      proxy.protocol === 'https:'
        ? tls.connect({ host: proxyHost, port: proxyPort, servername: net.isIP(proxyHost) ? undefined : proxyHost })
        : net.connect({ host: proxyHost, port: proxyPort })
    return new Reader(socket, this.shown, authority, deadline, this.timeoutMs, proxy.protocol === 'https:' ? 'secureConnect' : 'connect')
  }

  /** HTTP CONNECT, with as many authentication rounds as the hook asks for. */
  private async httpConnect(first: Reader, authority: string, deadline: number): Promise<Reader> {
    let reader = first
    try {
      return await this.httpRounds(() => reader, (r) => (reader = r), authority, deadline)
    } catch (err) {
      reader.destroy()
      throw err
    }
  }

  private async httpRounds(current: () => Reader, replace: (r: Reader) => void, authority: string, deadline: number): Promise<Reader> {
    let proxyAuthenticate: string[] = []
    let sentCredentials = false
    let reason = 'Proxy Authentication Required'
    for (let round = 0; ; round++) {
      const reader = current()
      const extra = await this.auth({ round, proxyAuthenticate, proxyUrl: this.proxy, target: authority })
      if (round > 0 && extra === undefined) throw this.refused(authority, 407, reason, sentCredentials)
      if (extra !== undefined) sentCredentials = true
      const lines = [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`]
      for (const [k, v] of Object.entries(extra ?? {})) {
        // A header value with a line break would let a hook (or a URL) inject more headers.
        if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) throw new TypeError(`proxy ${this.shown}: the header ${JSON.stringify(k)} from the auth hook contains a line break`)
        lines.push(`${k}: ${v}`)
      }
      if (extra !== undefined) lines.push('Proxy-Connection: Keep-Alive')
      reader.write(`${lines.join('\r\n')}\r\n\r\n`)
      const head = parseHead(await reader.readHead(), this.shown)
      const { status, headers, version } = head
      if (status >= 200 && status <= 299) return reader
      if (status !== 407 || round + 1 >= MAX_AUTH_ROUNDS) throw this.refused(authority, status, head.reason, sentCredentials)
      reason = head.reason
      proxyAuthenticate = headers.get('proxy-authenticate') ?? []
      // The next round goes on the same connection when the proxy keeps it (NTLM needs that) and we
      // can tell where the error page ends; otherwise on a new connection.
      const conn = [...(headers.get('connection') ?? []), ...(headers.get('proxy-connection') ?? [])].join(',').toLowerCase()
      const keep = version === '1.1' ? !conn.includes('close') : conn.includes('keep-alive')
      const length = headers.get('content-length')?.[0]
      if (keep && length !== undefined && /^\d+$/.test(length) && !headers.has('transfer-encoding')) {
        await reader.skip(Number(length))
      } else {
        reader.destroy()
        replace(this.open(authority, deadline))
      }
    }
  }

  private refused(authority: string, status: number, reason: string, sentCredentials: boolean): Error {
    let hint = ''
    if (status === 407) {
      const user = decodeURIComponent(this.proxy.username)
      if (!sentCredentials) hint = ' (no proxy credentials: put them in the proxy URL, http://user:password@host:port)'
      else if (user !== '') hint = ` (the proxy refused the credentials of user ${JSON.stringify(user)})`
      else hint = ' (the proxy refused the credentials)'
    }
    return new Error(`proxy ${this.shown} refused CONNECT ${authority}: ${status}${reason !== '' ? ` ${reason}` : ''}${hint}`)
  }

  /** SOCKS5 greeting, optional username/password, CONNECT (RFC 1928 §3–§6, RFC 1929). */
  private async socksConnect(reader: Reader, host: string, port: number, authority: string): Promise<void> {
    const user = Buffer.from(decodeURIComponent(this.proxy.username), 'utf8')
    const pass = Buffer.from(decodeURIComponent(this.proxy.password), 'utf8')
    const withAuth = user.length > 0 || pass.length > 0
    // Offer "no authentication" only when we have no credentials: a proxy that accepts both would
    // otherwise never see (or check) them.
    reader.write(withAuth ? Buffer.from([5, 1, 2]) : Buffer.from([5, 1, 0]))
    const choice = await reader.take(2)
    if (choice[0] !== 5) throw new Error(`proxy ${this.shown} does not speak SOCKS5 (first answer byte ${choice[0]})`)
    if (choice[1] === 0xff) {
      throw new Error(`proxy ${this.shown} accepts none of our SOCKS5 authentication methods (${withAuth ? 'username/password' : 'none: it wants credentials, socks5://user:password@host:port'})`)
    }
    if (choice[1] === 2) {
      if (!withAuth) throw new Error(`proxy ${this.shown} asked for a SOCKS5 username/password that we did not offer`)
      reader.write(Buffer.concat([Buffer.from([1, user.length]), user, Buffer.from([pass.length]), pass]))
      const res = await reader.take(2)
      if (res[1] !== 0) throw new Error(`proxy ${this.shown} refused the SOCKS5 credentials of user ${JSON.stringify(user.toString('utf8'))}`)
    } else if (choice[1] !== 0) {
      throw new Error(`proxy ${this.shown} chose SOCKS5 authentication method ${choice[1]}, which we did not offer`)
    }
    let addr: Buffer
    let target = host
    if (this.proxy.protocol === 'socks5:' && net.isIP(host) === 0) {
      // socks5:// resolves here (curl's convention); socks5h:// leaves the name to the proxy.
      try {
        target = (await dns.promises.lookup(host)).address
      } catch (err) {
        throw new Error(`cannot resolve ${host} for SOCKS5 proxy ${this.shown}: ${(err as Error).message} (socks5h:// lets the proxy resolve it)`)
      }
    }
    if (net.isIPv4(target)) addr = Buffer.from([1, ...target.split('.').map(Number)])
    else if (net.isIPv6(target)) addr = Buffer.concat([Buffer.from([4]), ipv6Bytes(target)])
    else {
      const name = Buffer.from(target, 'utf8')
      if (name.length > 255) throw new Error(`proxy ${this.shown}: host name ${target} is too long for SOCKS5`)
      addr = Buffer.concat([Buffer.from([3, name.length]), name])
    }
    const portBytes = Buffer.from([port >> 8, port & 0xff])
    reader.write(Buffer.concat([Buffer.from([5, 1, 0]), addr, portBytes]))
    const head = await reader.take(4)
    if (head[1] !== 0) {
      throw new Error(`proxy ${this.shown} refused SOCKS5 CONNECT ${authority}: ${SOCKS_REPLIES[head[1]!] ?? `reply code ${head[1]}`}`)
    }
    // The bound address the proxy reports: read it only to find where the server's bytes start.
    const atyp = head[3]
    const len = atyp === 1 ? 4 : atyp === 4 ? 16 : atyp === 3 ? (await reader.take(1))[0]! : -1
    if (len < 0) throw new Error(`proxy ${this.shown} sent a malformed SOCKS5 reply (address type ${atyp})`)
    await reader.take(len + 2)
  }
}

/** RFC 1928 §6 reply field. */
const SOCKS_REPLIES: Record<number, string> = {
  1: 'general SOCKS server failure',
  2: 'connection not allowed by ruleset',
  3: 'network unreachable',
  4: 'host unreachable',
  5: 'connection refused',
  6: 'TTL expired',
  7: 'command not supported',
  8: 'address type not supported',
}

function ipv6Bytes(ip: string): Buffer {
  // Node has no public IPv6-to-bytes helper: expand "::" and an embedded IPv4 tail by hand.
  const [headPart = '', tailPart] = ip.split('::')
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').flatMap((g) => (g.includes('.') ? ipv4Words(g) : [parseInt(g, 16)])))
  const head = parse(headPart)
  const tail = tailPart === undefined ? [] : parse(tailPart)
  const words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail]
  const out = Buffer.alloc(16)
  words.forEach((w, i) => out.writeUInt16BE(w, i * 2))
  return out
}

function ipv4Words(s: string): number[] {
  const b = s.split('.').map(Number)
  return [(b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!]
}

interface Head {
  version: string
  status: number
  reason: string
  /** Lower-case names; every value of repeated headers. */
  headers: Map<string, string[]>
}

function parseHead(head: string, shown: string): Head {
  const lines = head.split('\r\n')
  const statusLine = lines[0] ?? ''
  const m = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(statusLine)
  if (m === null) throw new Error(`proxy ${shown} sent a malformed CONNECT answer ${JSON.stringify(statusLine.slice(0, 80))} (is it an HTTP proxy?)`)
  const headers = new Map<string, string[]>()
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':')
    if (i <= 0) continue
    const name = line.slice(0, i).trim().toLowerCase()
    const list = headers.get(name) ?? []
    list.push(line.slice(i + 1).trim())
    headers.set(name, list)
  }
  return { version: `1.${m[1]}`, status: Number(m[2]), reason: m[3] ?? '', headers }
}

/**
 * Reads a proxy connection's answers without losing a byte: what arrives after the last answer
 * belongs to the server and goes back into the socket on {@link release}.
 */
class Reader {
  private buf: Buffer = Buffer.alloc(0)
  private failure: Error | undefined
  private wake: (() => void) | undefined
  private connected = false
  private readonly timer: ReturnType<typeof setTimeout>

  constructor(
    private readonly socket: net.Socket,
    private readonly shown: string,
    private readonly authority: string,
    deadline: number,
    timeoutMs: number,
    connectEvent: 'connect' | 'secureConnect',
  ) {
    socket.once(connectEvent, () => (this.connected = true))
    socket.on('data', this.onData)
    socket.on('error', this.onError)
    socket.on('close', this.onClose)
    // One deadline for every connection of a dial (a 407 may need a new one).
    const left = Math.max(0, deadline - Date.now())
    this.timer = setTimeout(() => this.fail(new Error(`proxy ${shown}: no tunnel to ${authority} within ${timeoutMs} ms`)), left)
  }

  private readonly onData = (chunk: Buffer): void => {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    this.wake?.()
  }

  private readonly onError = (err: Error): void => {
    const code = (err as NodeJS.ErrnoException).code
    const what = code !== undefined && !err.message.includes(code) ? `${err.message} (${code})` : err.message
    this.fail(new Error(this.connected ? `proxy ${this.shown}: ${what}` : `proxy ${this.shown} is unreachable: ${what}`))
  }

  private readonly onClose = (): void => {
    this.fail(new Error(`proxy ${this.shown} closed the connection before the tunnel to ${this.authority} was open`))
  }

  private fail(err: Error): void {
    this.failure ??= err
    this.socket.destroy()
    this.wake?.()
  }

  write(data: string | Buffer): void {
    if (this.failure === undefined) this.socket.write(data)
  }

  /** Waits until `need(buf)` says how many buffered bytes make the next answer, and takes them. */
  private async until(need: (buf: Buffer) => number): Promise<Buffer> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure
      const n = need(this.buf)
      if (n >= 0 && n <= this.buf.length) {
        const out = this.buf.subarray(0, n)
        this.buf = this.buf.subarray(n)
        return out
      }
      await new Promise<void>((resolve) => (this.wake = resolve))
      this.wake = undefined
    }
  }

  take(n: number): Promise<Buffer> {
    return this.until(() => n)
  }

  async skip(n: number): Promise<void> {
    await this.take(n)
  }

  /** An HTTP answer's status line and headers, without the blank line. */
  async readHead(): Promise<string> {
    const head = await this.until((buf) => {
      const end = buf.indexOf('\r\n\r\n')
      if (end >= 0) return end + 4
      if (buf.length > MAX_HEADER) this.fail(new Error(`proxy ${this.shown}: CONNECT answer header too long`))
      return -1
    })
    return head.subarray(0, head.length - 4).toString('latin1')
  }

  destroy(): void {
    clearTimeout(this.timer)
    this.detach()
    this.socket.destroy()
  }

  /** Hands the socket over, paused, with any bytes read past the last answer put back. */
  release(): net.Socket {
    clearTimeout(this.timer)
    this.detach()
    // Stop the flow that our 'data' listener started: bytes arriving before the HTTP or TLS layer
    // attaches its own listener would otherwise be dropped.
    this.socket.pause()
    if (this.buf.length > 0) this.socket.unshift(this.buf)
    return this.socket
  }

  private detach(): void {
    this.socket.off('data', this.onData)
    this.socket.off('error', this.onError)
    this.socket.off('close', this.onClose)
  }
}

// ---- the usual environment variables --------------------------------------------------------------

/** The proxy picked for a URL from the environment, and which variable it came from. */
export interface EnvProxy {
  url: string
  /** E.g. `HTTPS_PROXY`, `https_proxy`, `ALL_PROXY`. */
  source: string
}

/** Why a URL goes without a proxy although a proxy variable is set. */
export interface EnvBypass {
  /** The variable that would have applied. */
  source: string
  /** The NO_PROXY variable and the entry that matched. */
  noProxy: string
  entry: string
}

/**
 * The proxy for `target` (a ws:// or wss:// URL) from the usual variables: `https_proxy` /
 * `HTTPS_PROXY` for wss, `http_proxy` / `HTTP_PROXY` for ws, then `all_proxy` / `ALL_PROXY`
 * (lower case first, as curl; an empty value counts as unset). `no_proxy` / `NO_PROXY` lists hosts
 * that go direct, see {@link noProxyMatch}. Loopback is NOT bypassed implicitly.
 */
export function proxyFromEnv(target: string, env: Record<string, string | undefined>): { proxy: EnvProxy } | { bypass: EnvBypass } | undefined {
  const u = new URL(target)
  const secure = u.protocol === 'wss:' || u.protocol === 'https:'
  const names = secure ? ['https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'] : ['http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY']
  const source = names.find((n) => (env[n] ?? '') !== '')
  if (source === undefined) return undefined
  const noName = ['no_proxy', 'NO_PROXY'].find((n) => (env[n] ?? '') !== '')
  if (noName !== undefined) {
    const port = Number(u.port || (secure ? 443 : 80))
    const entry = noProxyMatch(u.hostname, port, env[noName]!)
    if (entry !== undefined) return { bypass: { source, noProxy: noName, entry } }
  }
  let url = env[source]!.trim()
  // curl and Go take "proxy:3128" to mean http://proxy:3128.
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url)) url = `http://${url}`
  return { proxy: { url, source } }
}

/**
 * The NO_PROXY entry that matches `host:port`, or undefined. Entries are separated by commas or
 * spaces, case-insensitive:
 * - `*` matches everything;
 * - `example.com` matches example.com and every subdomain; `.example.com` and `*.example.com` only
 *   subdomains;
 * - `host:port` (`[::1]:7000` for IPv6) matches only that port;
 * - an IP matches that address (any spelling of it), `10.0.0.0/8` or `fd00::/8` a range.
 */
export function noProxyMatch(host: string, port: number, noProxy: string): string | undefined {
  const h = stripDot(host.replace(/^\[(.*)\]$/, '$1').toLowerCase())
  const hostIp = net.isIP(h)
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim()
    if (entry === '') continue
    if (entry === '*') return entry
    let name = entry.toLowerCase()
    let entryPort: number | undefined
    const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(name)
    if (v6 !== null) {
      name = v6[1]!
      if (v6[2] !== undefined) entryPort = Number(v6[2])
    } else {
      const hp = /^([^:]+):(\d+)$/.exec(name)
      if (hp !== null) {
        name = hp[1]!
        entryPort = Number(hp[2])
      }
    }
    if (entryPort !== undefined && entryPort !== port) continue
    if (name.includes('/')) {
      if (hostIp !== 0 && cidrContains(name, h, hostIp)) return entry
      continue
    }
    const ipKind = net.isIP(name)
    if (ipKind !== 0) {
      if (hostIp === ipKind && sameIp(name, h, ipKind)) return entry
      continue
    }
    if (hostIp !== 0) continue
    name = stripDot(name.replace(/^\*/, ''))
    if (name.startsWith('.')) {
      if (h.endsWith(name)) return entry
    } else if (h === name || h.endsWith(`.${name}`)) {
      return entry
    }
  }
  return undefined
}

function stripDot(s: string): string {
  return s.length > 1 && s.endsWith('.') ? s.slice(0, -1) : s
}

function sameIp(a: string, b: string, family: number): boolean {
  const list = new net.BlockList()
  list.addAddress(a, family === 6 ? 'ipv6' : 'ipv4')
  return list.check(b, family === 6 ? 'ipv6' : 'ipv4')
}

function cidrContains(cidr: string, ip: string, family: number): boolean {
  const [base = '', bits = ''] = cidr.split('/')
  const kind = net.isIP(base)
  if (kind !== family || !/^\d+$/.test(bits)) return false
  const prefix = Number(bits)
  if (prefix > (kind === 6 ? 128 : 32)) return false
  const list = new net.BlockList()
  list.addSubnet(base, prefix, kind === 6 ? 'ipv6' : 'ipv4')
  return list.check(ip, kind === 6 ? 'ipv6' : 'ipv4')
}
