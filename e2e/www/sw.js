// The service worker of the browser tests: the tunnel lives here (service-worker mode).
// Query of the script URL: server (ws URL of wsfrps), token, hold (keep-alive hold in ms).
importScripts('/wsfrp-sw.js')
const q = new URL(self.location.href).searchParams
self.host = wsfrp.serveServiceWorker({
  serverURL: q.get('server'),
  token: q.get('token') ?? '',
  reconnect: { initialDelayMs: 100, maxDelayMs: 2000 },
  ...(q.get('hold') ? { holdMs: Number(q.get('hold')) } : {}),
})
