/**
 * What a new configuration changes for a running client. Proxies are added, removed and replaced
 * on the live session; every other setting belongs to the connection itself (server, token, user,
 * transport) and is only reported, because applying it would mean dropping every proxy at once.
 */
import { isDeepStrictEqual } from 'node:util'
import type { ClientConfig, ProxyConfig } from '@wsfrp/core'

/** The outcome of {@link WsfrpClient.reload}. */
export interface ReloadResult {
  /** Names of proxies that were registered. */
  added: string[]
  /** Names of proxies that were closed. */
  removed: string[]
  /** Names of proxies whose settings changed: closed and registered again. */
  changed: string[]
  /** Top-level keys whose change needs a restart of the client; they keep their old values. */
  ignored: string[]
}

/** The proxies to add, remove and replace, and the other top-level keys that differ. */
export function planReload(before: ClientConfig, after: ClientConfig): ReloadResult & { next: ProxyConfig[] } {
  const old = new Map(before.proxies.map((p) => [p.name, p]))
  const now = new Map(after.proxies.map((p) => [p.name, p]))
  const added: string[] = []
  const changed: string[] = []
  for (const [name, p] of now) {
    const o = old.get(name)
    if (o === undefined) added.push(name)
    else if (!isDeepStrictEqual(o, p)) changed.push(name)
  }
  const removed = [...old.keys()].filter((n) => !now.has(n))
  const ignored = (Object.keys(after) as (keyof ClientConfig)[]).filter((k) => k !== 'proxies' && !isDeepStrictEqual(before[k], after[k]))
  return { added, removed, changed, ignored, next: after.proxies }
}
