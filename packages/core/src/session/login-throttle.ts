/**
 * Rate limit on failed logins, per remote address: a token bucket that a failed login empties by
 * one. While an address has no token left, its logins are refused without their token being
 * checked, so that guessing tokens from one address is slow however fast the attempts come.
 */

/** Options of {@link LoginThrottle}. */
import { plainAddress } from '../address.js'
export interface LoginThrottleOptions {
  /** Failed logins one address may have in a burst (the bucket size). 0 turns the throttle off. Default 5. */
  maxFailures?: number
  /** Time in which a fully used bucket fills up again, in ms (the refill rate is maxFailures per window). Default 60,000. */
  windowMs?: number
  /**
   * Most addresses remembered at once. Beyond it the least recently failed ones are forgotten
   * (an attacker with more addresses than this gains nothing a fresh address would not give).
   * Default 10,000.
   */
  maxAddresses?: number
  /** Clock, for tests. Default `Date.now`. */
  now?: () => number
}

/** frp-style wording of the refusal sent in LoginResp.error while an address is throttled. */
export const TOO_MANY_FAILED_LOGINS = 'too many failed logins, retry later'

interface Bucket {
  tokens: number
  at: number
}

/**
 * The part of a remote address that identifies the peer: the IP without the port, and for IPv6
 * only its /64 prefix (one host usually owns a whole /64 and could otherwise rotate addresses).
 * Accepts a bare IP, `a.b.c.d:port` and `[v6]:port`. (A bare `v6:port`, as the server's logs
 * write it, is ambiguous; pass the IP alone.)
 */
export function throttleKey(remoteAddress: string): string {
  let ip = remoteAddress
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(ip)
  if (bracket !== null) ip = bracket[1]!
  else if (/^\d{1,3}(\.\d{1,3}){3}:\d+$/.test(ip)) ip = ip.slice(0, ip.lastIndexOf(':'))
  ip = plainAddress(ip)
  if (!ip.includes(':')) return ip
  const full = expandV6(ip)
  return full === undefined ? ip : `${full.slice(0, 4).join(':')}::/64`
}

/** Eight 16-bit groups of an IPv6 address (zone dropped), or undefined when it is not one. */
function expandV6(addr: string): string[] | undefined {
  const a = addr.split('%')[0]!.toLowerCase()
  const halves = a.split('::')
  if (halves.length > 2) return undefined
  const part = (s: string): string[] => (s === '' ? [] : s.split(':'))
  const head = part(halves[0]!)
  const tail = halves.length === 2 ? part(halves[1]!) : []
  // An embedded IPv4 tail (::ffff:1.2.3.4) counts as two groups.
  const last = (tail.length > 0 ? tail : head).at(-1)
  if (last !== undefined && last.includes('.')) {
    const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(last)
    if (m === null) return undefined
    const b = m.slice(1).map(Number)
    const v4 = [((b[0]! << 8) | b[1]!).toString(16), ((b[2]! << 8) | b[3]!).toString(16)]
    if (tail.length > 0) tail.splice(-1, 1, ...v4)
    else head.splice(-1, 1, ...v4)
  }
  const missing = 8 - head.length - tail.length
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined
  const groups = [...head, ...new Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail]
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined
  return groups.map((g) => g.replace(/^0+(?=.)/, ''))
}

/**
 * Token buckets of failed logins by address ({@link throttleKey}). Memory is bounded by
 * `maxAddresses` entries of a few dozen bytes; a bucket that has filled up again is dropped.
 */
export class LoginThrottle {
  private readonly max: number
  private readonly windowMs: number
  private readonly maxAddresses: number
  private readonly now: () => number
  private readonly buckets = new Map<string, Bucket>()

  constructor(opts: LoginThrottleOptions = {}) {
    this.max = opts.maxFailures ?? 5
    this.windowMs = opts.windowMs ?? 60_000
    this.maxAddresses = opts.maxAddresses ?? 10_000
    this.now = opts.now ?? Date.now
    if (!Number.isInteger(this.max) || this.max < 0) throw new RangeError(`maxFailures must be an integer >= 0, got ${this.max}`)
    if (!(this.windowMs > 0)) throw new RangeError(`windowMs must be > 0, got ${this.windowMs}`)
    if (!Number.isInteger(this.maxAddresses) || this.maxAddresses < 1) throw new RangeError(`maxAddresses must be an integer >= 1, got ${this.maxAddresses}`)
  }

  /** Addresses with failures not yet forgiven. */
  get size(): number {
    return this.buckets.size
  }

  /** True while `remoteAddress` has used up its failures: refuse its login without checking the token. */
  blocked(remoteAddress: string): boolean {
    if (this.max === 0) return false
    const b = this.refill(throttleKey(remoteAddress))
    return b !== undefined && b.tokens < 1
  }

  /**
   * Milliseconds until `remoteAddress` may try again (0 when it is not blocked): what an HTTP 429
   * puts in Retry-After, so that a well-behaved client waits instead of hammering.
   */
  retryAfterMs(remoteAddress: string): number {
    if (this.max === 0) return 0
    const b = this.refill(throttleKey(remoteAddress))
    if (b === undefined || b.tokens >= 1) return 0
    return Math.ceil(((1 - b.tokens) * this.windowMs) / this.max)
  }

  /** Records one failed login of `remoteAddress`. */
  failed(remoteAddress: string): void {
    if (this.max === 0) return
    const key = throttleKey(remoteAddress)
    const b = this.refill(key) ?? { tokens: this.max, at: this.now() }
    b.tokens = Math.max(0, b.tokens - 1)
    // Re-inserted so that the Map's order is "least recently failed first" for eviction.
    this.buckets.delete(key)
    this.buckets.set(key, b)
    while (this.buckets.size > this.maxAddresses) {
      const oldest = this.buckets.keys().next().value as string
      this.buckets.delete(oldest)
    }
  }

  /** The bucket of `key` brought up to now, or undefined when it is full (and forgotten). */
  private refill(key: string): Bucket | undefined {
    const b = this.buckets.get(key)
    if (b === undefined) return undefined
    const t = this.now()
    b.tokens = Math.min(this.max, b.tokens + ((t - b.at) * this.max) / this.windowMs)
    b.at = t
    if (b.tokens >= this.max) {
      this.buckets.delete(key)
      return undefined
    }
    return b
  }
}
