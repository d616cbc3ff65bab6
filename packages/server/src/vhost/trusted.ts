import * as net from 'node:net'
import { WsfrpError } from '@wsfrp/core'

/**
 * Peers whose `X-Forwarded-*`, `X-Real-IP` and `Forwarded` headers are believed: loopback only, so
 * that a TLS-terminating proxy on the same machine (nginx, Caddy) works out of the box while nobody
 * on the network can spoof a client address. Everything else gets those headers replaced.
 */
export const DEFAULT_TRUSTED_PROXIES: readonly string[] = ['127.0.0.0/8', '::1']

/** Strips the IPv4-mapped IPv6 prefix (`::ffff:1.2.3.4` → `1.2.3.4`) and an IPv6 zone (`%eth0`). */
export function normalizeIp(addr: string | undefined): string {
  if (addr === undefined) return ''
  let a = addr.trim()
  const zone = a.indexOf('%')
  if (zone >= 0) a = a.slice(0, zone)
  if (a.length > 7 && a.slice(0, 7).toLowerCase() === '::ffff:' && net.isIPv4(a.slice(7))) return a.slice(7)
  return a
}

/** A set of IP addresses and CIDR ranges (IPv4 and IPv6). */
export class TrustedProxies {
  private readonly list = new net.BlockList()
  private readonly empty: boolean

  /**
   * @param entries IPs (`10.0.0.5`, `::1`) or CIDRs (`10.0.0.0/8`, `fd00::/8`). An invalid entry
   *   throws `WsfrpError('ERR_CONFIG')` naming it.
   */
  constructor(entries: readonly string[]) {
    this.empty = entries.length === 0
    for (const raw of entries) {
      const entry = raw.trim()
      const slash = entry.indexOf('/')
      const ip = normalizeIp(slash < 0 ? entry : entry.slice(0, slash))
      const family = net.isIP(ip)
      if (family === 0) throw new WsfrpError('ERR_CONFIG', `trusted proxy "${raw}" is not an IP address or CIDR range`)
      const type = family === 4 ? 'ipv4' : 'ipv6'
      if (slash < 0) {
        this.list.addAddress(ip, type)
        continue
      }
      const bitsText = entry.slice(slash + 1)
      const bits = /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN
      if (!(bits >= 0 && bits <= (family === 4 ? 32 : 128))) {
        throw new WsfrpError('ERR_CONFIG', `trusted proxy "${raw}": prefix length must be 0..${family === 4 ? 32 : 128}`)
      }
      this.list.addSubnet(ip, bits, type)
    }
  }

  /** True when `addr` (a socket's remoteAddress or a header value) is in the set. */
  has(addr: string | undefined): boolean {
    if (this.empty) return false
    const ip = normalizeIp(addr)
    const family = net.isIP(ip)
    if (family === 0) return false
    return this.list.check(ip, family === 4 ? 'ipv4' : 'ipv6')
  }
}
