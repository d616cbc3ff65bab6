import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, redactConfig, validateServerConfig } from '@wsfrp/core'

const T = { timeout: 5_000 }

function lines(raw: unknown): string[] {
  try {
    validateServerConfig(raw)
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`)
    return err.issues.map((i) => `${i.path}: ${i.message}`)
  }
  assert.fail('validateServerConfig accepted an invalid config')
}

test('[[auth.users]]: defaults, normalisation, and the host check turned on by either list', T, () => {
  const cfg = validateServerConfig({
    auth: {
      token: 'shared',
      users: [
        { name: 'alice', token: 'a-token' },
        { name: 'demo', token: 'd-token', allowTypes: ['http'], subdomains: ['Demo'] },
        { name: 'ops', token: 'o-token', allowPorts: [{ start: 20000, end: 20010 }, { single: 3000 }], domains: ['*.Ops.Example.com'], maxProxies: 3, maxConnections: 10 },
      ],
    },
  })
  assert.deepEqual(cfg.auth.users, [
    { name: 'alice', token: 'a-token', allowTypes: ['tcp', 'http'], allowPorts: [], maxProxies: 0, maxConnections: 0 },
    { name: 'demo', token: 'd-token', allowTypes: ['http'], allowPorts: [], subdomains: ['demo'], domains: [], maxProxies: 0, maxConnections: 0 },
    {
      name: 'ops',
      token: 'o-token',
      allowTypes: ['tcp', 'http'],
      allowPorts: [
        { start: 20000, end: 20010 },
        { start: 3000, end: 3000 },
      ],
      subdomains: [],
      domains: ['*.ops.example.com'],
      maxProxies: 3,
      maxConnections: 10,
    },
  ])
  // A validated config validates again to the same value (createServer re-validates).
  assert.deepEqual(validateServerConfig(JSON.parse(JSON.stringify(cfg))), cfg)
})

test('[[auth.users]]: every problem is reported with its path, and never shows a token', T, () => {
  const got = lines({
    auth: {
      token: 'shared-secret',
      users: [
        { name: 'alice', token: 'same-secret' },
        { name: 'alice', token: 'same-secret' },
        { token: 'x1' },
        { name: 'bob', token: 'shared-secret' },
        { name: 'carol', token: '', allowTypes: ['udp'] },
        { name: 'dave', token: 'd', allowTypes: [], allowPorts: [{ start: 5, end: 1 }], subdomains: ['a.b'], domains: ['bad host'], maxProxies: -1, tokn: 'x' },
        'eve',
        { name: 'has space', token: 'h' },
      ],
    },
  })
  assert.deepEqual(got, [
    'auth.users[1].name: "alice" is listed twice',
    "auth.users[1].token: is the same as another user's token",
    'auth.users[2].name: is required',
    'auth.users[3].token: is the same as auth.token (which has full rights)',
    'auth.users[4].token: must not be empty',
    'auth.users[4].allowTypes[0]: must be "tcp" or "http", got "udp"',
    'auth.users[5].tokn: unknown key "tokn" (did you mean "token"?)',
    'auth.users[5].allowTypes: must list at least one proxy type (remove the user to allow nothing)',
    'auth.users[5].allowPorts[0]: start (5) must not be greater than end (1)',
    'auth.users[5].subdomains[0]: must be one DNS label (no dots) or "*", got "a.b"',
    'auth.users[5].domains[0]: must be a host name, "*.suffix" or "*", got "bad host"',
    'auth.users[5].maxProxies: must be an integer >= 0, got -1',
    'auth.users[6]: must be a table with name and token, got "eve"',
    'auth.users[7].name: must be 1 to 64 letters, digits or "_.@-", got "has space"',
  ])
  assert.ok(!got.join('\n').includes('secret'), 'no token in any message')
  assert.deepEqual(lines({ auth: { users: { name: 'x' } } }), ['auth.users: must be an array of tables ([[auth.users]]), got a table'])
})

test('users are not a client setting', T, async () => {
  const { validateClientConfig } = await import('@wsfrp/core')
  assert.throws(() => validateClientConfig({ auth: { users: [] } }), /auth\.users: unknown key "users"/)
})

test('redactConfig hides users\' tokens', T, () => {
  const cfg = validateServerConfig({ auth: { token: 's', users: [{ name: 'a', token: 'user-secret' }] } })
  const red = redactConfig(cfg)
  assert.equal(red.auth.users[0]!.token, '<redacted>')
  assert.equal(cfg.auth.users[0]!.token, 'user-secret', 'the input is not modified')
  assert.ok(!JSON.stringify(red).includes('user-secret'))
})

test('[limits]: every key is validated with its range and unit', T, () => {
  const ok = validateServerConfig({
    transport: { maxPoolCount: 2 },
    limits: {
      loginTimeout: 3,
      transportLoginTimeout: 4,
      maxPendingTransports: 0,
      maxClients: 0,
      maxProxiesPerClient: 2,
      maxStreamsPerSession: 16,
      sessionReceiveBudget: 0,
      maxMessageSize: 4096,
      maxWebSocketMessageSize: 8 * 1024 * 1024,
      maxHTTPHeaderSize: 2048,
      httpHeaderTimeout: 2,
      httpKeepAliveTimeout: 1,
      maxPendingUserConnsPerProxy: 1,
      loginFailures: 0,
      loginFailureWindow: 1,
      webLoginFailures: 0,
    },
  })
  assert.equal(ok.limits.maxStreamsPerSession, 16)
  assert.equal(ok.limits.loginFailures, 0)
  assert.equal(ok.limits.webLoginFailures, 0)
  assert.deepEqual(
    lines({
      limits: {
        loginTimeout: 0,
        transportLoginTimeout: 'x',
        maxPendingTransports: -2,
        maxClients: -1,
        maxProxiesPerClient: 1.5,
        maxStreamsPerSession: 1,
        sessionReceiveBudget: -1,
        maxMessageSize: 100,
        maxWebSocketMessageSize: 1024,
        maxHTTPHeaderSize: 10,
        httpHeaderTimeout: 0,
        httpKeepAliveTimeout: 0,
        maxPendingUserConnsPerProxy: 0,
        loginFailures: -1,
        loginFailureWindow: 0,
        webLoginFailures: 2.5,
        maxClient: 3,
      },
    }),
    [
      'limits.maxClient: unknown key "maxClient" (did you mean "maxClients"?)',
      'limits.loginTimeout: must be an integer from 1 to 3600 (seconds), got 0',
      'limits.transportLoginTimeout: must be an integer from 1 to 3600 (seconds), got "x"',
      'limits.maxPendingTransports: must be an integer from 0 to 2147483647, got -2',
      'limits.maxClients: must be an integer from 0 to 2147483647, got -1',
      'limits.maxProxiesPerClient: must be an integer from 0 to 2147483647, got 1.5',
      'limits.maxStreamsPerSession: must be an integer from 2 to 2147483647, got 1',
      'limits.sessionReceiveBudget: must be an integer from 0 to 9007199254740991 (bytes), got -1',
      'limits.maxMessageSize: must be an integer from 1024 to 1048576 (bytes), got 100',
      'limits.maxWebSocketMessageSize: must be an integer from 8388608 to 1073741824 (bytes), got 1024',
      'limits.maxHTTPHeaderSize: must be an integer from 1024 to 1048576 (bytes), got 10',
      'limits.httpHeaderTimeout: must be an integer from 1 to 3600 (seconds), got 0',
      'limits.httpKeepAliveTimeout: must be an integer from 1 to 3600 (seconds), got 0',
      'limits.maxPendingUserConnsPerProxy: must be an integer from 1 to 2147483647, got 0',
      'limits.loginFailures: must be an integer from 0 to 1000000, got -1',
      'limits.loginFailureWindow: must be an integer from 1 to 86400 (seconds), got 0',
      'limits.webLoginFailures: must be an integer from 0 to 1000000, got 2.5',
    ],
  )
  assert.deepEqual(lines({ transport: { maxPoolCount: 8 }, limits: { maxStreamsPerSession: 8 } }), [
    'limits.maxStreamsPerSession: must be greater than transport.maxPoolCount (8): a session needs its control stream and its pool',
  ])
})
