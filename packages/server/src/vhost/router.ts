import { WsfrpError, constantTimeEqual } from '@wsfrp/core'

/**
 * The routing table of HTTP virtual hosts, with frps' rules (frp-wire-protocol.md §10.3):
 *
 * - keys are (domain, location, HTTP user); domains are lower-cased, an empty location is `/`;
 * - a request's host is lower-cased and its port stripped; candidates are the exact host, then the
 *   wildcard walk `a.b.example.com` → `*.b.example.com` → `*.example.com` (never a two-label `*.com`),
 *   then the catch-all domain `"*"`;
 * - per candidate host, routes registered for the request's Basic-auth user (`route_by_http_user`)
 *   come first, then routes without a user;
 * - locations are string prefixes of the path, longest first;
 * - reserved paths (the server's own WebSocket and dashboard paths) never match any route.
 *
 * A (domain, location, user) key holds one proxy, or a group of proxies that share `group` and
 * `group_key` (frp load-balancing groups), served round-robin.
 */

/** Where a route sits. Normalised by {@link normalizeRouteKey}. */
export interface RouteKey {
  /** Lower-case host name, `*.`-wildcard (`*.example.com`) or the catch-all `"*"`. */
  domain: string
  /** Path prefix starting with `/`. `""` is normalised to `/`. */
  location: string
  /** frp `route_by_http_user`; `""` = any user. */
  httpUser: string
}

/** frp load-balancing group membership. */
export interface RouteGroup {
  /** frp `group`. */
  name: string
  /** frp `group_key`: every member of a group must present the same one. */
  key: string
}

/** The result of {@link VhostRouter.match}. */
export interface RouteMatch<T> {
  value: T
  /** The key that matched (its domain may be a wildcard). */
  key: RouteKey
}

export interface VhostRouterOptions {
  /**
   * Paths that belong to the server itself (WebSocket endpoints, dashboard prefix). A request for
   * such a path never matches a route, and a location for which it is true cannot be registered.
   * Default: nothing is reserved.
   */
  reserved?: (path: string) => boolean
}

interface Slot<T> {
  location: string
  group: RouteGroup | undefined
  members: T[]
  /** Round-robin cursor over `members`. */
  next: number
}

/** Domains are at most 253 characters (RFC 1035); a label at most 63. */
const MAX_DOMAIN_LENGTH = 253
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/

/**
 * Normalises and checks a route key: domain lower-cased (a trailing dot dropped), `""` location → `/`.
 * Throws `WsfrpError('ERR_PROXY')` with a message meant for the client (it travels in NewProxyResp).
 */
export function normalizeRouteKey(key: { domain: string; location?: string; httpUser?: string }): RouteKey {
  const domain = normalizeDomain(key.domain)
  const location = key.location === undefined || key.location === '' ? '/' : key.location
  if (!location.startsWith('/')) throw new WsfrpError('ERR_PROXY', `location "${location}" must start with "/"`)
  if (/[\s\u0000-\u001f\u007f]/.test(location)) throw new WsfrpError('ERR_PROXY', `location ${JSON.stringify(location)} contains whitespace or control characters`)
  return { domain, location, httpUser: key.httpUser ?? '' }
}

function normalizeDomain(raw: string): string {
  let d = raw.trim().toLowerCase()
  if (d.endsWith('.') && d.length > 1) d = d.slice(0, -1)
  if (d === '*') return d
  if (d === '') throw new WsfrpError('ERR_PROXY', 'domain is empty')
  if (d.length > MAX_DOMAIN_LENGTH) throw new WsfrpError('ERR_PROXY', `domain "${raw}" is longer than ${MAX_DOMAIN_LENGTH} characters`)
  if (/^\[[0-9a-f:.]+\]$/.test(d)) return d // an IPv6 literal, as it appears in a Host header
  const labels = d.split('.')
  const wildcard = labels[0] === '*'
  if (wildcard && labels.length < 3) {
    // The lookup never tries a two-label wildcard (frp does the same), so such a route could never match.
    throw new WsfrpError('ERR_PROXY', `wildcard domain "${raw}" must have at least two labels after "*." (e.g. *.example.com)`)
  }
  for (const label of wildcard ? labels.slice(1) : labels) {
    if (!LABEL.test(label)) {
      throw new WsfrpError('ERR_PROXY', `domain "${raw}" is not a valid host name${label.includes('*') ? ' ("*" is only allowed as the whole first label)' : ''}`)
    }
  }
  return d
}

/** The host of a Host header (or absolute-URL authority): lower-cased, port and trailing dot removed. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase()
  if (h.startsWith('[')) {
    const end = h.indexOf(']')
    return end < 0 ? h : h.slice(0, end + 1)
  }
  const colon = h.indexOf(':')
  if (colon >= 0) h = h.slice(0, colon)
  if (h.endsWith('.')) h = h.slice(0, -1)
  return h
}

/** The domains tried for a host, in order: exact, wildcards from the most specific, then `"*"`. */
export function candidateDomains(host: string): string[] {
  const out = [host]
  if (!host.startsWith('[')) {
    const labels = host.split('.')
    // `*.` plus at least two labels: `*.com` is never tried.
    for (let i = 1; labels.length - i >= 2; i++) out.push('*.' + labels.slice(i).join('.'))
  }
  if (host !== '*') out.push('*')
  return out
}

function describe(key: RouteKey): string {
  return `domain ${key.domain} location ${key.location}${key.httpUser ? ` http user ${key.httpUser}` : ''}`
}

export class VhostRouter<T> {
  /** domain → http user → slots, longest location first. */
  private readonly table = new Map<string, Map<string, Slot<T>[]>>()
  private readonly reserved: (path: string) => boolean
  private count = 0

  constructor(opts?: VhostRouterOptions) {
    this.reserved = opts?.reserved ?? (() => false)
  }

  /** Number of (key, member) registrations. */
  get size(): number {
    return this.count
  }

  /**
   * Adds `value` under `key`. Throws `WsfrpError('ERR_PROXY')`:
   * `router config conflict: domain D location L is already in use` when the key is taken (unless
   * both are members of the same group), `group auth failed: …` when the group matches but the
   * group key does not, or a validation message for a bad domain/location or a reserved location.
   */
  add(rawKey: { domain: string; location?: string; httpUser?: string }, value: T, group?: RouteGroup): RouteKey {
    const key = normalizeRouteKey(rawKey)
    if (this.reserved(key.location)) {
      throw new WsfrpError('ERR_PROXY', `location ${key.location} is reserved by the server`)
    }
    let users = this.table.get(key.domain)
    const slots = users?.get(key.httpUser)
    const slot = slots?.find((s) => s.location === key.location)
    if (slot !== undefined) {
      const g = group !== undefined && group.name !== '' ? group : undefined
      if (g === undefined || slot.group === undefined || slot.group.name !== g.name) {
        throw new WsfrpError('ERR_PROXY', `router config conflict: ${describe(key)} is already in use`)
      }
      // A group key is a secret: compared in constant time, like tokens.
      if (!constantTimeEqual(slot.group.key, g.key)) {
        throw new WsfrpError('ERR_PROXY', `group auth failed: group ${g.name} (${describe(key)}) has a different group_key`)
      }
      if (slot.members.includes(value)) throw new WsfrpError('ERR_PROXY', `router config conflict: ${describe(key)} is already registered by this proxy`)
      slot.members.push(value)
      this.count++
      return key
    }
    if (users === undefined) {
      users = new Map()
      this.table.set(key.domain, users)
    }
    let list = slots
    if (list === undefined) {
      list = []
      users.set(key.httpUser, list)
    }
    list.push({ location: key.location, group: group !== undefined && group.name !== '' ? { ...group } : undefined, members: [value], next: 0 })
    // Longest first; among equal lengths the order does not matter (two equal-length locations
    // that differ cannot both be prefixes of one path).
    list.sort((a, b) => b.location.length - a.location.length || (a.location < b.location ? 1 : -1))
    this.count++
    return key
  }

  /** Removes `value` from `key`; returns false when it was not there. The key is normalised like in add(). */
  remove(rawKey: { domain: string; location?: string; httpUser?: string }, value: T): boolean {
    let key: RouteKey
    try {
      key = normalizeRouteKey(rawKey)
    } catch {
      return false
    }
    const users = this.table.get(key.domain)
    const list = users?.get(key.httpUser)
    const i = list?.findIndex((s) => s.location === key.location) ?? -1
    if (list === undefined || i < 0) return false
    const slot = list[i]!
    const m = slot.members.indexOf(value)
    if (m < 0) return false
    slot.members.splice(m, 1)
    this.count--
    if (slot.members.length === 0) {
      list.splice(i, 1)
      if (list.length === 0) users!.delete(key.httpUser)
      if (users!.size === 0) this.table.delete(key.domain)
    }
    return true
  }

  /**
   * Finds the route for a request. `host` is the Host header as received (port and case do not
   * matter); `path` is the request path (no query); `httpUser` the Basic-auth user name or `""`.
   * Returns undefined when nothing matches or the path is reserved. A group answers round-robin.
   */
  match(host: string, path: string, httpUser = ''): RouteMatch<T> | undefined {
    if (this.reserved(path)) return undefined
    const h = normalizeHost(host)
    if (h === '') return undefined
    for (const domain of candidateDomains(h)) {
      const users = this.table.get(domain)
      if (users === undefined) continue
      if (httpUser !== '') {
        const hit = this.pick(users.get(httpUser), path, domain, httpUser)
        if (hit !== undefined) return hit
      }
      const hit = this.pick(users.get(''), path, domain, '')
      if (hit !== undefined) return hit
    }
    return undefined
  }

  private pick(list: Slot<T>[] | undefined, path: string, domain: string, httpUser: string): RouteMatch<T> | undefined {
    if (list === undefined) return undefined
    for (const slot of list) {
      if (!path.startsWith(slot.location)) continue
      const value = slot.members[slot.next % slot.members.length]!
      slot.next = (slot.next + 1) % slot.members.length
      return { value, key: { domain, location: slot.location, httpUser } }
    }
    return undefined
  }
}
