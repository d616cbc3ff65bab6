/**
 * wsfrpc reloads its configuration file on SIGHUP: proxies come and go while a connection through
 * another proxy stays open and working; a file that does not validate changes nothing.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { Harness, clientToml, dial, echoOn, portIsFree, proxyUp, roundTrip, tcpProxy, until } from '../src/harness.js'
import { startEchoServer } from '../src/services.js'

const h = new Harness()
after(() => h.cleanup())

test('SIGHUP: a proxy is added, a bad file is refused, the proxy is removed; a held connection never drops', { timeout: 60_000 }, async () => {
  const echo = await startEchoServer()
  const other = await startEchoServer()
  try {
    const server = await h.server()
    const { proc: client, file } = h.client(server.port, tcpProxy('keep', echo.port))
    const keepPort = Number((await client.waitForLine(proxyUp('keep')))[1])

    // The connection that must survive every reload.
    const held = await dial(keepPort)
    let heldClosed = false
    held.on('close', () => (heldClosed = true))
    await echoOn(held, 'before any reload')

    // 1. Add a proxy.
    let since = client.lines.length
    writeFileSync(file, clientToml(server.port, tcpProxy('keep', echo.port) + tcpProxy('added', other.port)))
    process.kill(client.pid, 'SIGHUP')
    const addedPort = Number((await client.waitForLine(proxyUp('added'), { since }))[1])
    assert.equal((await roundTrip(addedPort, 'through the new proxy')).toString(), 'through the new proxy')
    assert.ok(other.accepted >= 1, 'the new proxy reaches its own local service')
    await echoOn(held, 'after adding a proxy')

    // 2. A file that does not validate: refused with its problems (file and line), nothing changes.
    since = client.lines.length
    writeFileSync(file, clientToml(server.port, 'bogusKey = 1\n' + tcpProxy('keep', echo.port) + tcpProxy('added', other.port).replace(/localPort = \d+/, 'localPort = "abc"')))
    process.kill(client.pid, 'SIGHUP')
    await client.waitForLine(/reload refused: .* has 2 problems; the running configuration is kept/, { since })
    await client.waitForLine(/reload: .*client-.*\.toml:\d+: proxies\[1\]\.localPort: must be an integer from 1 to 65535, got "abc"/, { since })
    await client.waitForLine(/reload: .*client-.*\.toml:\d+: bogusKey: unknown key "bogusKey"/, { since })
    assert.equal((await roundTrip(addedPort, 'still there')).toString(), 'still there')
    await echoOn(held, 'after a refused reload')

    // 3. Remove the added proxy: its port is closed on the server; the held connection goes on.
    since = client.lines.length
    const serverSince = server.proc.lines.length
    writeFileSync(file, clientToml(server.port, tcpProxy('keep', echo.port)))
    process.kill(client.pid, 'SIGHUP')
    await client.waitForLine(/\[added\] proxy removed by a reload/, { since })
    await server.proc.waitForLine(new RegExp(`\\[added\\] tcp proxy closed port=${addedPort}`), { since: serverSince })
    assert.ok(await until(() => portIsFree(addedPort), 100), `port ${addedPort} is free again`)
    await echoOn(held, 'after removing a proxy')
    assert.equal(heldClosed, false, 'the connection through the untouched proxy was never closed')
    assert.equal(client.lines.filter((l) => /disconnected from/.test(l)).length, 0, 'the session itself never dropped')
    held.destroy()
  } finally {
    await echo.close()
    await other.close()
  }
})
