// Service-worker mode: the tunnel runs in /sw.js, shared by every tab of this origin; the handlers
// run here. Query: server, token (passed on to the worker script), sub, name, tcp=1, keepalive (ms).
import { connectServiceWorker } from '/wsfrp-page.js'
import { makeState, makeHttpHandler, echoHandler } from '/handlers.js'

const q = new URLSearchParams(location.search)
const t = (window.t = makeState('sw'))
t.instances = []
const sw = new URLSearchParams({ server: q.get('server'), token: q.get('token') ?? '' })
const tunnel = await connectServiceWorker({
  scriptURL: `/sw.js?${sw}`,
  keepAliveMs: Number(q.get('keepalive') ?? '10000'),
})
t.tunnel = tunnel
const noteInstance = () => {
  if (tunnel.instance !== undefined && t.instances.at(-1) !== tunnel.instance) t.instances.push(tunnel.instance)
}
tunnel.addEventListener('status', (e) => {
  noteInstance()
  t.status = e.status
  document.getElementById('status').textContent = e.status
})
tunnel.addEventListener('proxy', (e) => {
  noteInstance()
  t.proxies[e.name] = { status: e.status, detail: e.detail, instance: tunnel.instance }
})
const name = q.get('name') ?? 'sw-web'
try {
  t.remote = await tunnel.registerHandler(name, { subdomain: q.get('sub') ?? 'sw' }, makeHttpHandler(t))
  if (q.get('tcp') === '1') t.tcpRemote = await tunnel.registerStreamHandler(`${name}-echo`, {}, echoHandler)
  noteInstance()
  t.ready = true
} catch (err) {
  t.errors.push(String(err))
}
