import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  ConfigError,
  WsfrpError,
  defaultServerConfig,
  isPortAllowed,
  isWsfrpError,
  serverWsPaths,
  validateServerConfig,
  type ConfigIssue,
} from '@wsfrp/core'

const T = { timeout: 5_000 }

/** Runs the validator and returns its issues; fails the test if it does not throw a ConfigError. */
function issuesOf(raw: unknown): ConfigIssue[] {
  try {
    validateServerConfig(raw)
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`)
    assert.equal(err.code, 'ERR_CONFIG')
    return [...err.issues]
  }
  assert.fail('validateServerConfig accepted an invalid config')
}

/** Issue lines as `path: message`. */
function lines(raw: unknown): string[] {
  return issuesOf(raw).map((i) => (i.path === '' ? i.message : `${i.path}: ${i.message}`))
}

test('an empty server config gets every documented default', T, () => {
  assert.deepEqual(validateServerConfig({}), {
    bindAddr: '0.0.0.0',
    bindPort: 7000,
    proxyBindAddr: '0.0.0.0',
    vhostHTTPPort: 7000,
    subDomainHost: '',
    auth: { method: 'token', token: '', additionalScopes: [], users: [] },
    allowPorts: [],
    maxPortsPerClient: 0,
    transport: {
      maxPoolCount: 5,
      tcpMuxKeepaliveInterval: 30,
      heartbeatTimeout: -1,
      wsPaths: [],
      tls: { certFile: '', keyFile: '' },
    },
    userConnTimeout: 10,
    log: { level: 'info', to: 'console', maxDays: 3, disablePrintColor: false },
    webServer: { addr: '127.0.0.1', port: 0, user: '', password: '' },
    detailedErrorsToClient: true,
    limits: {
      loginTimeout: 10,
      transportLoginTimeout: 30,
      maxPendingTransports: 1000,
      maxClients: 1000,
      maxProxiesPerClient: 256,
      maxStreamsPerSession: 1024,
      sessionReceiveBudget: 64 * 1024 * 1024,
      maxMessageSize: 10_240,
      maxWebSocketMessageSize: 16 * 1024 * 1024,
      maxHTTPHeaderSize: 16 * 1024,
      httpHeaderTimeout: 60,
      httpKeepAliveTimeout: 5,
      maxPendingUserConnsPerProxy: 1024,
      loginFailures: 5,
      loginFailureWindow: 60,
      webLoginFailures: 5,
    },
  })
  assert.deepEqual(validateServerConfig(undefined), defaultServerConfig())
})

test('proxyBindAddr follows bindAddr and vhostHTTPPort follows bindPort unless set', T, () => {
  const a = validateServerConfig({ bindAddr: '10.0.0.1', bindPort: 8080 })
  assert.equal(a.proxyBindAddr, '10.0.0.1')
  assert.equal(a.vhostHTTPPort, 8080)
  const b = validateServerConfig({ bindAddr: '10.0.0.1', bindPort: 8080, proxyBindAddr: '0.0.0.0', vhostHTTPPort: 80 })
  assert.equal(b.proxyBindAddr, '0.0.0.0')
  assert.equal(b.vhostHTTPPort, 80)
  // bindPort 0 (ephemeral, for tests) is allowed and the vhost shares it.
  assert.equal(validateServerConfig({ bindPort: 0 }).vhostHTTPPort, 0)
  // 0 turns http vhosts off, as in frps; with bindPort 0 it is "equal to bindPort" (shared).
  assert.equal(validateServerConfig({ bindPort: 7000, vhostHTTPPort: 0 }).vhostHTTPPort, 0)
  assert.equal(validateServerConfig({ bindPort: 0, vhostHTTPPort: 0 }).vhostHTTPPort, 0)
})

test('every server field reports its dotted path and what was wrong', T, () => {
  const got = lines({
    bindAddr: 'http://x',
    bindPort: 'abc',
    proxyBindAddr: '',
    vhostHTTPPort: 70000,
    subDomainHost: '.example.com',
    auth: { method: 'oidc', token: 12345, additionalScopes: ['HeartBeats', 'Pings', 'HeartBeats'] },
    maxPortsPerClient: -1,
    transport: {
      maxPoolCount: 1.5,
      tcpMuxKeepaliveInterval: 0,
      heartbeatTimeout: 0,
      wsPaths: ['ws', '/a b', 7],
      tls: { certFile: '/c.pem' },
    },
    userConnTimeout: 0,
    log: { level: 'verbose', to: '' },
    webServer: { addr: 'h', port: 70000, password: true },
    detailedErrorsToClient: 'yes',
  })
  assert.deepEqual(got, [
    'bindAddr: must be a host name or IP address, not a URL, got "http://x"',
    'bindPort: must be an integer from 0 to 65535, got "abc"',
    'proxyBindAddr: must not be empty',
    'vhostHTTPPort: must be an integer from 0 to 65535 (leave it unset to share bindPort; 0 turns http vhosts off), got 70000',
    'subDomainHost: must not start with "." or "*", got ".example.com"',
    'auth.method: only "token" is supported ("oidc" is not supported yet)',
    'auth.token: must be a string, got a number',
    'auth.additionalScopes[1]: must be "HeartBeats" or "NewWorkConns", got "Pings"',
    'auth.additionalScopes[2]: "HeartBeats" is listed twice',
    'maxPortsPerClient: must be an integer >= 0, got -1',
    'transport.maxPoolCount: must be an integer >= 0, got 1.5',
    'transport.tcpMuxKeepaliveInterval: must be an integer >= 1 (seconds), got 0',
    'transport.heartbeatTimeout: must be -1 (disabled) or an integer >= 1 (seconds), got 0',
    'transport.wsPaths[0]: must start with "/", got "ws"',
    'transport.wsPaths[1]: must be a URL path without spaces, "?" or "#", got "/a b"',
    'transport.wsPaths[2]: must be a string, got 7',
    'transport.tls.keyFile: must be set when transport.tls.certFile is set',
    'userConnTimeout: must be an integer >= 1 (seconds), got 0',
    'log.level: must be "trace", "debug", "info", "warn" or "error", got "verbose"',
    'log.to: must not be empty',
    'webServer.port: must be an integer from 0 to 65535, got 70000',
    'webServer.password: must be a string, got a boolean',
    'detailedErrorsToClient: must be true or false, got "yes"',
  ])
})

test('the error message lists every problem, one per line, and never the secret value', T, () => {
  try {
    validateServerConfig({ bindPort: -5, auth: { token: 424242 }, webServer: { password: 99 } })
    assert.fail('accepted')
  } catch (err) {
    assert.ok(err instanceof WsfrpError)
    assert.ok(isWsfrpError(err, 'ERR_CONFIG'))
    const msg = (err as Error).message
    assert.match(msg, /^invalid server config \(3 problems\):\n/)
    assert.match(msg, /\n {2}bindPort: must be an integer from 0 to 65535, got -5/)
    assert.match(msg, /\n {2}auth\.token: must be a string, got a number/)
    assert.doesNotMatch(msg, /424242/)
    assert.doesNotMatch(msg, /\b99\b/)
  }
})

test('a single problem gives a one-line message', T, () => {
  assert.throws(() => validateServerConfig({ bindPort: 65536 }), {
    message: 'invalid server config: bindPort: must be an integer from 0 to 65535, got 65536',
  })
})

test('unknown keys are errors with a "did you mean" suggestion', T, () => {
  assert.deepEqual(lines({ bindprot: 1, auth: { tokne: 'x' }, transport: { maxPoolCont: 2 }, zzz: 1 }), [
    'bindprot: unknown key "bindprot" (did you mean "bindPort"?)',
    'zzz: unknown key "zzz"',
    'auth.tokne: unknown key "tokne" (did you mean "token"?)',
    'transport.maxPoolCont: unknown key "maxPoolCont" (did you mean "maxPoolCount"?)',
  ])
  // Case-only mistakes are caught as well.
  assert.deepEqual(lines({ vhostHttpPort: 80 }), ['vhostHttpPort: unknown key "vhostHttpPort" (did you mean "vhostHTTPPort"?)'])
})

test("frp's legacy INI snake_case names point at the new name", T, () => {
  assert.deepEqual(lines({ bind_port: 7000, token: 's', dashboard_port: 7500, common: {} }), [
    'bind_port: unknown key "bind_port": this is frp\'s legacy INI name; the frp >= 0.52 TOML name is "bindPort"',
    'token: unknown key "token": this is frp\'s legacy INI name; the frp >= 0.52 TOML name is "auth.token"',
    'dashboard_port: unknown key "dashboard_port": this is frp\'s legacy INI name; the frp >= 0.52 TOML name is "webServer.port"',
    'common: unknown key "common": this is frp\'s legacy INI [common] section; frp >= 0.52 TOML puts its keys at the top level',
  ])
  // Inside a table, snake_case is mapped onto that table's keys.
  assert.deepEqual(lines({ transport: { max_pool_count: 5 } }), [
    'transport.max_pool_count: unknown key "max_pool_count": this is frp\'s legacy INI name; the frp >= 0.52 TOML name is "transport.maxPoolCount"',
  ])
})

test('frp settings wsfrp does not implement are named as such', T, () => {
  assert.deepEqual(lines({ vhostHTTPSPort: 443, transport: { tcpMux: true }, enablePrometheus: true }), [
    'vhostHTTPSPort: unknown key "vhostHTTPSPort": an frp setting that wsfrp does not support (https vhost proxies are not supported yet)',
    'enablePrometheus: unknown key "enablePrometheus": an frp setting that wsfrp does not support yet',
    'transport.tcpMux: unknown key "tcpMux": an frp setting that wsfrp does not support (yamux is always on)',
  ])
})

test('a non-table config or section is reported once, not field by field', T, () => {
  assert.deepEqual(lines([1, 2]), ['a server config must be a table of settings, got an array'])
  assert.deepEqual(lines({ transport: 'fast', log: ['x'] }), ['transport: must be a table, got "fast"', 'log: must be a table, got an array'])
})

test('keys named __proto__ or constructor are plain unknown keys', T, () => {
  const raw: unknown = JSON.parse('{"__proto__": {"bindPort": 1}, "constructor": 1}')
  assert.deepEqual(lines(raw), ['__proto__: unknown key "__proto__"', 'constructor: unknown key "constructor"'])
})

test('allowPorts accepts frp ranges and singles and normalises them', T, () => {
  const cfg = validateServerConfig({ allowPorts: [{ start: 2000, end: 3000 }, { single: 3001 }, { start: 5, end: 5 }] })
  assert.deepEqual(cfg.allowPorts, [
    { start: 2000, end: 3000 },
    { start: 3001, end: 3001 },
    { start: 5, end: 5 },
  ])
  assert.equal(isPortAllowed(2000, cfg.allowPorts), true)
  assert.equal(isPortAllowed(3000, cfg.allowPorts), true)
  assert.equal(isPortAllowed(3001, cfg.allowPorts), true)
  assert.equal(isPortAllowed(3002, cfg.allowPorts), false)
  assert.equal(isPortAllowed(1999, cfg.allowPorts), false)
  assert.equal(isPortAllowed(12345, []), true, 'an empty list allows every port')
})

test('allowPorts problems name the entry', T, () => {
  assert.deepEqual(
    lines({
      allowPorts: [{ start: 3000, end: 2000 }, { single: 0 }, { start: 1 }, { single: 1, end: 2 }, { from: 1, start: 1, end: 2 }, '80'],
    }),
    [
      'allowPorts[0]: start (3000) must not be greater than end (2000)',
      'allowPorts[1].single: must be an integer from 1 to 65535, got 0',
      'allowPorts[2].end: is required: an integer from 1 to 65535',
      'allowPorts[3]: use either single or start/end, not both',
      'allowPorts[4].from: unknown key "from"',
      'allowPorts[5]: must be a table like { start = 2000, end = 3000 } or { single = 3001 }, got "80"',
    ],
  )
  assert.deepEqual(lines({ allowPorts: { start: 1, end: 2 } }), [
    'allowPorts: must be an array of { start, end } or { single } tables, got a table',
  ])
})

test('wsPaths: /~!frp is always served and duplicates are refused', T, () => {
  const cfg = validateServerConfig({ transport: { wsPaths: ['/tunnel', '/~!frp', '/other'] } })
  assert.deepEqual(cfg.transport.wsPaths, ['/tunnel', '/other'])
  assert.deepEqual(serverWsPaths(cfg), ['/~!frp', '/tunnel', '/other'])
  assert.deepEqual(serverWsPaths(defaultServerConfig()), ['/~!frp'])
  assert.deepEqual(lines({ transport: { wsPaths: ['/a', '/a'] } }), ['transport.wsPaths[1]: "/a" is listed twice'])
})

test('tls needs certFile and keyFile together', T, () => {
  assert.deepEqual(lines({ transport: { tls: { keyFile: '/k.pem' } } }), ['transport.tls.certFile: must be set when transport.tls.keyFile is set'])
  const ok = validateServerConfig({ transport: { tls: { certFile: '/c.pem', keyFile: '/k.pem' } } })
  assert.deepEqual(ok.transport.tls, { certFile: '/c.pem', keyFile: '/k.pem' })
})

test('a full valid server config round-trips its values', T, () => {
  const cfg = validateServerConfig({
    bindAddr: '::',
    bindPort: 443,
    subDomainHost: 'tunnel.example.com',
    auth: { token: 't', additionalScopes: ['NewWorkConns'] },
    maxPortsPerClient: 3,
    transport: { maxPoolCount: 50, tcpMuxKeepaliveInterval: 60, heartbeatTimeout: 90 },
    userConnTimeout: 20,
    log: { level: 'trace', to: '/var/log/x.log', maxDays: 1, disablePrintColor: true },
    webServer: { addr: '0.0.0.0', port: 7500, user: 'u', password: 'p' },
    detailedErrorsToClient: false,
  })
  assert.equal(cfg.proxyBindAddr, '::')
  assert.equal(cfg.vhostHTTPPort, 443)
  assert.deepEqual(cfg.auth, { method: 'token', token: 't', additionalScopes: ['NewWorkConns'], users: [] })
  assert.deepEqual(cfg.transport, { maxPoolCount: 50, tcpMuxKeepaliveInterval: 60, heartbeatTimeout: 90, wsPaths: [], tls: { certFile: '', keyFile: '' } })
  assert.deepEqual(cfg.log, { level: 'trace', to: '/var/log/x.log', maxDays: 1, disablePrintColor: true })
  assert.deepEqual(cfg.webServer, { addr: '0.0.0.0', port: 7500, user: 'u', password: 'p' })
  assert.equal(cfg.detailedErrorsToClient, false)
})

test('a validated config validates again to the same value (bindPort 0 included)', T, () => {
  for (const raw of [{}, { bindPort: 0 }, { allowPorts: [{ single: 5 }], transport: { wsPaths: ['/x'] }, vhostHTTPPort: 80 }]) {
    const once = validateServerConfig(raw)
    assert.deepEqual(validateServerConfig(JSON.parse(JSON.stringify(once))), once)
  }
})

test('instanceof ConfigError is true only for config errors', T, () => {
  assert.equal(new WsfrpError('ERR_CONFIG', 'x') instanceof ConfigError, false)
  assert.equal(new WsfrpError('ERR_AUTH', 'x') instanceof ConfigError, false)
  const e = new ConfigError([{ path: 'a', message: 'b' }], { kind: 'server' })
  assert.ok(e instanceof ConfigError)
  assert.ok(e instanceof WsfrpError)
  assert.equal(e.message, 'invalid server config: a: b')
})
