/**
 * wsfrpc's admin API (frpc's `webServer`): a real wsfrpc process with `webServer.port` set, reloaded
 * through `wsfrpc reload -c FILE` (GET /api/reload) so that one proxy is added and another removed
 * while a connection through a third keeps working; `wsfrpc status -c FILE` and /api/status show
 * the proxies; Basic auth guards both.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import * as http from 'node:http'
import { writeFileSync } from 'node:fs'
import { startCli } from '../src/process.js'
import { Harness, clientToml, dial, echoOn, portIsFree, proxyUp, roundTrip, tcpProxy, until } from '../src/harness.js'
import { startEchoServer } from '../src/services.js'
// The admin port has to be written into the file before wsfrpc starts (`wsfrpc reload -c FILE`
// reads it from there), so port 0 cannot be used for it.
import { freePort } from '../src/nginx.js'

const h = new Harness()
after(() => h.cleanup())

function get(port: number, path: string, auth?: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = auth === undefined ? {} : { Authorization: `Basic ${Buffer.from(auth).toString('base64')}` }
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

/** Runs `wsfrpc <command> -c file` to its end; resolves with its exit code and output. */
async function wsfrpc(command: string, file: string): Promise<{ code: number | string; out: string }> {
  const p = h.track(startCli('client', [command, '-c', file], { name: `wsfrpc ${command}` }))
  const code = await p.exited
  return { code, out: p.lines.join('\n') }
}

test('admin API: reload adds a proxy and removes another while a connection through a third goes on', { timeout: 60_000 }, async () => {
  const echo = await startEchoServer()
  const other = await startEchoServer()
  try {
    const server = await h.server()
    const adminPort = await freePort()
    const admin = `webServer.port = ${adminPort}\nwebServer.user = "admin"\nwebServer.password = "admin-secret"\n`
    const { proc: client, file } = h.client(server.port, admin + tcpProxy('keep', echo.port) + tcpProxy('gone', other.port))
    const keepPort = Number((await client.waitForLine(proxyUp('keep')))[1])
    const gonePort = Number((await client.waitForLine(proxyUp('gone')))[1])
    await client.waitForLine(new RegExp(`admin API listening on 127\\.0\\.0\\.1:${adminPort}`))

    const held = await dial(keepPort)
    let heldClosed = false
    held.on('close', () => (heldClosed = true))
    await echoOn(held, 'before the reload')

    // Credentials: none or wrong → 401; /healthz is open (as frpc's).
    assert.equal((await get(adminPort, '/api/status')).status, 401)
    assert.equal((await get(adminPort, '/api/reload', 'admin:wrong')).status, 401)
    assert.equal((await get(adminPort, '/healthz')).status, 200)
    const before = JSON.parse((await get(adminPort, '/api/status', 'admin:admin-secret')).body) as Record<string, { name: string; status: string; remote_addr: string }[]>
    assert.deepEqual(before.tcp!.map((p) => [p.name, p.status]).sort(), [['gone', 'running'], ['keep', 'running']])
    assert.deepEqual(before.http, [])

    // The file changes: "gone" out, "added" in; `wsfrpc reload` asks the running client.
    let since = client.lines.length
    const serverSince = server.proc.lines.length
    writeFileSync(file, clientToml(server.port, admin + tcpProxy('keep', echo.port) + tcpProxy('added', other.port)))
    const r = await wsfrpc('reload', file)
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /reload success \(added: added; removed: gone; changed: none\)/)
    const addedPort = Number((await client.waitForLine(proxyUp('added'), { since }))[1])
    await client.waitForLine(/admin API: reloading .*client-.*\.toml/, { since })
    await server.proc.waitForLine(new RegExp(`\\[gone\\] tcp proxy closed port=${gonePort}`), { since: serverSince })
    assert.ok(await until(() => portIsFree(gonePort), 100), `port ${gonePort} is free again`)
    assert.equal((await roundTrip(addedPort, 'through the added proxy')).toString(), 'through the added proxy')
    await echoOn(held, 'after the reload')

    // `wsfrpc status` prints frpc's table.
    const st = await wsfrpc('status', file)
    assert.equal(st.code, 0, st.out)
    assert.match(st.out, /^TCP$/m)
    assert.match(st.out, new RegExp(`^keep\\s+running\\s+127\\.0\\.0\\.1:${echo.port}\\s+127\\.0\\.0\\.1:${keepPort}$`, 'm'))
    assert.match(st.out, /^added\s+running\s/m)
    assert.doesNotMatch(st.out, /^gone/m)

    // POST works too; a file that does not validate is refused with its problems, nothing changes.
    since = client.lines.length
    writeFileSync(file, clientToml(server.port, admin + 'bogusKey = 1\n' + tcpProxy('keep', echo.port)))
    const bad = await get(adminPort, '/api/reload', 'admin:admin-secret', 'POST')
    assert.equal(bad.status, 400)
    const badBody = JSON.parse(bad.body) as { error: string; problems: string[] }
    assert.match(badBody.error, /reload refused: .* has 1 problem; the running configuration is kept/)
    assert.match(badBody.problems[0]!, /bogusKey: unknown key "bogusKey"/)
    // `wsfrpc reload` reads the file too (for webServer): it names the problem before asking.
    const refused = await wsfrpc('reload', file)
    assert.equal(refused.code, 1)
    assert.match(refused.out, /wsfrpc: invalid client config: .*bogusKey: unknown key "bogusKey"/)
    assert.equal((await roundTrip(addedPort, 'still there')).toString(), 'still there')

    await echoOn(held, 'at the end')
    assert.equal(heldClosed, false, 'the connection through the untouched proxy was never closed')
    assert.equal(client.lines.filter((l) => /disconnected from/.test(l)).length, 0, 'the session itself never dropped')
    assert.ok(!client.lines.some((l) => l.includes('admin-secret')), 'the admin password is never logged')
    held.destroy()
  } finally {
    await echo.close()
    await other.close()
  }
})

test('wsfrpc reload without webServer.port says what to set', { timeout: 20_000 }, async () => {
  const file = h.file('no-admin.toml', clientToml(1, tcpProxy('x', 1)))
  const r = await wsfrpc('reload', file)
  assert.equal(r.code, 1)
  assert.match(r.out, /reload needs the admin API: set webServer\.port in .*no-admin\.toml/)
})
