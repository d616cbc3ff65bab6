import * as net from 'node:net'
import { WsfrpError, plainAddress } from '@wsfrp/core'

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
  return plainAddress(a)
}

/** Addresses whose answer {@link TrustedProxies.has} remembers. */
const TRUSTED_CACHE_ENTRIES = 1024

/** A set of IP addresses and CIDR ranges (IPv4 and IPv6). */
export class TrustedProxies {
  private readonly list = new net.BlockList()
  private readonly empty: boolean
  /**
   * Answers by address string: BlockList.check() builds a SocketAddress and runs an IPv6 pattern on
   * every call (~2 % of the server's CPU under a request benchmark), while the same few peers ask
   * again and again. Cleared when full, so it stays small whatever the traffic.
   */
  private readonly seen = new Map<string, boolean>()

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
    if (this.empty || addr === undefined) return false
    const known = this.seen.get(addr)
    if (known !== undefined) return known
    const ip = normalizeIp(addr)
    const family = net.isIP(ip)
    const yes = family !== 0 && this.list.check(ip, family === 4 ? 'ipv4' : 'ipv6')
    if (this.seen.size >= TRUSTED_CACHE_ENTRIES) this.seen.clear()
    this.seen.set(addr, yes)
    return yes
  }
}
