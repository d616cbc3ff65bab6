import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { parseClientConfigText, parseServerConfigText } from '@wsfrp/node'

const T = { timeout: 5_000 }

const DOC = new URL('../../../docs/CONFIG.md', import.meta.url)

// Values for every {{ .Envs.X }} the examples use; an unset one would fail the test on purpose.
const ENV = {
  FRP_TOKEN: 'doc-token',
  WSFRP_DASHBOARD_PASSWORD: 'doc-dash',
  WSFRP_USER: 'alice',
  PROXY_PASSWORD: 'doc-proxy',
  WEB_PASSWORD: 'doc-web',
  WEB_GROUP_KEY: 'doc-group',
  WSFRP_OPS_TOKEN: 'doc-ops',
  WSFRP_DEMO_TOKEN: 'doc-demo',
}

/** Every ```toml block of the doc, with the file name its first line declares (`# server.toml`). */
async function tomlBlocks(): Promise<{ name: string; text: string }[]> {
  const md = await readFile(DOC, 'utf8')
  const blocks: { name: string; text: string }[] = []
  for (const m of md.matchAll(/^```toml\n([\s\S]*?)^```$/gm)) {
    const text = m[1] as string
    const name = /^# (server|client)\.toml\n/.exec(text)?.[1]
    assert.ok(name !== undefined, `a toml block in docs/CONFIG.md does not start with "# server.toml" or "# client.toml":\n${text}`)
    blocks.push({ name: `${name}.toml`, text })
  }
  return blocks
}

test('every ```toml example in docs/CONFIG.md passes the validator', T, async () => {
  const blocks = await tomlBlocks()
  const servers = blocks.filter((b) => b.name === 'server.toml')
  const clients = blocks.filter((b) => b.name === 'client.toml')
  assert.ok(servers.length >= 1, 'docs/CONFIG.md must contain a full server.toml example')
  assert.ok(clients.length >= 1, 'docs/CONFIG.md must contain a full client.toml example')
  for (const b of servers) {
    const cfg = parseServerConfigText(b.text, `docs/CONFIG.md (${b.name})`, ENV)
    assert.equal(cfg.auth.token, 'doc-token')
  }
  for (const b of clients) {
    const cfg = parseClientConfigText(b.text, `docs/CONFIG.md (${b.name})`, ENV)
    assert.equal(cfg.auth.token, 'doc-token')
    assert.ok(cfg.proxies.some((p) => p.type === 'tcp'), 'the client example shows a tcp proxy')
    assert.ok(cfg.proxies.some((p) => p.type === 'http'), 'the client example shows an http proxy')
  }
})

test('the examples use every documented section', T, async () => {
  const blocks = await tomlBlocks()
  const server = parseServerConfigText((blocks.find((b) => b.name === 'server.toml') as { text: string }).text, 'server.toml', ENV)
  assert.deepEqual(server.allowPorts, [
    { start: 10000, end: 10999 },
    { start: 2222, end: 2222 },
  ])
  assert.deepEqual(server.transport.wsPaths, ['/tunnel'])
  assert.equal(server.webServer.password, 'doc-dash')
  const client = parseClientConfigText((blocks.find((b) => b.name === 'client.toml') as { text: string }).text, 'client.toml', ENV)
  assert.equal(client.user, 'alice')
  assert.equal(client.transport.protocol, 'wss')
  assert.equal(client.transport.proxyURL, 'http://proxyuser:doc-proxy@proxy.internal:3128')
  const web = client.proxies.find((p) => p.name === 'web')
  assert.ok(web !== undefined && web.type === 'http')
  assert.equal(web.httpPassword, 'doc-web')
  assert.equal(web.loadBalancer.groupKey, 'doc-group')
  assert.deepEqual(web.requestHeaders.set, { 'x-from-where': 'wsfrp' })
})
