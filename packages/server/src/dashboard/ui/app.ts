/**
 * The dashboard's script (runs in the browser). It polls the REST API next to the page every 2 s and
 * fills in the totals, the clients and one table of proxies per type.
 *
 * Built into `../ui-bundle.ts` by `../build-ui.mjs` (esbuild); never imported by the server. The
 * server package compiles without the DOM library, so the few DOM members used here are declared
 * below. Every value from the API goes in as text (`textContent`): proxy names, host names and
 * domains come from clients and must not become markup.
 */

interface Elem {
  textContent: string | null
  className: string
  title: string
  append(...nodes: (Elem | string)[]): void
  replaceChildren(...nodes: (Elem | string)[]): void
  setAttribute(name: string, value: string): void
}
declare const document: {
  getElementById(id: string): Elem | null
  createElement(tag: string): Elem
  readonly body: Elem
}

interface ServerInfo {
  version: string
  bindPort: number
  subdomainHost: string
  totalTrafficIn: number
  totalTrafficOut: number
  curConns: number
  clientCounts: number
  proxyTypeCount: Record<string, number>
  loginFailures: number
  transports: number
  yamuxStreams: number
}

interface Client {
  runID: string
  user: string
  hostname: string
  version: string
  os: string
  arch: string
  remoteAddress: string
  lastConnectedAt: number
  streams: number
  proxies: string[]
}

interface ProxyRow {
  name: string
  type: string
  status: string
  user?: string
  runID: string
  remoteAddr: string
  conf: { customDomains?: string[]; subdomain?: string; locations?: string[] }
  curConns: number
  trafficIn: number
  trafficOut: number
  todayTrafficIn: number
  todayTrafficOut: number
  lastStartTime: string
}

const POLL_MS = 2000

/** An element with optional class and children (strings become text). */
function el(tag: string, cls = '', ...children: (Elem | string)[]): Elem {
  const e = document.createElement(tag)
  if (cls !== '') e.className = cls
  e.append(...children)
  return e
}

function byId(id: string): Elem {
  const e = document.getElementById(id)
  if (e === null) throw new Error(`the page has no #${id}`)
  return e
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']

/** 1536 → "1.50 KiB". */
function bytes(n: number): string {
  let v = n
  let i = 0
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${UNITS[i]}`
}

/** Seconds → "3d 4h", "5m 2s", … */
function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`
}

function card(label: string, value: string, id: string): Elem {
  const c = el('div', 'card', el('div', 'value', value), el('div', 'label', label))
  c.setAttribute('data-metric', id)
  return c
}

function table(headers: string[], rows: (Elem | string)[][], empty: string): Elem {
  const head = el('tr', '', ...headers.map((h) => el('th', '', h)))
  const body = rows.length === 0 ? [el('tr', '', cellSpan(empty, headers.length))] : rows.map((r) => el('tr', '', ...r.map((c) => el('td', '', c))))
  return el('table', '', el('thead', '', head), el('tbody', '', ...body))
}

function cellSpan(text: string, n: number): Elem {
  const td = el('td', 'empty', text)
  td.setAttribute('colspan', String(n))
  return td
}

function remoteOf(p: ProxyRow, subdomainHost: string): string {
  if (p.remoteAddr !== '') return p.remoteAddr
  const names = [...(p.conf.customDomains ?? [])]
  if (p.conf.subdomain !== undefined) names.push(subdomainHost !== '' ? `${p.conf.subdomain}.${subdomainHost}` : p.conf.subdomain)
  return names.join(', ')
}

function status(text: string, cls: string): Elem {
  return el('span', `badge ${cls}`, text)
}

async function getJson<T>(path: string): Promise<T> {
  // The API answers with Cache-Control: no-store, so every poll reaches the server.
  const r = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`)
  return (await r.json()) as T
}

function render(info: ServerInfo, clients: Client[], proxies: Map<string, ProxyRow[]>): void {
  byId('version').textContent = info.version
  const proxyTotal = Object.values(info.proxyTypeCount).reduce((a, b) => a + b, 0)
  byId('totals').replaceChildren(
    card('clients', String(info.clientCounts), 'clients'),
    card('proxies', String(proxyTotal), 'proxies'),
    card('connections', String(info.curConns), 'connections'),
    card('traffic in', bytes(info.totalTrafficIn), 'traffic-in'),
    card('traffic out', bytes(info.totalTrafficOut), 'traffic-out'),
    card('transports', String(info.transports), 'transports'),
    card('yamux streams', String(info.yamuxStreams), 'streams'),
    card('login failures', String(info.loginFailures), 'login-failures'),
  )

  const now = Date.now() / 1000
  byId('clients-title').textContent = `Clients (${clients.length})`
  byId('clients').replaceChildren(
    table(
      ['run id', 'user', 'hostname', 'version', 'os/arch', 'address', 'connected', 'streams', 'proxies'],
      clients.map((c) => [
        el('code', '', c.runID),
        c.user,
        c.hostname,
        c.version,
        c.os !== '' || c.arch !== '' ? `${c.os}/${c.arch}` : '',
        c.remoteAddress,
        duration(now - c.lastConnectedAt),
        String(c.streams),
        c.proxies.join(', '),
      ]),
      'no client is connected',
    ),
  )

  const sections: Elem[] = []
  for (const [type, list] of proxies) {
    sections.push(
      el('h2', '', `${type} proxies (${list.length})`),
      table(
        ['name', 'status', 'remote', 'client', 'connections', 'in', 'out', 'today in', 'today out', 'since'],
        list.map((p) => [
          el('strong', '', p.name),
          status(p.status, p.status === 'online' ? 'ok' : 'off'),
          remoteOf(p, info.subdomainHost),
          p.user !== undefined ? `${p.user} (${p.runID})` : p.runID,
          String(p.curConns),
          bytes(p.trafficIn),
          bytes(p.trafficOut),
          bytes(p.todayTrafficIn),
          bytes(p.todayTrafficOut),
          p.lastStartTime,
        ]),
        `no ${type} proxy`,
      ),
    )
  }
  byId('proxies').replaceChildren(...sections)
}

async function refresh(): Promise<void> {
  const line = byId('status')
  try {
    const info = await getJson<ServerInfo>('api/serverinfo')
    const types = Object.keys(info.proxyTypeCount).sort()
    const [clients, ...lists] = await Promise.all([
      getJson<Client[]>('api/clients'),
      ...types.map((t) => getJson<{ proxies: ProxyRow[] }>(`api/proxy/${encodeURIComponent(t)}`)),
    ])
    render(info, clients, new Map(types.map((t, i) => [t, lists[i]!.proxies])))
    line.replaceChildren(status('live', 'ok'), ` updated ${new Date().toLocaleTimeString()}`)
    // For scripted browsers (screenshots, tests): the page shows real data from now on.
    document.body.setAttribute('data-state', 'ready')
  } catch (err) {
    line.replaceChildren(status('offline', 'err'), ` ${err instanceof Error ? err.message : String(err)}`)
    document.body.setAttribute('data-state', 'error')
  } finally {
    setTimeout(() => void refresh(), POLL_MS)
  }
}

void refresh()

// A module, so that the declarations above stay local to this file.
export {}
