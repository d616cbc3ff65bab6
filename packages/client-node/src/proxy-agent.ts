/**
 * An `http.Agent` that reaches the WebSocket server through an HTTP proxy with `CONNECT`
 * (`transport.proxyURL`, frp's `http_proxy`), without a dependency: ws hands every request's
 * connection to `agent.createConnection`, which may answer through its callback later.
 */
import * as http from 'node:http'
import * as net from 'node:net'
import * as tls from 'node:tls'
import type { Duplex } from 'node:stream'
import { redactUrl } from './url.js'

/** Options of {@link ConnectProxyAgent}. */
export interface ConnectProxyAgentOptions {
  /** `http://[user:password@]host[:port]` or `https://…` (TLS to the proxy itself). */
  proxyUrl: string
  /** True when the tunnelled connection carries TLS to the server (wss). */
  secureTarget: boolean
  /** Give up on the proxy (TCP connect and CONNECT answer) after this many ms. Default 10,000. */
  timeoutMs?: number
}

/** The longest CONNECT answer header we read before giving up (a real one is a few hundred bytes). */
const MAX_HEADER = 16 * 1024

type ConnectCallback = (err: Error | null, stream: Duplex) => void

/**
 * Tunnels each connection through `CONNECT host:port`, then (for wss) starts TLS to the server
 * inside the tunnel with the request's TLS options (ca, servername, rejectUnauthorized).
 */
export class ConnectProxyAgent extends http.Agent {
  private readonly proxy: URL
  private readonly secureTarget: boolean
  private readonly timeoutMs: number

  constructor(opts: ConnectProxyAgentOptions) {
    super({ keepAlive: false })
    this.proxy = new URL(opts.proxyUrl)
    if (this.proxy.protocol !== 'http:' && this.proxy.protocol !== 'https:') {
      throw new TypeError(`unsupported proxy scheme ${this.proxy.protocol} (http:// or https:// only)`)
    }
    this.secureTarget = opts.secureTarget
    this.timeoutMs = opts.timeoutMs ?? 10_000
    // ClientRequest refuses an agent whose protocol differs from the request's: https.request (wss)
    // needs "https:" although the agent is an http.Agent underneath.
    ;(this as unknown as { protocol: string }).protocol = opts.secureTarget ? 'https:' : 'http:'
    ;(this as unknown as { defaultPort: number }).defaultPort = opts.secureTarget ? 443 : 80
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
        const tlsOpts: tls.ConnectionOptions = { socket }
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
  private tunnel(host: string, port: number): Promise<net.Socket> {
    const proxy = this.proxy
    const proxyHost = proxy.hostname.replace(/^\[(.*)\]$/, '$1')
    const proxyPort = Number(proxy.port || (proxy.protocol === 'https:' ? 443 : 80))
    const shown = redactUrl(proxy.href)
    const authority = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`
    return new Promise<net.Socket>((resolve, reject) => {
      const socket: net.Socket =
        proxy.protocol === 'https:'
          ? tls.connect({ host: proxyHost, port: proxyPort, servername: net.isIP(proxyHost) ? undefined : proxyHost })
          : net.connect({ host: proxyHost, port: proxyPort })
      let buf = Buffer.alloc(0)
      const fail = (why: string): void => {
        cleanup()
        socket.destroy()
        reject(new Error(`proxy ${shown}: ${why}`))
      }
      const timer = setTimeout(() => fail(`no tunnel to ${authority} within ${this.timeoutMs} ms`), this.timeoutMs)
      const onError = (err: Error): void => fail(err.message)
      const onClose = (): void => fail(`closed the connection before answering CONNECT ${authority}`)
      const onData = (chunk: Buffer): void => {
        buf = Buffer.concat([buf, chunk])
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) {
          if (buf.length > MAX_HEADER) fail('CONNECT answer header too long')
          return
        }
        const statusLine = buf.subarray(0, buf.indexOf('\r\n')).toString('latin1')
        const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine)
        if (m === null) {
          fail(`malformed CONNECT answer ${JSON.stringify(statusLine.slice(0, 80))}`)
          return
        }
        const status = Number(m[1])
        if (status < 200 || status > 299) {
          fail(`CONNECT ${authority} refused: ${status}${m[2] ? ` ${m[2]}` : ''}`)
          return
        }
        cleanup()
        // Stop the flow that our 'data' listener started: bytes arriving before the HTTP or TLS
        // layer attaches its own listener would otherwise be dropped. Bytes after the header
        // already belong to the server, so they go back into the socket.
        socket.pause()
        const rest = buf.subarray(end + 4)
        if (rest.length > 0) socket.unshift(rest)
        resolve(socket)
      }
      function cleanup(): void {
        clearTimeout(timer)
        socket.off('data', onData)
        socket.off('error', onError)
        socket.off('close', onClose)
      }
      socket.on('data', onData)
      socket.on('error', onError)
      socket.on('close', onClose)
      const lines = [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`]
      if (proxy.username !== '' || proxy.password !== '') {
        const cred = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`
        lines.push(`Proxy-Authorization: Basic ${Buffer.from(cred, 'utf8').toString('base64')}`)
      }
      socket.write(`${lines.join('\r\n')}\r\n\r\n`)
    })
  }
}
