/**
 * The demo page's script (`dist-bundle/wsfrp-demo.js`, served by wsfrps at `/_wsfrp/demo/demo.js`):
 * asks the server for a demo session, starts the browser client in this page (page mode) and
 * shows the public URL of the handler it publishes. The page's markup comes from the server
 * (packages/server/src/demo.ts): elements #status, #url, #requests, #expires, #log.
 */
import { connect, type ProxyStatusEvent, type StatusEvent } from '../client.js'
import { createDemoApp } from './app.js'

/** What `POST /_wsfrp/demo/session` answers (packages/server/src/demo.ts keeps the same shape). */
export interface DemoSession {
  /** The demo's WebSocket path on this server. */
  wsPath: string
  token: string
  /** frp user: proxy names become `<user>.<name>`. */
  user: string
  /** Login metadata: carries the signed ticket. */
  metas: Record<string, string>
  /** The only subdomain this session may publish. */
  subdomain: string
  publicURL: string
  /** When the server ends the session (ms since the epoch). */
  expiresAt: number
}

const $ = (id: string): HTMLElement => {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`the demo page has no #${id}`)
  return el
}

function setState(state: string, text: string): void {
  document.body.dataset.state = state
  $('status').textContent = text
}

async function main(): Promise<void> {
  setState('starting', 'Asking the server for a demo session…')
  const res = await fetch(new URL('session', location.href), { method: 'POST', headers: { Accept: 'application/json' } })
  if (!res.ok) {
    setState('failed', `The server refused a demo session: ${res.status} ${(await res.text()).trim()}`)
    return
  }
  const s = (await res.json()) as DemoSession
  const log = $('log')
  const app = createDemoApp({
    onRequest: (r) => {
      $('requests').textContent = String(r.n)
      const li = document.createElement('li')
      li.textContent = `${new Date().toLocaleTimeString()}  ${r.method} ${r.path}${r.from ? `  from ${r.from}` : ''}`
      log.prepend(li)
      while (log.childElementCount > 50) log.lastElementChild?.remove()
    },
  })
  const wsURL = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${s.wsPath}`
  const client = connect({
    serverURL: wsURL,
    token: s.token,
    user: s.user,
    metas: s.metas,
    proxies: [{ name: 'web', type: 'http', subdomain: s.subdomain, handler: app }],
  })
  const expires = $('expires')
  const tick = (): void => {
    const left = Math.max(0, Math.round((s.expiresAt - Date.now()) / 1000))
    expires.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`
  }
  tick()
  const timer = setInterval(tick, 1000)
  client.addEventListener('status', (ev) => {
    const e = ev as StatusEvent
    if (e.status === 'connecting') setState('connecting', 'Connecting this tab to the server…')
    else if (e.status === 'offline') {
      if (client.lastError !== undefined && Date.now() >= s.expiresAt) {
        clearInterval(timer)
        setState('ended', 'The demo session has ended. Reload the page for a new one.')
      } else {
        setState('offline', `Disconnected${e.error ? ` (${e.error.message})` : ''}; retrying…`)
      }
    }
  })
  client.addEventListener('proxy', (ev) => {
    const e = ev as ProxyStatusEvent
    if (e.status === 'running') {
      const a = $('url') as HTMLAnchorElement
      a.href = s.publicURL
      a.textContent = s.publicURL
      setState('running', 'This tab is now a web server. Open the link from anywhere that reaches this server:')
    } else if (e.status === 'error') {
      setState('failed', `The server refused the demo proxy: ${e.detail}`)
    }
  })
  addEventListener('pagehide', () => void client.close())
}

main().catch((err: unknown) => setState('failed', `The demo failed: ${err instanceof Error ? err.message : String(err)}`))
