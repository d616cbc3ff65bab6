/**
 * The page a browser sees on the server's port: what this is, how to connect a client, and how
 * busy it is. It never contains the token: the operator has it, a visitor must not.
 */

/** What the landing page shows. */
export interface LandingInfo {
  version: string
  /** `host[:port]` clients should dial, or undefined when unknown. */
  host: string | undefined
  /** True when clients reach us over TLS (wss). */
  secure: boolean
  clients: number
  proxies: number
  /** The WebSocket path to show (frp's `/~!frp`). */
  wsPath: string
  /** Where the browser demo lives, when the server offers it ("Try it in your browser"). */
  demoPath?: string
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!)
}

/**
 * A Host header we may echo into a command line a user will paste into a shell: a host name, an
 * IPv4 literal or a bracketed IPv6 literal, with an optional port. Anything else is not shown.
 */
const SAFE_HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/

/** The Host header if it is safe to show, else undefined. */
export function safeHost(host: string | undefined): string | undefined {
  return host !== undefined && host.length <= 255 && SAFE_HOST.test(host) ? host : undefined
}

function splitHostPort(host: string, secure: boolean): { addr: string; port: number } {
  const m = /^(.*?)(?::(\d+))?$/.exec(host)!
  const addr = (m[1] ?? host).replace(/^\[(.*)\]$/, '$1')
  return { addr, port: m[2] !== undefined ? Number(m[2]) : secure ? 443 : 80 }
}

/** Renders the landing/status page (a complete HTML document). */
export function renderLandingPage(info: LandingInfo): string {
  const host = info.host ?? 'SERVER:PORT'
  const scheme = info.secure ? 'wss' : 'ws'
  const { addr, port } = info.host === undefined ? { addr: 'SERVER', port: 7000 } : splitHostPort(info.host, info.secure)
  const cmd = `wsfrpc tcp --server ${scheme}://${host} --token <your-token> --local-port 22 --remote-port 6000`
  const frpc = [
    `serverAddr = "${addr}"`,
    `serverPort = ${port}`,
    `auth.token = "<your-token>"`,
    `transport.protocol = "${info.secure ? 'wss' : 'websocket'}"`,
    '',
    '[[proxies]]',
    'name = "ssh"',
    'type = "tcp"',
    'localIP = "127.0.0.1"',
    'localPort = 22',
    'remotePort = 6000',
  ].join('\n')
  const e = escapeHtml
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wsfrps ${e(info.version)}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}
code,pre{font-family:ui-monospace,monospace;background:#f3f3f3;border-radius:4px}
pre{padding:.75rem;overflow-x:auto}
dl{display:grid;grid-template-columns:max-content auto;gap:.25rem 1rem}
dt{font-weight:600}
.try{display:inline-block;padding:.6rem 1.1rem;border-radius:6px;background:#1f6feb;color:#fff;font-weight:600;text-decoration:none}
.try:hover,.try:focus{background:#1859c4}
</style>
</head>
<body>
<h1>wsfrps <small>${e(info.version)}</small></h1>
<p>An <a href="https://github.com/fatedier/frp">frp</a>-compatible reverse tunnel server. Clients connect over one
WebSocket at <code>${e(info.wsPath)}</code> and publish local services on this server.</p>
${
  info.demoPath === undefined
    ? ''
    : `<p><a class="try" id="try-demo" href="${e(info.demoPath)}">Try it in your browser</a></p>
<p>One click turns your browser tab into a small web site published on this server, with no install.</p>
`
}<h2>Status</h2>
<dl>
<dt>Clients connected</dt><dd id="clients">${info.clients}</dd>
<dt>Proxies</dt><dd id="proxies">${info.proxies}</dd>
</dl>
<h2>Connect a client</h2>
<p>With wsfrpc (replace <code>&lt;your-token&gt;</code> with the server's token):</p>
<pre>${e(cmd)}</pre>
<p>Or with a stock frpc (0.52 or newer), <code>frpc.toml</code>:</p>
<pre>${e(frpc)}</pre>
<p>Health check: <a href="/healthz"><code>/healthz</code></a></p>
</body>
</html>
`
}
