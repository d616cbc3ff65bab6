import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import * as http from 'node:http'
import * as net from 'node:net'
import { fileURLToPath } from 'node:url'
import { isWsfrpError, validateClientConfig, type ClientConfig } from '@wsfrp/core'
import { createClient, createLogger } from '@wsfrp/client-node'
import { startFrps, type TestFrps } from './support/frps.js'

const T = { timeout: 20_000 }
const TOKEN = 'tls-test-token'
const FAST = { initialDelayMs: 10, maxDelayMs: 40, random: () => 0.5 }
const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
/** A CA and a certificate it signed for DNS:wsfrp.test only (test/fixtures/README.md). */
const TLS = { key: readFileSync(fixture('server.key')), cert: readFileSync(fixture('server.pem')) }

function wssConfig(frps: TestFrps, tls: Record<string, unknown>, extra: Record<string, unknown> = {}): ClientConfig {
  return validateClientConfig({
    serverAddr: '127.0.0.1',
    serverPort: frps.port,
    auth: { token: TOKEN },
    transport: { protocol: 'wss', tls },
    ...extra,
  })
}

test('wss with trustedCaFile and serverName: the certificate is verified and the login succeeds', T, async () => {
  const frps = await startFrps({ token: TOKEN, tls: TLS })
  const client = createClient(wssConfig(frps, { trustedCaFile: fixture('ca.pem'), serverName: 'wsfrp.test' }), { reconnect: FAST })
  try {
    await client.start()
    assert.equal(client.status().url, `wss://127.0.0.1:${frps.port}/~!frp`)
    assert.equal(frps.upgrades[0]?.headers.origin, `http://127.0.0.1:${frps.port}`)
  } finally {
    await client.stop()
    await frps.close()
  }
})

test('wss verifies by default: an unknown CA is refused', T, async () => {
  const frps = await startFrps({ token: TOKEN, tls: TLS })
  const client = createClient(wssConfig(frps, { serverName: 'wsfrp.test' }), { reconnect: FAST })
  try {
    await assert.rejects(client.start(), (err) => isWsfrpError(err, 'ERR_CONNECT') && /certificate/i.test(err.message))
    assert.equal(frps.logins.length, 0)
  } finally {
    await client.stop()
    await frps.close()
  }
})

test('wss checks the name: without serverName the IP is not in the certificate', T, async () => {
  const frps = await startFrps({ token: TOKEN, tls: TLS })
  const client = createClient(wssConfig(frps, { trustedCaFile: fixture('ca.pem') }), { reconnect: FAST })
  try {
    await assert.rejects(client.start(), (err) => isWsfrpError(err, 'ERR_CONNECT') && /altnames|does not match/i.test(err.message))
  } finally {
    await client.stop()
    await frps.close()
  }
})

test('an unreadable trustedCaFile is a configuration error, whatever loginFailExit says', T, async () => {
  const frps = await startFrps({ token: TOKEN, tls: TLS })
  const missing = fixture('no-such-ca.pem')
  const client = createClient(wssConfig(frps, { trustedCaFile: missing }, { loginFailExit: false }), { reconnect: FAST })
  try {
    await assert.rejects(client.start(), (err) => isWsfrpError(err, 'ERR_CONFIG') && err.message.includes(missing) && err.message.includes('ENOENT'))
    assert.equal(frps.upgrades.length, 0)
  } finally {
    await client.stop()
    await frps.close()
  }
})

interface ConnectProxy {
  port: number
  requests: { target: string; auth: string | undefined }[]
  close(): Promise<void>
}

/** An HTTP CONNECT proxy on 127.0.0.1:0 that requires Basic user:p@ss (407 otherwise). */
async function startConnectProxy(): Promise<ConnectProxy> {
  const requests: ConnectProxy['requests'] = []
  const sockets = new Set<net.Socket>()
  const server = http.createServer((_req, res) => res.writeHead(405).end())
  server.on('connection', (s: net.Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const auth = req.headers['proxy-authorization']
    requests.push({ target: req.url ?? '', auth })
    if (auth !== `Basic ${Buffer.from('user:p@ss').toString('base64')}`) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n')
      return
    }
    const m = /^(.*):(\d+)$/.exec(req.url ?? '')
    const upstream = net.connect({ host: m?.[1]?.replace(/^\[(.*)\]$/, '$1'), port: Number(m?.[2]) }, () => {
      client.write('HTTP/1.1 200 Connection established\r\n\r\n')
      if (head.length > 0) upstream.write(head)
      upstream.pipe(client)
      client.pipe(upstream)
    })
    sockets.add(upstream)
    upstream.on('close', () => {
      sockets.delete(upstream)
      client.destroy()
    })
    upstream.on('error', () => client.destroy())
    client.on('error', () => upstream.destroy())
    client.on('close', () => upstream.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

test('transport.proxyURL: ws:// through an HTTP CONNECT proxy with Basic credentials', T, async () => {
  const frps = await startFrps({ token: TOKEN })
  const proxy = await startConnectProxy()
  const lines: string[] = []
  const cfg = validateClientConfig({
    serverAddr: '127.0.0.1',
    serverPort: frps.port,
    auth: { token: TOKEN },
    transport: { proxyURL: `http://user:p%40ss@127.0.0.1:${proxy.port}` },
  })
  const client = createClient(cfg, { reconnect: FAST, logger: createLogger({ level: 'debug', write: (l) => lines.push(l) }) })
  try {
    await client.start()
    assert.deepEqual(proxy.requests, [{ target: `127.0.0.1:${frps.port}`, auth: `Basic ${Buffer.from('user:p@ss').toString('base64')}` }])
    assert.equal(frps.logins.length, 1)
    assert.ok(!lines.some((l) => l.includes('p@ss') || l.includes('p%40ss')))
  } finally {
    await client.stop()
    await proxy.close()
    await frps.close()
  }
})

test('transport.proxyURL: wss:// through the proxy verifies the server inside the tunnel', T, async () => {
  const frps = await startFrps({ token: TOKEN, tls: TLS })
  const proxy = await startConnectProxy()
  const cfg = wssConfig(frps, { trustedCaFile: fixture('ca.pem'), serverName: 'wsfrp.test' }, {})
  cfg.transport.proxyURL = `http://user:p%40ss@127.0.0.1:${proxy.port}`
  const client = createClient(cfg, { reconnect: FAST })
  try {
    await client.start()
    assert.equal(proxy.requests.length, 1)
    assert.equal(frps.logins.length, 1)
  } finally {
    await client.stop()
    await proxy.close()
    await frps.close()
  }
})

test('transport.proxyURL: a 407 from the proxy ends start() with a message that names no password', T, async () => {
  const frps = await startFrps({ token: TOKEN })
  const proxy = await startConnectProxy()
  const cfg = validateClientConfig({
    serverAddr: '127.0.0.1',
    serverPort: frps.port,
    auth: { token: TOKEN },
    transport: { proxyURL: `http://user:wrong-secret@127.0.0.1:${proxy.port}` },
  })
  const client = createClient(cfg, { reconnect: FAST })
  try {
    await assert.rejects(client.start(), (err) => {
      assert.ok(isWsfrpError(err, 'ERR_CONNECT'), String(err))
      assert.match(err.message, /407 Proxy Authentication Required/)
      assert.ok(!err.message.includes('wrong-secret'), err.message)
      return true
    })
    assert.equal(frps.upgrades.length, 0)
  } finally {
    await client.stop()
    await proxy.close()
    await frps.close()
  }
})
