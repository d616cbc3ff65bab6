import type { ClientConfig, ServerConfig } from './types.js'

/** What {@link redactConfig} puts in place of a secret. */
export const REDACTED = '<redacted>'

const secret = (s: string): string => (s === '' ? '' : REDACTED)

/** Hides the `user:password@` part of a URL; the rest stays readable for debugging. */
function redactURL(s: string): string {
  return s.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/, `$1${REDACTED}@`)
}

function isClient(cfg: ServerConfig | ClientConfig): cfg is ClientConfig {
  return 'proxies' in cfg
}

/**
 * A deep copy of a validated config that is safe to log: `auth.token`, `auth.users[].token`, `webServer.password`,
 * proxies' `httpPassword` and `loadBalancer.groupKey`, and credentials inside `serverURL` and
 * `transport.proxyURL` become `"<redacted>"`. Empty secrets stay `""`, so "no token set" remains
 * visible. The input is not modified.
 */
export function redactConfig<T extends ServerConfig | ClientConfig>(cfg: T): T {
  // Validated configs hold only JSON data (strings, numbers, booleans, arrays, plain objects).
  const copy = JSON.parse(JSON.stringify(cfg)) as T
  copy.auth.token = secret(copy.auth.token)
  copy.webServer.password = secret(copy.webServer.password)
  if (isClient(copy)) {
    copy.serverURL = redactURL(copy.serverURL)
    copy.transport.proxyURL = redactURL(copy.transport.proxyURL)
    for (const p of copy.proxies) {
      p.loadBalancer.groupKey = secret(p.loadBalancer.groupKey)
      if (p.type === 'http') p.httpPassword = secret(p.httpPassword)
    }
  } else {
    for (const u of copy.auth.users) u.token = secret(u.token)
  }
  return copy
}
