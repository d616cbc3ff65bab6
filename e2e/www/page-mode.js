// Page mode: the tunnel runs in this page (the ESM bundle's connect()).
// Query: server (ws URL of wsfrps), token, sub (subdomain), name (http proxy name), tcp=1 (add an echo tcp proxy),
// wsHwm / wsPollMs (WebSocket send-buffer high-water mark in bytes / drain poll interval in ms).
import { connect } from '/wsfrp.js'
import { makeState, makeHttpHandler, echoHandler } from '/handlers.js'

const q = new URLSearchParams(location.search)
const t = (window.t = makeState('page'))
const name = q.get('name') ?? 'page-web'
const proxies = [{ name, type: 'http', subdomain: q.get('sub') ?? 'page', handler: makeHttpHandler(t) }]
if (q.get('tcp') === '1') proxies.push({ name: `${name}-echo`, type: 'tcp', handler: echoHandler })
const client = connect({
  serverURL: q.get('server'),
  token: q.get('token') ?? '',
  proxies,
  reconnect: { initialDelayMs: 100, maxDelayMs: 2000 },
  // Benchmark knobs: the WebSocket send-buffer marks and drain polling (websocketConn options).
  websocket: {
    ...(q.get('wsHwm') ? { highWaterMark: Number(q.get('wsHwm')) } : {}),
    ...(q.get('wsPollMs') ? { drainPollMs: Number(q.get('wsPollMs')) } : {}),
  },
})
t.client = client
client.addEventListener('status', (e) => {
  t.status = e.status
  document.getElementById('status').textContent = e.status
})
client.addEventListener('proxy', (e) => {
  t.proxies[e.name] = { status: e.status, detail: e.detail }
})
