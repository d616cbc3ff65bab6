/**
 * The tunnel end to end: wsfrps and wsfrpc as separate processes on loopback, real TCP services
 * behind the client, real user connections in front of the server.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startCli, type Proc } from '../src/process.js'
import { startBulkServer, startEchoServer, type Service } from '../src/services.js'

const TOKEN = 'e2e-token'
const MiB = 1024 * 1024
const READY_SERVER = /listening on ws:\/\/127\.0\.0\.1:(\d+)\/~!frp/
const proxyUp = (name: string) => new RegExp(`\\[${name}\\] tcp proxy running: .* ⇐ .*:(\\d+)\\s*$`)

const procs = new Set<Proc>()
const tmp = mkdtempSync(join(tmpdir(), 'wsfrp-e2e-'))
after(async () => {
  await Promise.all([...procs].map((p) => p.stop()))
  rmSync(tmp, { recursive: true, force: true })
})

function track(p: Proc): Proc {
  procs.add(p)
  void p.exited.then(() => procs.delete(p))
  return p
}

async function startServer(extraToml = '', port = 0): Promise<{ proc: Proc; port: number }> {
  const file = join(tmp, `server-${Math.random().toString(16).slice(2)}.toml`)
  writeFileSync(file, `bindAddr = "127.0.0.1"\nbindPort = ${port}\nproxyBindAddr = "127.0.0.1"\nauth.token = "${TOKEN}"\n${extraToml}\n`)
  const proc = track(startCli('server', ['-c', file]))
  const [, p] = await proc.waitForLine(READY_SERVER)
  return { proc, port: Number(p) }
}

function startClient(serverPort: number, proxies: { name: string; localPort: number; remotePort?: number }[], opts: { token?: string; loginFailExit?: boolean } = {}): Proc {
  const file = join(tmp, `client-${Math.random().toString(16).slice(2)}.toml`)
  const lines = [
    `serverAddr = "127.0.0.1"`,
    `serverPort = ${serverPort}`,
    `auth.token = "${opts.token ?? TOKEN}"`,
    `loginFailExit = ${opts.loginFailExit ?? false}`,
    ...proxies.flatMap((p) => ['', '[[proxies]]', `name = "${p.name}"`, `type = "tcp"`, `localIP = "127.0.0.1"`, `localPort = ${p.localPort}`, `remotePort = ${p.remotePort ?? 0}`]),
  ]
  writeFileSync(file, lines.join('\n') + '\n')
  return track(startCli('client', ['-c', file]))
}

async function dial(port: number): Promise<net.Socket> {
  const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  await once(s, 'connect')
  return s
}

/** Sends `data`, half-closes, and collects the whole reply until the server's FIN. */
async function roundTrip(port: number, data: Buffer): Promise<Buffer> {
  const s = await dial(port)
  const chunks: Buffer[] = []
  const done = new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => chunks.push(d))
    s.on('end', () => resolve())
    s.on('error', reject)
  })
  s.end(data)
  await done
  s.destroy()
  return Buffer.concat(chunks)
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

describe('tcp tunnel through wsfrps + wsfrpc processes', { timeout: 240_000 }, () => {
  let echo: Service
  let bulk: Service
  let server: { proc: Proc; port: number }
  let client: Proc
  let echoPort: number
  let bulkPort: number

  before(async () => {
    echo = await startEchoServer()
    bulk = await startBulkServer()
    server = await startServer()
    client = startClient(server.port, [
      { name: 'echo', localPort: echo.port },
      { name: 'bulk', localPort: bulk.port },
    ])
    echoPort = Number((await client.waitForLine(proxyUp('echo')))[1])
    bulkPort = Number((await client.waitForLine(proxyUp('bulk')))[1])
  })
  after(async () => {
    await echo?.close()
    await bulk?.close()
  })

  test('echo through the tunnel; a client that half-closes after its request gets the full reply', { timeout: 20_000 }, async () => {
    const reply = await roundTrip(echoPort, Buffer.from('hello through wsfrp\n'))
    assert.equal(reply.toString(), 'hello through wsfrp\n')
    const big = randomBytes(3 * MiB)
    assert.equal(sha(await roundTrip(echoPort, big)), sha(big))
  })

  test('64 MiB each way, compared by sha256', { timeout: 120_000 }, async () => {
    // upload: the service counts the bytes and answers the count
    const s = await dial(bulkPort)
    const hash = createHash('sha256')
    let answer = ''
    const done = new Promise<void>((resolve, reject) => {
      s.setEncoding('utf8')
      s.on('data', (d: string) => (answer += d))
      s.on('end', () => resolve())
      s.on('error', reject)
    })
    s.write('U')
    for (let i = 0; i < 64; i++) {
      const chunk = randomBytes(MiB)
      hash.update(chunk)
      if (!s.write(chunk)) await once(s, 'drain')
    }
    s.end()
    await done
    assert.equal(Number(answer), 64 * MiB)
    // echo 64 MiB of random bytes both ways at once and compare digests
    const e = await dial(echoPort)
    const sent = createHash('sha256')
    const got = createHash('sha256')
    let gotBytes = 0
    const echoed = new Promise<void>((resolve, reject) => {
      e.on('data', (d: Buffer) => {
        got.update(d)
        gotBytes += d.length
      })
      e.on('end', () => resolve())
      e.on('error', reject)
    })
    for (let i = 0; i < 64; i++) {
      const chunk = randomBytes(MiB)
      sent.update(chunk)
      if (!e.write(chunk)) await once(e, 'drain')
    }
    e.end()
    await echoed
    assert.equal(gotBytes, 64 * MiB)
    assert.equal(got.digest('hex'), sent.digest('hex'))
  })

  test('200 concurrent connections', { timeout: 60_000 }, async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const msg = Buffer.from(`connection ${i} ` + 'x'.repeat(i * 10))
        return (await roundTrip(echoPort, msg)).equals(msg)
      }),
    )
    assert.equal(results.filter(Boolean).length, 200)
  })

  test('a second client with its own proxy works beside the first', { timeout: 30_000 }, async () => {
    const other = await startEchoServer()
    try {
      const c2 = startClient(server.port, [{ name: 'second', localPort: other.port }])
      const port = Number((await c2.waitForLine(proxyUp('second')))[1])
      assert.notEqual(port, echoPort)
      assert.equal((await roundTrip(port, Buffer.from('two'))).toString(), 'two')
      assert.equal((await roundTrip(echoPort, Buffer.from('one'))).toString(), 'one')
      assert.ok(other.accepted >= 1)
      await c2.stop()
    } finally {
      await other.close()
    }
  })

  test('port conflict: a proxy asking for a port in use gets a clear error, the others keep working', { timeout: 30_000 }, async () => {
    const c3 = startClient(server.port, [{ name: 'clash', localPort: echo.port, remotePort: echoPort }])
    await c3.waitForLine(/clash.*(already in use|in use|EADDRINUSE)/i)
    assert.equal((await roundTrip(echoPort, Buffer.from('still here'))).toString(), 'still here')
    await c3.stop()
  })

  test('wrong token: the client reports the server\'s message once and exits with loginFailExit', { timeout: 30_000 }, async () => {
    const bad = startClient(server.port, [{ name: 'x', localPort: echo.port }], { token: 'wrong', loginFailExit: true })
    await bad.waitForLine(/token in login doesn't match token from configuration/)
    const code = await bad.exited
    assert.notEqual(code, 0)
    assert.equal(bad.lines.filter((l) => /doesn't match/.test(l)).length, 1, bad.lines.join('\n'))
  })
})

describe('allowPorts', { timeout: 60_000 }, () => {
  test('a proxy outside allowPorts is refused with a readable error', { timeout: 30_000 }, async () => {
    const echo = await startEchoServer()
    const server = await startServer('allowPorts = [ { start = 20000, end = 20010 } ]')
    try {
      const c = startClient(server.port, [{ name: 'outside', localPort: echo.port, remotePort: 6000 }])
      await c.waitForLine(/outside.*port 6000 is not allowed/i)
      await c.stop()
    } finally {
      await server.proc.stop()
      await echo.close()
    }
  })
})

describe('faults', { timeout: 120_000 }, () => {
  test('client kill -9: the server frees the remote port', { timeout: 30_000 }, async () => {
    const echo = await startEchoServer()
    const server = await startServer()
    try {
      const c = startClient(server.port, [{ name: 'gone', localPort: echo.port }])
      const port = Number((await c.waitForLine(proxyUp('gone')))[1])
      const since = server.proc.lines.length
      await c.kill9()
      // The server notices the dead WebSocket and closes the proxy listener; wait for its log line.
      await server.proc.waitForLine(/gone|closed|logout|control/i, { since, timeoutMs: 20_000 })
      // Port free again: we can listen on it ourselves.
      let bound = false
      for (let i = 0; i < 50 && !bound; i++) {
        const probe = net.createServer()
        bound = await new Promise<boolean>((resolve) => {
          probe.once('error', () => resolve(false))
          probe.listen(port, '127.0.0.1', () => resolve(true))
        })
        if (bound) await new Promise<void>((r) => probe.close(() => r()))
        else await new Promise<void>((r) => setImmediate(r))
      }
      assert.ok(bound, `port ${port} is still taken after the client died`)
    } finally {
      await server.proc.stop()
      await echo.close()
    }
  })

  test('server restart: the client reconnects and the proxy works again without manual action', { timeout: 90_000 }, async () => {
    const echo = await startEchoServer()
    let server = await startServer()
    const serverPort = server.port
    try {
      const c = startClient(serverPort, [{ name: 'survivor', localPort: echo.port, remotePort: 0 }])
      const port1 = Number((await c.waitForLine(proxyUp('survivor')))[1])
      assert.equal((await roundTrip(port1, Buffer.from('before'))).toString(), 'before')
      const since = c.lines.length
      await server.proc.stop()
      server = await startServer('', serverPort)
      const port2 = Number((await c.waitForLine(proxyUp('survivor'), { since, timeoutMs: 60_000 }))[1])
      assert.equal((await roundTrip(port2, Buffer.from('after'))).toString(), 'after')
      await c.stop()
    } finally {
      await server.proc.stop()
      await echo.close()
    }
  })
})
