import { test } from 'node:test'
import assert from 'node:assert/strict'
import { validateClientConfig, type ClientConfig } from '@wsfrp/core'
import { createClient, planReload } from '@wsfrp/client-node'
import { echoThrough, startEcho, startFrps } from './support/frps.js'

const TOKEN = 'reload-test-token'

function config(port: number, proxies: { name: string; localPort: number }[], extra: Record<string, unknown> = {}): ClientConfig {
  return validateClientConfig({
    serverAddr: '127.0.0.1',
    serverPort: port,
    auth: { token: TOKEN },
    proxies: proxies.map((p) => ({ name: p.name, type: 'tcp', localIP: '127.0.0.1', localPort: p.localPort })),
    ...extra,
  })
}

test('planReload: added, removed, changed proxies, and the other keys that need a restart', { timeout: 5_000 }, () => {
  const before = config(7000, [
    { name: 'a', localPort: 1 },
    { name: 'b', localPort: 2 },
    { name: 'gone', localPort: 3 },
  ])
  const after = config(7001, [{ name: 'a', localPort: 1 }, { name: 'b', localPort: 20 }, { name: 'new', localPort: 4 }], { user: 'x' })
  const { next, ...r } = planReload(before, after)
  assert.deepEqual(r, { added: ['new'], removed: ['gone'], changed: ['b'], ignored: ['serverPort', 'user'] })
  assert.deepEqual(
    next.map((p) => p.name),
    ['a', 'b', 'new'],
  )
  assert.deepEqual(planReload(before, before), { added: [], removed: [], changed: [], ignored: [], next: before.proxies })
})

test('reload() on a live session: adds, re-registers a changed proxy, removes; the untouched one is never re-sent', { timeout: 20_000 }, async () => {
  const frps = await startFrps({ token: TOKEN })
  const one = await startEcho()
  const two = await startEcho()
  const client = createClient(config(frps.port, [{ name: 'keep', localPort: one.port }, { name: 'move', localPort: one.port }]), { env: {} })
  try {
    await client.start()
    await frps.until(() => frps.proxies.has('keep') && frps.proxies.has('move'))
    const r = client.reload(config(frps.port, [{ name: 'keep', localPort: one.port }, { name: 'move', localPort: two.port }, { name: 'added', localPort: two.port }], { serverPort: 1 }))
    assert.deepEqual(r, { added: ['added'], removed: [], changed: ['move'], ignored: ['serverPort'] })
    await frps.until(() => frps.proxies.has('added') && frps.newProxyCount.get('move') === 2 && frps.proxies.has('move'))
    const before = two.connections
    assert.equal(await echoThrough(frps.proxies.get('move')!, 'moved'), 'moved')
    assert.equal(two.connections, before + 1, 'the changed proxy now reaches its new local port')
    assert.equal(await echoThrough(frps.proxies.get('added')!, 'new'), 'new')

    client.reload(config(frps.port, [{ name: 'keep', localPort: one.port }]))
    await frps.until(() => !frps.proxies.has('added') && !frps.proxies.has('move'))
    assert.deepEqual(
      client.status().proxies.map((p) => p.name),
      ['keep'],
    )
    assert.equal(frps.newProxyCount.get('keep'), 1, 'the untouched proxy was registered once')
    assert.equal(await echoThrough(frps.proxies.get('keep')!, 'still'), 'still')
  } finally {
    await client.stop()
    await frps.close()
    await one.close()
    await two.close()
  }
})

test('reload() before start(): the new proxies are the ones registered at login', { timeout: 20_000 }, async () => {
  const frps = await startFrps({ token: TOKEN })
  const echo = await startEcho()
  const client = createClient(config(frps.port, [{ name: 'old', localPort: echo.port }]), { env: {} })
  try {
    client.reload(config(frps.port, [{ name: 'fresh', localPort: echo.port }]))
    await client.start()
    await frps.until(() => frps.proxies.has('fresh'))
    assert.equal(frps.newProxyCount.get('old'), undefined)
  } finally {
    await client.stop()
    await frps.close()
    await echo.close()
  }
})
