/**
 * Who may see the dashboard, the REST API and /metrics (docs/DASHBOARD.md, "Exposure").
 *
 * They show no secret, but they do show who is connected, from where, and every proxy: nothing a
 * public server should hand to strangers. The rule, per listener that would serve them:
 *
 * - `webServer.user` or `webServer.password` set → served, every request needs Basic auth.
 * - otherwise, a listener bound to a loopback address only → served to local requests: the peer is
 *   loopback, the request names a loopback host (no DNS rebinding from a web page) and it carries no
 *   forwarding header (a reverse proxy on the same host would otherwise make the world "local").
 * - otherwise → not served.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import type { IncomingMessage } from 'node:http'
import { isLoopbackAddress } from '@wsfrp/node'

/** How one listener serves the observe surfaces. */
export type Exposure =
  | { readonly mode: 'basic' }
  | { readonly mode: 'local' }
  | { readonly mode: 'off'; readonly reason: string }

export interface ExposureInput {
  /** The address the listener is bound to; undefined when not known (not listening yet). */
  listenAddress: string | undefined
  /** `webServer.user`. */
  user: string
  /** `webServer.password`. */
  password: string
  /** False when the embedding application switched the surfaces off. */
  enabled: boolean
}

/** Applies the exposure rule (see the file comment). Pure, for tests and for the startup log. */
export function decideExposure(input: ExposureInput): Exposure {
  if (!input.enabled) return { mode: 'off', reason: 'disabled by the application' }
  if (input.user !== '' || input.password !== '') return { mode: 'basic' }
  if (input.listenAddress !== undefined && isLoopbackAddress(input.listenAddress)) return { mode: 'local' }
  return {
    mode: 'off',
    reason:
      input.listenAddress === undefined
        ? 'the listen address is unknown and webServer.user/password are not set'
        : `the listener on ${input.listenAddress} is not loopback-only and webServer.user/password are not set`,
  }
}

export { isLoopbackAddress }

/** True for `localhost`, `*.localhost` (RFC 6761) and loopback addresses, with or without a port. */
export function isLoopbackHost(host: string): boolean {
  let h = host.trim().toLowerCase()
  if (h.startsWith('[')) {
    const end = h.indexOf(']')
    if (end < 0) return false
    return isLoopbackAddress(h.slice(1, end))
  }
  const colon = h.lastIndexOf(':')
  if (colon >= 0 && h.indexOf(':') === colon) h = h.slice(0, colon)
  if (h.endsWith('.')) h = h.slice(0, -1)
  return h === 'localhost' || h.endsWith('.localhost') || isLoopbackAddress(h)
}

/** Headers a reverse proxy adds: their presence means the request did not start on this host. */
const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-real-ip'] as const

/**
 * Whether a request is local in the sense of the `local` mode. Returns the reason it is not, or
 * undefined when it is.
 */
export function notLocalReason(req: IncomingMessage): string | undefined {
  const peer = req.socket.remoteAddress
  if (peer === undefined || !isLoopbackAddress(peer)) return 'the request does not come from this host'
  for (const h of FORWARDING_HEADERS) if (req.headers[h] !== undefined) return 'the request came through a proxy'
  const host = req.headers.host
  if (host !== undefined && !isLoopbackHost(host)) return 'the request names a host other than localhost'
  return undefined
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest()

/** The user and password of a Basic `Authorization` header, or undefined when it is not one. */
export function parseBasic(authorization: string | undefined): { user: string; password: string } | undefined {
  if (authorization === undefined) return undefined
  const m = /^basic[ \t]+([A-Za-z0-9+/=._~-]+)[ \t]*$/i.exec(authorization)
  if (m === null) return undefined
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

/**
 * Checks Basic credentials in constant time: both sides are hashed first, so neither the length nor
 * the content of the configured user or password leaks through timing. Both must match.
 */
export class BasicAuth {
  private readonly user: Buffer
  private readonly password: Buffer

  constructor(user: string, password: string) {
    this.user = sha256(user)
    this.password = sha256(password)
  }

  /** True when the `Authorization` header carries the configured user and password. */
  check(authorization: string | undefined): boolean {
    const cred = parseBasic(authorization)
    if (cred === undefined) return false
    // Compare both even when the first differs, so the time does not say which one was wrong.
    const userOk = timingSafeEqual(sha256(cred.user), this.user)
    const passwordOk = timingSafeEqual(sha256(cred.password), this.password)
    return userOk && passwordOk
  }
}

/** The `WWW-Authenticate` challenge of a 401. */
export const BASIC_CHALLENGE = 'Basic realm="wsfrps dashboard", charset="UTF-8"'
