/**
 * wsfrpc through a SOCKS5 proxy (RFC 1928 CONNECT with RFC 1929 username/password). Debian has no
 * SOCKS server that runs unprivileged in the foreground with its own user list (dante checks system
 * accounts), so the proxy is written here, small and strict: it refuses what it does not expect.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import * as net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { missingTools } from '../src/nginx.js'
import { startEchoServer, type Service } from '../src/services.js'
import { createTestCa, type TestCa } from '../src/tls.js'
import { MiB, Procs, echoTransfer, proxyPort, startClient, startServer } from '../src/tunnel.js'

const skip = missingTools('SOCKS5 proxy', [{ bin: 'openssl', args: ['version'], pkg: 'openssl' }])

interface Socks5Server {
  port: number
  /** One record per CONNECT that was granted: the user and the target exactly as the client sent it. */
  granted: { user: string; atyp: 'ipv4' | 'domain' | 'ipv6'; host: string; port: number }[]
  /** Authentication failures, by user name. */
  refusedUsers: string[]
  close(): Promise<void>
}

/** Reads exactly `n` bytes from a paused-mode socket, in order, across chunks. */
function byteReader(sock: net.Socket): (n: number) => Promise<Buffer> {
  let buf = Buffer.alloc(0)
  let want: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined
  const pump = (): void => {
    if (want !== undefined && buf.length >= want.n) {
      const w = want
      want = undefined
      const out = buf.subarray(0, w.n)
      buf = buf.subarray(w.n)
      w.resolve(out)
    }
  }
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d])
    pump()
  })
  sock.on('close', () => want?.reject(new Error('closed')))
  return (n) =>
    new Promise<Buffer>((resolve, reject) => {
      want = { n, resolve, reject }
      pump()
    })
}

async function startSocks5Server(users: Record<string, string>): Promise<Socks5Server> {
  const granted: Socks5Server['granted'] = []
  const refusedUsers: string[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer(async (client) => {
    sockets.add(client)
    client.on('close', () => sockets.delete(client))
    client.on('error', () => {})
    const read = byteReader(client)
    try {
      // Greeting: VER NMETHODS METHODS…; only username/password (2) is acceptable here.
      const [ver, nmethods] = await read(2)
      const methods = [...(await read(nmethods!))]
      if (ver !== 5 || !methods.includes(2)) return void client.end(Buffer.from([5, 0xff]))
      client.write(Buffer.from([5, 2]))
      // RFC 1929: VER ULEN UNAME PLEN PASSWD.
      const [authVer, ulen] = await read(2)
      const user = (await read(ulen!)).toString('utf8')
      const [plen] = await read(1)
      const pass = (await read(plen!)).toString('utf8')
      if (authVer !== 1 || users[user] !== pass) {
        refusedUsers.push(user)
        return void client.end(Buffer.from([1, 1]))
      }
      client.write(Buffer.from([1, 0]))
      // Request: VER CMD RSV ATYP DST.ADDR DST.PORT; CONNECT (1) only.
      const [rver, cmd, , atyp] = await read(4)
      let host: string
      let kind: Socks5Server['granted'][number]['atyp']
      if (atyp === 1) {
        host = [...(await read(4))].join('.')
        kind = 'ipv4'
      } else if (atyp === 3) {
        host = (await read((await read(1))[0]!)).toString('utf8')
        kind = 'domain'
      } else if (atyp === 4) {
        const b = await read(16)
        host = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(':')
        kind = 'ipv6'
      } else {
        return void client.end(Buffer.from([5, 8, 0, 1, 0, 0, 0, 0, 0, 0]))
      }
      const port = (await read(2)).readUInt16BE(0)
      if (rver !== 5 || cmd !== 1) return void client.end(Buffer.from([5, 7, 0, 1, 0, 0, 0, 0, 0, 0]))
      // Loopback only, whatever the client asks for.
      const dest = kind === 'domain' && host === 'localhost' ? '127.0.0.1' : host
      if (!['127.0.0.1', '0:0:0:0:0:0:0:1'].includes(dest)) return void client.end(Buffer.from([5, 2, 0, 1, 0, 0, 0, 0, 0, 0]))
      const upstream = net.connect({ host: dest, port })
      sockets.add(upstream)
      upstream.on('close', () => sockets.delete(upstream))
      upstream.on('error', () => {
        client.end(Buffer.from([5, 5, 0, 1, 0, 0, 0, 0, 0, 0]))
      })
      await once(upstream, 'connect')
      granted.push({ user, atyp: kind, host, port })
      const bound = upstream.address() as net.AddressInfo
      const reply = Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, bound.port >> 8, bound.port & 0xff])
      client.removeAllListeners('data')
      client.write(reply)
      upstream.pipe(client)
      client.pipe(upstream)
      client.on('close', () => upstream.destroy())
      upstream.on('close', () => client.destroy())
    } catch {
      client.destroy()
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as net.AddressInfo).port,
    granted,
    refusedUsers,
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

describe('wsfrpc through a SOCKS5 proxy', { timeout: 120_000, skip }, () => {
  const procs = new Procs()
  let tmp: string
  let ca: TestCa
  let socks: Socks5Server
  let echo: Service
  let ws: { port: number }
  let wss: { port: number }

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'wsfrp-socks5-'))
    ca = createTestCa(tmp)
    const cert = ca.issue('server', ['DNS:localhost', 'IP:127.0.0.1'])
    echo = await startEchoServer()
    socks = await startSocks5Server({ carol: 'c@rol pass' })
    ws = await startServer(procs, tmp)
    wss = await startServer(procs, tmp, `transport.tls.certFile = "${cert.certFile}"\ntransport.tls.keyFile = "${cert.keyFile}"`)
  })

  after(async () => {
    await procs.stopAll()
    await socks?.close()
    await echo?.close()
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true })
  })

  test('ws:// with transport.proxyURL = socks5://…: 16 MiB echoed, equal by sha256; the proxy saw an IPv4 target', { timeout: 60_000 }, async () => {
    const client = startClient(procs, tmp, {
      settings: ['serverAddr = "127.0.0.1"', `serverPort = ${ws.port}`, `transport.proxyURL = "socks5://carol:c%40rol%20pass@127.0.0.1:${socks.port}"`],
      proxies: [{ name: 'echo', localPort: echo.port }],
    })
    const port = await proxyPort(client, 'echo')
    const r = await echoTransfer(port, 16)
    assert.equal(r.bytes, 16 * MiB)
    assert.equal(r.got, r.sent)
    assert.deepEqual(socks.granted.at(-1), { user: 'carol', atyp: 'ipv4', host: '127.0.0.1', port: ws.port })
    await client.stop()
  })

  test('wss:// with ALL_PROXY = socks5h://…: the proxy resolves the name, TLS is verified inside the tunnel', { timeout: 60_000 }, async () => {
    const client = startClient(procs, tmp, {
      settings: [`serverURL = "wss://localhost:${wss.port}/~!frp"`, `transport.tls.trustedCaFile = "${ca.caFile}"`],
      proxies: [{ name: 'echo', localPort: echo.port }],
      env: { ALL_PROXY: `socks5h://carol:c%40rol%20pass@127.0.0.1:${socks.port}` },
    })
    const port = await proxyPort(client, 'echo')
    assert.ok(client.lines.some((l) => l.includes(`using proxy socks5h://carol@127.0.0.1:${socks.port} (ALL_PROXY)`)), client.lines.join('\n'))
    const r = await echoTransfer(port, 8)
    assert.equal(r.got, r.sent)
    assert.deepEqual(socks.granted.at(-1), { user: 'carol', atyp: 'domain', host: 'localhost', port: wss.port })
    await client.stop()
  })

  test('a wrong SOCKS5 password: the client exits with one line, without the password', { timeout: 60_000 }, async () => {
    const client = startClient(procs, tmp, {
      settings: ['serverAddr = "127.0.0.1"', `serverPort = ${ws.port}`, `transport.proxyURL = "socks5://carol:guess@127.0.0.1:${socks.port}"`],
      proxies: [{ name: 'echo', localPort: echo.port }],
    })
    assert.equal(await client.exited, 1)
    assert.deepEqual(
      client.lines.filter((l) => l.startsWith('wsfrpc: ')),
      [`wsfrpc: connect to ws://127.0.0.1:${ws.port}/~!frp failed: proxy socks5://carol@127.0.0.1:${socks.port} refused the SOCKS5 credentials of user "carol"`],
    )
    assert.ok(!client.lines.some((l) => l.includes('guess')))
    assert.deepEqual(socks.refusedUsers, ['carol'])
  })
})
