import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  ConfigError,
  defaultClientConfig,
  resolveServerURL,
  validateClientConfig,
  type ConfigIssue,
  type HttpProxyConfig,
  type TcpProxyConfig,
} from '@wsfrp/core'

const T = { timeout: 5_000 }

function issuesOf(raw: unknown): ConfigIssue[] {
  try {
    validateClientConfig(raw)
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`)
    assert.equal(err.code, 'ERR_CONFIG')
    return [...err.issues]
  }
  assert.fail('validateClientConfig accepted an invalid config')
}

function lines(raw: unknown): string[] {
  return issuesOf(raw).map((i) => (i.path === '' ? i.message : `${i.path}: ${i.message}`))
}

const tcp = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ name: 'ssh', type: 'tcp', localPort: 22, ...extra })
const http = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'web',
  type: 'http',
  localPort: 80,
  customDomains: ['www.example.com'],
  ...extra,
})

test('an empty client config gets every documented default', T, () => {
  assert.deepEqual(validateClientConfig({}), {
    serverAddr: '127.0.0.1',
    serverPort: 7000,
    serverURL: '',
    user: '',
    loginFailExit: true,
    auth: { method: 'token', token: '', additionalScopes: [] },
    transport: {
      protocol: 'websocket',
      poolCount: 1,
      tcpMuxKeepaliveInterval: 30,
      heartbeatInterval: -1,
      heartbeatTimeout: -1,
      proxyURL: '',
      tls: { enable: false, trustedCaFile: '', serverName: '' },
    },
    log: { level: 'info', to: 'console', maxDays: 3, disablePrintColor: false },
    metadatas: {},
    webServer: { addr: '127.0.0.1', port: 0, user: '', password: '' },
    proxies: [],
  })
  assert.deepEqual(validateClientConfig(undefined), defaultClientConfig())
})

test('webServer: the admin API keys are read and checked; frp\'s legacy admin_* names are pointed to them', T, () => {
  const cfg = validateClientConfig({ webServer: { addr: '::1', port: 7400, user: 'admin', password: 'pw' } })
  assert.deepEqual(cfg.webServer, { addr: '::1', port: 7400, user: 'admin', password: 'pw' })
  const bad = (raw: unknown): string[] => {
    try {
      validateClientConfig(raw)
    } catch (err) {
      return (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`)
    }
    return []
  }
  assert.match(bad({ webServer: { port: 70000 } }).join('\n'), /^webServer\.port: must be an integer from 0 to 65535/)
  assert.match(bad({ webServer: { addr: 'http://x' } }).join('\n'), /^webServer\.addr: must be a host name or IP address/)
  assert.match(bad({ webServer: { user: 'a:b' } }).join('\n'), /^webServer\.user: must not contain ":"/)
  assert.match(bad({ webServer: { tls: {} } }).join('\n'), /webServer\.tls/)
  assert.match(bad({ webServer: { prot: 1 } }).join('\n'), /unknown key "prot".*port/)
  assert.match(bad({ admin_port: 7400 }).join('\n'), /admin_port.*webServer\.port/)
  // A password never appears in a message, whatever its type.
  assert.doesNotMatch(bad({ webServer: { password: 12345 } }).join('\n'), /12345/)
})

test('proxy defaults: localIP, remotePort, flags, and empty http settings', T, () => {
  const cfg = validateClientConfig({ proxies: [tcp(), http()] })
  const [a, b] = cfg.proxies as [TcpProxyConfig, HttpProxyConfig]
  assert.deepEqual(a, {
    name: 'ssh',
    type: 'tcp',
    localIP: '127.0.0.1',
    localPort: 22,
    remotePort: 0,
    transport: { useEncryption: false, useCompression: false },
    loadBalancer: { group: '', groupKey: '' },
    metadatas: {},
  })
  assert.deepEqual(b, {
    name: 'web',
    type: 'http',
    localIP: '127.0.0.1',
    localPort: 80,
    transport: { useEncryption: false, useCompression: false },
    loadBalancer: { group: '', groupKey: '' },
    metadatas: {},
    customDomains: ['www.example.com'],
    subdomain: '',
    locations: [],
    httpUser: '',
    httpPassword: '',
    hostHeaderRewrite: '',
    requestHeaders: { set: {} },
    responseHeaders: { set: {} },
    routeByHTTPUser: '',
  })
})

test('every http proxy setting is carried through', T, () => {
  const cfg = validateClientConfig({
    proxies: [
      http({
        localIP: '10.0.0.5',
        customDomains: ['a.example.com', '*.apps.example.com', '*'],
        subdomain: 'web',
        locations: ['/', '/api'],
        httpUser: 'u',
        httpPassword: 'p',
        hostHeaderRewrite: 'localhost:8080',
        requestHeaders: { set: { 'x-from': 'wsfrp' } },
        responseHeaders: { set: { 'X-Served-By': 'me' } },
        routeByHTTPUser: 'u',
        loadBalancer: { group: 'g', groupKey: 'k' },
        transport: { useEncryption: true, useCompression: true },
        metadatas: { owner: 'alice' },
      }),
    ],
  })
  const p = cfg.proxies[0] as HttpProxyConfig
  assert.deepEqual(p.customDomains, ['a.example.com', '*.apps.example.com', '*'])
  assert.equal(p.subdomain, 'web')
  assert.deepEqual(p.locations, ['/', '/api'])
  assert.equal(p.hostHeaderRewrite, 'localhost:8080')
  assert.deepEqual(p.requestHeaders.set, { 'x-from': 'wsfrp' })
  assert.deepEqual(p.responseHeaders.set, { 'X-Served-By': 'me' })
  assert.deepEqual(p.loadBalancer, { group: 'g', groupKey: 'k' })
  assert.deepEqual(p.transport, { useEncryption: true, useCompression: true })
  assert.deepEqual(p.metadatas, { owner: 'alice' })
})

test('localPort "abc" in the second proxy gives the documented message', T, () => {
  assert.deepEqual(lines({ proxies: [tcp(), http({ name: 'b', localPort: 'abc' })] }), [
    'proxies[1].localPort: must be an integer from 1 to 65535, got "abc"',
  ])
})

test('every client field reports its dotted path', T, () => {
  assert.deepEqual(
    lines({
      serverAddr: 'ws://example.com',
      serverPort: 0,
      serverURL: 'http://example.com',
      user: 'a.b',
      loginFailExit: 'no',
      auth: { method: 'oidc', token: ['t'], additionalScopes: 'HeartBeats' },
      transport: {
        protocol: 'kcp',
        poolCount: -1,
        tcpMuxKeepaliveInterval: 'x',
        heartbeatInterval: 30,
        heartbeatTimeout: 10,
        proxyURL: 'socks4://u:pw@proxy:1080',
        tls: { enable: 1, trustedCaFile: 2, serverName: 'a b' },
      },
      log: { level: 'loud', disablePrintColor: 'yes', maxDays: -1 },
      metadatas: { a: 1, b: 'ok' },
    }),
    [
      'serverAddr: must be a host name or IP address; put ws:// and wss:// URLs in serverURL, got "ws://example.com"',
      'serverPort: must be an integer from 1 to 65535, got 0',
      'serverURL: must start with ws:// or wss://, got "http://example.com"',
      'user: must not contain "." (frp joins user and proxy name with "."), got "a.b"',
      'loginFailExit: must be true or false, got "no"',
      'auth.method: only "token" is supported ("oidc" is not supported yet)',
      'auth.token: must be a string, got an array',
      'auth.additionalScopes: must be an array of "HeartBeats"/"NewWorkConns", got "HeartBeats"',
      'transport.protocol: "kcp" is not available: wsfrp speaks only WebSocket (use "websocket" or "wss")',
      'transport.poolCount: must be an integer >= 0, got -1',
      'transport.tcpMuxKeepaliveInterval: must be an integer >= 1 (seconds), got "x"',
      'transport.heartbeatTimeout: must not be less than transport.heartbeatInterval (30), got 10',
      'transport.proxyURL: must be an http://, https://, socks5:// or socks5h:// proxy URL, got a string',
      'transport.tls.enable: must be true or false, got 1',
      'transport.tls.trustedCaFile: must be a string, got 2',
      'transport.tls.serverName: must be a host name or IP address, got "a b"',
      'log.level: must be "trace", "debug", "info", "warn" or "error", got "loud"',
      'log.maxDays: must be an integer >= 0 (days), got -1',
      'log.disablePrintColor: must be true or false, got "yes"',
      'metadatas.a: must be a string, got 1',
    ],
  )
})

test('tcp, kcp and quic are refused because wsfrp speaks only WebSocket; wss is accepted', T, () => {
  for (const p of ['tcp', 'kcp', 'quic']) {
    assert.deepEqual(lines({ transport: { protocol: p } }), [
      `transport.protocol: "${p}" is not available: wsfrp speaks only WebSocket (use "websocket" or "wss")`,
    ])
  }
  assert.deepEqual(lines({ transport: { protocol: 'ws' } }), ['transport.protocol: must be "websocket" or "wss", got "ws"'])
  assert.equal(validateClientConfig({ transport: { protocol: 'wss' } }).transport.protocol, 'wss')
})

test('serverURL wins, gets /~!frp when it has no path, and is checked', T, () => {
  const a = validateClientConfig({ serverAddr: 'ignored.example', serverURL: 'wss://tunnel.example.com' })
  assert.equal(a.serverURL, 'wss://tunnel.example.com/~!frp')
  assert.equal(resolveServerURL(a), 'wss://tunnel.example.com/~!frp')
  const b = validateClientConfig({ serverURL: 'WS://[::1]:8080/custom/path?x=1' })
  assert.equal(resolveServerURL(b), 'ws://[::1]:8080/custom/path?x=1')
  assert.deepEqual(lines({ serverURL: 'ws://h:99999/' }), ['serverURL: has an invalid port (1 to 65535) (ws://host:port/path or wss://host/path), got "ws://h:99999/"'])
  assert.deepEqual(lines({ serverURL: 'tunnel.example.com' }), [
    'serverURL: must be a URL like scheme://host:port (ws://host:port/path or wss://host/path), got "tunnel.example.com"',
  ])
  // Credentials in a bad URL never reach the message.
  const msg = lines({ serverURL: 'ftp://user:hunter2@h/' })[0] as string
  assert.doesNotMatch(msg, /hunter2/)
  assert.match(msg, /<credentials>@h/)
})

test('resolveServerURL builds ws:// or wss:// from serverAddr and serverPort', T, () => {
  assert.equal(resolveServerURL(defaultClientConfig()), 'ws://127.0.0.1:7000/~!frp')
  assert.equal(resolveServerURL(validateClientConfig({ serverAddr: 'example.com', serverPort: 443, transport: { protocol: 'wss' } })), 'wss://example.com:443/~!frp')
  assert.equal(resolveServerURL(validateClientConfig({ serverAddr: '::1' })), 'ws://[::1]:7000/~!frp')
})

test('proxyURL accepts http(s) and socks5(h) with credentials and refuses other schemes without echoing them', T, () => {
  assert.equal(validateClientConfig({ transport: { proxyURL: 'http://u:p@proxy:3128' } }).transport.proxyURL, 'http://u:p@proxy:3128')
  assert.equal(validateClientConfig({ transport: { proxyURL: 'https://proxy.example' } }).transport.proxyURL, 'https://proxy.example')
  const got = lines({ transport: { proxyURL: 'ntlm://dom:sekrit@proxy:8080' } })
  assert.deepEqual(got, ['transport.proxyURL: must be an http://, https://, socks5:// or socks5h:// proxy ("ntlm" is not supported yet), got a string'])
  assert.equal(validateClientConfig({ transport: { proxyURL: 'socks5://u:p@proxy:1080' } }).transport.proxyURL, 'socks5://u:p@proxy:1080')
  assert.equal(validateClientConfig({ transport: { proxyURL: 'socks5h://proxy' } }).transport.proxyURL, 'socks5h://proxy')
  assert.deepEqual(lines({ transport: { proxyURL: 'http://proxy:3128/path' } }), ['transport.proxyURL: must not have a path, got a string'])
})

test('heartbeat settings: -1 disables, 0 is refused', T, () => {
  const cfg = validateClientConfig({ transport: { heartbeatInterval: 30, heartbeatTimeout: 90 } })
  assert.equal(cfg.transport.heartbeatInterval, 30)
  assert.equal(cfg.transport.heartbeatTimeout, 90)
  assert.deepEqual(lines({ transport: { heartbeatInterval: 0 } }), [
    'transport.heartbeatInterval: must be -1 (disabled) or an integer >= 1 (seconds), got 0',
  ])
})

test('proxy type: required, tcp/http only, frp types "not supported yet"', T, () => {
  assert.deepEqual(lines({ proxies: [{ name: 'a', localPort: 1 }] }), ['proxies[0].type: is required: "tcp" or "http"'])
  assert.deepEqual(lines({ proxies: [{ name: 'a', type: 'udp', localPort: 53 }] }), [
    'proxies[0].type: "udp" proxies are not supported yet (wsfrp supports only "tcp" and "http")',
  ])
  assert.deepEqual(lines({ proxies: [{ name: 'a', type: 'stcp', localPort: 1, secretKey: 'x' }] }), [
    'proxies[0].type: "stcp" proxies are not supported yet (wsfrp supports only "tcp" and "http")',
    'proxies[0].secretKey: unknown key "secretKey": an frp setting that wsfrp does not support (stcp/sudp/xtcp proxies are not supported yet)',
  ])
  assert.deepEqual(lines({ proxies: [{ name: 'a', type: 'ftp', localPort: 1 }] }), ['proxies[0].type: must be "tcp" or "http", got "ftp"'])
})

test('proxy name: required, non-empty and unique', T, () => {
  assert.deepEqual(lines({ proxies: [{ type: 'tcp', localPort: 1 }] }), ['proxies[0].name: is required: a unique proxy name'])
  assert.deepEqual(lines({ proxies: [tcp({ name: '' })] }), ['proxies[0].name: must not be empty'])
  assert.deepEqual(lines({ proxies: [tcp({ name: 'x' }), tcp({ name: 'y' }), http({ name: 'x' }), tcp({ name: 'y' })] }), [
    'proxies[2].name: duplicate proxy name "x" (also used by proxies[0])',
    'proxies[3].name: duplicate proxy name "y" (also used by proxies[1])',
  ])
})

test('localPort is required and remotePort is a port or 0', T, () => {
  assert.deepEqual(lines({ proxies: [{ name: 'a', type: 'tcp' }] }), ['proxies[0].localPort: is required: an integer from 1 to 65535'])
  assert.deepEqual(lines({ proxies: [tcp({ remotePort: 65536 }), tcp({ name: 'b', localPort: 0 })] }), [
    'proxies[0].remotePort: must be an integer from 0 to 65535, got 65536',
    'proxies[1].localPort: must be an integer from 1 to 65535, got 0',
  ])
  assert.equal((validateClientConfig({ proxies: [tcp({ remotePort: 6000 })] }).proxies[0] as TcpProxyConfig).remotePort, 6000)
})

test('http proxies need customDomains or subdomain, and their values are checked', T, () => {
  assert.deepEqual(lines({ proxies: [http({ customDomains: undefined })] }), ['proxies[0]: an http proxy needs customDomains or subdomain'])
  assert.deepEqual(lines({ proxies: [http({ customDomains: [] })] }), ['proxies[0]: an http proxy needs customDomains or subdomain'])
  assert.equal((validateClientConfig({ proxies: [http({ customDomains: undefined, subdomain: 'app' })] }).proxies[0] as HttpProxyConfig).subdomain, 'app')
  assert.deepEqual(
    lines({
      proxies: [
        http({
          customDomains: ['ok.example.com', 'http://x.com', 'a.com:80', 'a.*.com', '*x.com'],
          subdomain: 'a.b',
          locations: ['api'],
          httpUser: 'a:b',
          requestHeaders: { set: { 'bad header': 'x', ok: 'line\nbreak' } },
          responseHeaders: { add: {} },
        }),
      ],
    }),
    [
      'proxies[0].customDomains[1]: must be a host name, not a URL, got "http://x.com"',
      'proxies[0].customDomains[2]: must be a host name (no port, path or spaces), got "a.com:80"',
      'proxies[0].customDomains[3]: may contain "*" only as a leading "*." wildcard, got "a.*.com"',
      'proxies[0].customDomains[4]: may contain "*" only as a leading "*." wildcard, got "*x.com"',
      'proxies[0].subdomain: must be one DNS label (no "." or "*"), got "a.b"',
      'proxies[0].locations[0]: must start with "/", got "api"',
      'proxies[0].httpUser: must not contain ":", got "a:b"',
      'proxies[0].requestHeaders.set."bad header": is not a valid HTTP header name',
      'proxies[0].requestHeaders.set.ok: must not contain CR, LF or NUL, got "line\\nbreak"',
      'proxies[0].responseHeaders.add: unknown key "add"',
    ],
  )
})

test('keys of the other proxy type are named as such', T, () => {
  assert.deepEqual(lines({ proxies: [tcp({ customDomains: ['a.com'] }), http({ name: 'w', remotePort: 80 })] }), [
    'proxies[0].customDomains: unknown key "customDomains" for a tcp proxy (it applies to http proxies)',
    'proxies[1].remotePort: unknown key "remotePort" for an http proxy (it applies to tcp proxies)',
  ])
})

test('unknown client keys: did-you-mean, legacy INI names, unsupported frp settings', T, () => {
  assert.deepEqual(
    lines({
      serverAdr: 'x',
      server_port: 7000,
      meta_team: 'infra',
      transport: { pool_count: 2, tcpMux: true, tls: { disableCustomTLSFirstByte: true } },
      visitors: [],
      proxies: [tcp({ local_port: 22, use_encryption: true, header_X: 'y', plugin: {}, transport: { useEncrypton: true } })],
    }),
    [
      'serverAdr: unknown key "serverAdr" (did you mean "serverAddr"?)',
      'server_port: unknown key "server_port": this is frp\'s legacy INI name; the frp >= 0.52 TOML name is "serverPort"',
      'meta_team: unknown key "meta_team": this is frp\'s legacy INI metadata; the frp >= 0.52 TOML form is metadatas.team',
      'visitors: unknown key "visitors": an frp setting that wsfrp does not support (visitors (stcp/sudp/xtcp) are not supported yet)',
      'transport.pool_count: unknown key "pool_count": this is frp\'s legacy INI name; the frp >= 0.52 TOML name is "transport.poolCount"',
      'transport.tcpMux: unknown key "tcpMux": an frp setting that wsfrp does not support (yamux is always on)',
      'transport.tls.disableCustomTLSFirstByte: unknown key "disableCustomTLSFirstByte": an frp setting that wsfrp does not support (wsfrp never sends TLS inside the WebSocket)',
      'proxies[0].local_port: unknown key "local_port": this is frp\'s legacy INI name; the frp >= 0.52 TOML name is "localPort"',
      'proxies[0].use_encryption: unknown key "use_encryption": this is frp\'s legacy INI name; the frp >= 0.52 TOML name is "transport.useEncryption"',
      'proxies[0].header_X: unknown key "header_X": this is frp\'s legacy INI header; the frp >= 0.52 TOML form is requestHeaders.set.X',
      'proxies[0].plugin: unknown key "plugin": an frp setting that wsfrp does not support (plugins are not supported yet)',
      'proxies[0].transport.useEncrypton: unknown key "useEncrypton" (did you mean "useEncryption"?)',
    ],
  )
})

test('a legacy INI proxy section that parsed as a table gets a [[proxies]] hint', T, () => {
  assert.deepEqual(lines({ ssh: { type: 'tcp', local_port: 22 } }), [
    'ssh: unknown key "ssh": looks like a legacy INI proxy section; frp >= 0.52 TOML uses [[proxies]] with name = "ssh"',
  ])
})

test('proxies must be an array of tables', T, () => {
  assert.deepEqual(lines({ proxies: { name: 'a' } }), ['proxies: must be an array of tables ([[proxies]]), got a table'])
  assert.deepEqual(lines({ proxies: ['ssh'] }), ['proxies[0]: must be a table ([[proxies]] entry), got "ssh"'])
})

test('tls.enable is accepted (recorded, documented as no-op for websocket)', T, () => {
  const cfg = validateClientConfig({ transport: { tls: { enable: true, trustedCaFile: '/ca.pem', serverName: 'example.com' } } })
  assert.deepEqual(cfg.transport.tls, { enable: true, trustedCaFile: '/ca.pem', serverName: 'example.com' })
})

test('a validated client config validates again to the same value', T, () => {
  const once = validateClientConfig({
    serverURL: 'wss://h',
    transport: { proxyURL: 'http://p:1' },
    proxies: [tcp({ remotePort: 1 }), http({ subdomain: 's', requestHeaders: { set: { a: 'b' } } })],
  })
  assert.deepEqual(validateClientConfig(JSON.parse(JSON.stringify(once))), once)
})

test('metadatas keep keys that look like prototype names as plain entries', T, () => {
  const raw: unknown = JSON.parse('{"metadatas": {"__proto__": "x", "constructor": "y"}}')
  const cfg = validateClientConfig(raw)
  assert.equal(Object.getPrototypeOf(cfg.metadatas), Object.prototype)
  assert.deepEqual(Object.entries(cfg.metadatas), [
    ['__proto__', 'x'],
    ['constructor', 'y'],
  ])
})
