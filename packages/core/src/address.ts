/**
 * A peer address as people (and Go, and frp) write it: a dual-stack listener reports an IPv4 peer as
 * an IPv4-mapped IPv6 address (`::ffff:10.1.2.3`); this gives `10.1.2.3`. Anything else is returned
 * as it is. Pure string work, so it runs in every runtime.
 */
export function plainAddress(addr: string): string {
  return addr.length > 7 && /^::ffff:\d{1,3}(?:\.\d{1,3}){3}$/i.test(addr) ? addr.slice(7) : addr
}
