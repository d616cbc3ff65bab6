import { isIP } from 'node:net'
import { plainAddress } from '@wsfrp/core'

/**
 * True for 127.0.0.0/8, ::1 and IPv4-mapped loopback, in brackets or not. `0.0.0.0` and `::` (every
 * interface) are not loopback. Used to decide what may be served without a password (the
 * dashboard of wsfrps, the admin API of wsfrpc).
 */
export function isLoopbackAddress(addr: string): boolean {
  const a = plainAddress(addr.startsWith('[') && addr.endsWith(']') ? addr.slice(1, -1) : addr)
  const v = isIP(a)
  if (v === 4) return a.startsWith('127.')
  if (v !== 6) return false
  try {
    // The URL parser writes IPv6 in its canonical short form: every spelling of ::1 becomes [::1].
    const h = new URL(`http://[${a}]/`).hostname
    return h === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(h) // ::1, or 127.x.y.z mapped
  } catch {
    return false // e.g. a zone id (fe80::1%eth0): not loopback anyway
  }
}
