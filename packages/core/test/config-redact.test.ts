import { test } from 'node:test'
import assert from 'node:assert/strict'
import { REDACTED, redactConfig, validateClientConfig, validateServerConfig } from '@wsfrp/core'

const T = { timeout: 5_000 }

test('no client secret survives JSON.stringify(redactConfig(cfg))', T, () => {
  const secrets = ['tok-SECRET-1', 'proxy-SECRET-2', 'url-SECRET-3', 'http-SECRET-4', 'group-SECRET-5', 'urluser-SECRET-6']
  const cfg = validateClientConfig({
    serverURL: `wss://urluser-SECRET-6:url-SECRET-3@tunnel.example.com/x`,
    auth: { token: 'tok-SECRET-1' },
    transport: { proxyURL: 'http://puser:proxy-SECRET-2@proxy:3128' },
    proxies: [
      { name: 'web', type: 'http', localPort: 80, subdomain: 'w', httpUser: 'alice', httpPassword: 'http-SECRET-4' },
      { name: 'ssh', type: 'tcp', localPort: 22, loadBalancer: { group: 'g', groupKey: 'group-SECRET-5' } },
    ],
  })
  const before = JSON.stringify(cfg)
  const out = redactConfig(cfg)
  const text = JSON.stringify(out)
  for (const s of secrets) assert.ok(!text.includes(s), `${s} leaked: ${text}`)
  // The rest stays readable and the input is untouched.
  assert.equal(out.auth.token, REDACTED)
  assert.equal(out.serverURL, `wss://${REDACTED}@tunnel.example.com/x`)
  assert.equal(out.transport.proxyURL, `http://${REDACTED}@proxy:3128`)
  assert.equal(out.proxies[0]?.type === 'http' && out.proxies[0].httpPassword, REDACTED)
  assert.equal(out.proxies[0]?.type === 'http' && out.proxies[0].httpUser, 'alice')
  assert.equal(out.proxies[1]?.loadBalancer.groupKey, REDACTED)
  assert.equal(out.proxies[1]?.loadBalancer.group, 'g')
  assert.equal(JSON.stringify(cfg), before)
  assert.notEqual(out, cfg)
})

test('no server secret survives, and empty secrets stay visibly empty', T, () => {
  const cfg = validateServerConfig({ auth: { token: 'srv-SECRET' }, webServer: { port: 7500, user: 'admin', password: 'dash-SECRET' } })
  const text = JSON.stringify(redactConfig(cfg))
  assert.ok(!text.includes('srv-SECRET'))
  assert.ok(!text.includes('dash-SECRET'))
  assert.equal(redactConfig(cfg).webServer.user, 'admin')
  assert.equal(cfg.auth.token, 'srv-SECRET', 'input must not be modified')

  const empty = redactConfig(validateServerConfig({}))
  assert.equal(empty.auth.token, '')
  assert.equal(empty.webServer.password, '')
  const c = redactConfig(validateClientConfig({ serverURL: 'ws://h:1/p' }))
  assert.equal(c.serverURL, 'ws://h:1/p', 'a URL without credentials is unchanged')
})
