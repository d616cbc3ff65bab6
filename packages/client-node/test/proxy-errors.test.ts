/**
 * Forward proxies from the client's side, in process: SOCKS5 (RFC 1928/1929) against a scripted
 * proxy, the CONNECT authentication hook across rounds, and the one-line message of every
 * misconfiguration (bad proxy scheme, dead proxy, 407, CA file, certificate name).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import * as net from 'node:net'
import { fileURLToPath } from 'node:url'
import { isWsfrpError, validateClientConfig, type ClientConfig } from '@wsfrp/core'
import { createClient, createLogger, type CreateClientOptions, type ProxyAuthChallenge } from '@wsfrp/client-node'
import { startFrps, type TestFrps } from './support/frps.js'

const T = { timeout: 20_000 }
const TOKEN = 'proxy-test-token'
const FAST = { initialDelayMs: 10, maxDelayMs: 40, random: () => 0.5 }
const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
/** Signed by fixtures/ca.pem for DNS:wsfrp.test only. */
const TLS = { key: readFileSync(fixture('server.key')), cert: readFileSync(fixture('server.pem')) }

function config(frps: TestFrps, transport: Record<string, unknown> = {}): ClientConfig {
  return validateClientConfig({ serverAddr: '127.0.0.1', serverPort: frps.port, auth: { token: TOKEN }, transport })
}

/** start() must fail; returns its message after checking the code. */
async function failure(cfg: ClientConfig, opts: CreateClientOptions, code: string): Promise<string> {
  const client = createClient(cfg, { reconnect: FAST, env: {}, ...opts })
  try {
    let message = ''
    await assert.rejects(client.start(), (err) => {
      assert.ok(isWsfrpError(err, code as never), `${code} expected, got ${String(err)}`)
      message = err.message
      return true
    })
    assert.doesNotMatch(message, /\n/, 'one line')
    return message
  } finally {
    await client.stop()
  }
}

/** A port nothing listens on: bound by the OS, then closed again. */
async function deadPort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const { port } = s.address() as net.AddressInfo
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

// ---- a scripted SOCKS5 proxy ---------------------------------------------------------------------

interface Socks5Script {
  /** Username/password it accepts; without, it accepts method 0 (no authentication). */
  creds?: { user: string; pass: string }
  /** Reply code for CONNECT; 0 = succeed and relay. */
  reply?: number
}

interface Socks5Fake {
  port: number
  /** What each client asked for: methods offered, user, and the CONNECT address as sent. */
  seen: { methods: number[]; user?: string; atyp?: number; host?: string; port?: number }[]
  close(): Promise<void>
}

async function startSocks5(script: Socks5Script): Promise<Socks5Fake> {
  const seen: Socks5Fake['seen'] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((c) => {
    sockets.add(c)
    c.on('close', () => sockets.delete(c))
    c.on('error', () => {})
    const rec: Socks5Fake['seen'][number] = { methods: [] }
    seen.push(rec)
    let buf = Buffer.alloc(0)
    let stage: 'greeting' | 'auth' | 'request' | 'done' = 'greeting'
    c.on('data', function onData(d: Buffer) {
      buf = Buffer.concat([buf, d])
      for (;;) {
        if (stage === 'greeting') {
          if (buf.length < 2 || buf.length < 2 + buf[1]!) return
          rec.methods = [...buf.subarray(2, 2 + buf[1]!)]
          buf = buf.subarray(2 + buf[1]!)
          const want = script.creds !== undefined ? 2 : 0
          if (!rec.methods.includes(want)) {
            c.end(Buffer.from([5, 0xff]))
            return
          }
          c.write(Buffer.from([5, want]))
          stage = want === 2 ? 'auth' : 'request'
        } else if (stage === 'auth') {
          if (buf.length < 2) return
          const ulen = buf[1]!
          if (buf.length < 3 + ulen || buf.length < 3 + ulen + buf[2 + ulen]!) return
          const user = buf.subarray(2, 2 + ulen).toString()
          const pass = buf.subarray(3 + ulen, 3 + ulen + buf[2 + ulen]!).toString()
          buf = buf.subarray(3 + ulen + pass.length)
          rec.user = user
          const ok = user === script.creds?.user && pass === script.creds.pass
          c.write(Buffer.from([1, ok ? 0 : 1]))
          if (!ok) return void c.end()
          stage = 'request'
        } else if (stage === 'request') {
          if (buf.length < 5) return
          const atyp = buf[3]!
          const alen = atyp === 1 ? 4 : atyp === 4 ? 16 : 1 + buf[4]!
          if (buf.length < 4 + alen + 2) return
          const a = buf.subarray(4, 4 + alen)
          rec.atyp = atyp
          rec.host = atyp === 1 ? [...a].join('.') : atyp === 3 ? a.subarray(1).toString() : a.toString('hex')
          rec.port = buf.readUInt16BE(4 + alen)
          const rest = buf.subarray(4 + alen + 2)
          stage = 'done'
          c.off('data', onData)
          // The bound address is a name here, so the client must parse the variable-length form.
          const bound = Buffer.from([5, script.reply ?? 0, 0, 3, 9, ...Buffer.from('proxy.lan'), 0x1f, 0x90])
          if ((script.reply ?? 0) !== 0) return void c.end(bound)
          const up = net.connect({ host: '127.0.0.1', port: rec.port }, () => {
            c.write(bound)
            if (rest.length > 0) up.write(rest)
            c.pipe(up).pipe(c)
          })
          sockets.add(up)
          up.on('close', () => sockets.delete(up))
          up.on('error', () => c.destroy())
          c.on('close', () => up.destroy())
          return
        } else return
      }
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}

test('socks5h:// with username/password: the proxy gets the host name, the tunnel logs in', T, async () => {
  const frps = await startFrps({ token: TOKEN })
  const socks = await startSocks5({ creds: { user: 'bob', pass: 's3cr%t' } })
  const lines: string[] = []
  const cfg = validateClientConfig({ serverURL: `ws://localhost:${frps.port}`, auth: { token: TOKEN } })
  const client = createClient(cfg, {
    reconnect: FAST,
    env: { ALL_PROXY: `socks5h://bob:s3cr%25t@127.0.0.1:${socks.port}` },
    logger: createLogger({ level: 'debug', write: (l) => lines.push(l) }),
  })
  try {
    await client.start()
    assert.deepEqual(socks.seen, [{ methods: [2], user: 'bob', atyp: 3, host: 'localhost', port: frps.port }])
    assert.equal(frps.logins.length, 1)
    assert.ok(lines.some((l) => l.includes(`using proxy socks5h://bob@127.0.0.1:${socks.port} (ALL_PROXY)`)), lines.join('\n'))
    assert.ok(!lines.some((l) => l.includes('s3cr')), 'the password is never logged')
  } finally {
    await client.stop()
    await socks.close()
    await frps.close()
  }
})

test('socks5:// resolves the name itself and offers no authentication without credentials', T, async () => {
  const frps = await startFrps({ token: TOKEN })
  const socks = await startSocks5({})
  const cfg = validateClientConfig({ serverURL: `ws://localhost:${frps.port}`, auth: { token: TOKEN }, transport: { proxyURL: `socks5://127.0.0.1:${socks.port}` } })
  const client = createClient(cfg, { reconnect: FAST, env: {} })
  try {
    await client.start()
    assert.deepEqual(socks.seen, [{ methods: [0], atyp: 1, host: '127.0.0.1', port: frps.port }])
  } finally {
    await client.stop()
    await socks.close()
    await frps.close()
  }
})

test('SOCKS5 refusals are one line each: wrong password, credentials wanted, CONNECT refused', T, async () => {
  const frps = await startFrps({ token: TOKEN })
  const withCreds = await startSocks5({ creds: { user: 'bob', pass: 'right' } })
  const refusing = await startSocks5({ reply: 5 })
  try {
    const url = frps.url
    let msg = await failure(config(frps, { proxyURL: `socks5://bob:wrong@127.0.0.1:${withCreds.port}` }), {}, 'ERR_CONNECT')
    assert.equal(msg, `connect to ${url} failed: proxy socks5://bob@127.0.0.1:${withCreds.port} refused the SOCKS5 credentials of user "bob"`)
    msg = await failure(config(frps, { proxyURL: `socks5://127.0.0.1:${withCreds.port}` }), {}, 'ERR_CONNECT')
    assert.equal(
      msg,
      `connect to ${url} failed: proxy socks5://127.0.0.1:${withCreds.port} accepts none of our SOCKS5 authentication methods (none: it wants credentials, socks5://user:password@host:port)`,
    )
    msg = await failure(config(frps, { proxyURL: `socks5://127.0.0.1:${refusing.port}` }), {}, 'ERR_CONNECT')
    assert.equal(msg, `connect to ${url} failed: proxy socks5://127.0.0.1:${refusing.port} refused SOCKS5 CONNECT 127.0.0.1:${frps.port}: connection refused`)
    assert.equal(frps.upgrades.length, 0)
  } finally {
    await withCreds.close()
    await refusing.close()
    await frps.close()
  }
})

// ---- HTTP CONNECT: the auth hook -------------------------------------------------------------------

interface ScriptedConnect {
  port: number
  /** Per TCP connection, the Proxy-Authorization of each CONNECT it carried. */
  connections: (string | undefined)[][]
  close(): Promise<void>
}

/**
 * A CONNECT proxy with a two-step, connection-bound scheme "Test" (the shape of NTLM): it answers
 * `Test one` with a 407 carrying `Test nonce-42` and a body, keeps the connection, and accepts
 * `Test answer-42` only on that same connection.
 */
async function startTwoStepProxy(): Promise<ScriptedConnect> {
  const connections: ScriptedConnect['connections'] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((c) => {
    sockets.add(c)
    c.on('close', () => sockets.delete(c))
    c.on('error', () => {})
    const mine: (string | undefined)[] = []
    connections.push(mine)
    let buf = ''
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1')
      let end: number
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, end)
        buf = buf.slice(end + 4)
        const target = /^CONNECT (\S+) /.exec(head)?.[1] ?? ''
        const auth = /^proxy-authorization: (.*)$/im.exec(head)?.[1]
        mine.push(auth)
        if (auth === 'Test answer-42' && mine.length === 2) {
          c.off('data', onData)
          const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))]
          const up = net.connect({ host, port }, () => {
            c.write('HTTP/1.1 200 Connection established\r\n\r\n')
            c.pipe(up).pipe(c)
          })
          sockets.add(up)
          up.on('error', () => c.destroy())
          c.on('close', () => up.destroy())
          return
        }
        const challenge = auth === 'Test one' ? 'Test nonce-42' : 'Test'
        c.write(`HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: ${challenge}\r\nContent-Length: 5\r\n\r\nnope\n`)
      }
    }
    c.on('data', onData)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as net.AddressInfo).port,
    connections,
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}

test('the proxyAuth hook answers a challenge on the same connection (the NTLM shape)', T, async () => {
  const frps = await startFrps({ token: TOKEN })
  const proxy = await startTwoStepProxy()
  const calls: Omit<ProxyAuthChallenge, 'proxyUrl'>[] = []
  const proxyAuth = (c: ProxyAuthChallenge): Record<string, string> | undefined => {
    calls.push({ round: c.round, proxyAuthenticate: c.proxyAuthenticate, target: c.target })
    if (c.round === 0) return { 'Proxy-Authorization': 'Test one' }
    const nonce = /^Test (nonce-\d+)$/.exec(c.proxyAuthenticate[0] ?? '')?.[1]
    return nonce !== undefined ? { 'Proxy-Authorization': `Test answer-${nonce.slice(6)}` } : undefined
  }
  const client = createClient(config(frps, { proxyURL: `http://127.0.0.1:${proxy.port}` }), { reconnect: FAST, env: {}, proxyAuth })
  try {
    await client.start()
    const target = `127.0.0.1:${frps.port}`
    assert.deepEqual(calls, [
      { round: 0, proxyAuthenticate: [], target },
      { round: 1, proxyAuthenticate: ['Test nonce-42'], target },
    ])
    assert.deepEqual(proxy.connections, [['Test one', 'Test answer-42']], 'both rounds on one connection')
    assert.equal(frps.logins.length, 1)
  } finally {
    await client.stop()
    await proxy.close()
    await frps.close()
  }
})

test('407: one line naming the proxy and its user, without the password; a hint when no credentials were given', T, async () => {
  const frps = await startFrps({ token: TOKEN })
  const proxy = await startTwoStepProxy()
  try {
    const url = frps.url
    let msg = await failure(config(frps, { proxyURL: `http://carol:hunter2@127.0.0.1:${proxy.port}` }), {}, 'ERR_CONNECT')
    assert.equal(
      msg,
      `connect to ${url} failed: proxy http://carol@127.0.0.1:${proxy.port} refused CONNECT 127.0.0.1:${frps.port}: 407 Proxy Authentication Required (the proxy refused the credentials of user "carol")`,
    )
    msg = await failure(config(frps, { proxyURL: `http://127.0.0.1:${proxy.port}` }), {}, 'ERR_CONNECT')
    assert.equal(
      msg,
      `connect to ${url} failed: proxy http://127.0.0.1:${proxy.port} refused CONNECT 127.0.0.1:${frps.port}: 407 Proxy Authentication Required (no proxy credentials: put them in the proxy URL, http://user:password@host:port)`,
    )
  } finally {
    await proxy.close()
    await frps.close()
  }
})

test('a proxy that refuses the connection: one line saying the proxy is unreachable', T, async () => {
  const frps = await startFrps({ token: TOKEN })
  const dead = await deadPort()
  try {
    const msg = await failure(config(frps), { env: { HTTP_PROXY: `http://user:pw@127.0.0.1:${dead}` } }, 'ERR_CONNECT')
    assert.equal(msg, `connect to ${frps.url} failed: proxy http://user@127.0.0.1:${dead} is unreachable: connect ECONNREFUSED 127.0.0.1:${dead}`)
  } finally {
    await frps.close()
  }
})

test('an unsupported proxy scheme in the environment is a configuration error naming the variable', T, async () => {
  const frps = await startFrps({ token: TOKEN })
  try {
    const msg = await failure(config(frps), { env: { HTTP_PROXY: 'ftp://u:pw@proxy.corp:2121' } }, 'ERR_CONFIG')
    assert.equal(msg, 'HTTP_PROXY: unsupported proxy scheme ftp: in ftp://u@proxy.corp:2121 (use http://, https://, socks5:// or socks5h://)')
    assert.equal(frps.upgrades.length, 0)
  } finally {
    await frps.close()
  }
})

test('NO_PROXY: the client goes direct although the proxy variable points at a dead port', T, async () => {
  const frps = await startFrps({ token: TOKEN })
  const dead = await deadPort()
  const lines: string[] = []
  const client = createClient(config(frps), {
    reconnect: FAST,
    env: { http_proxy: `http://127.0.0.1:${dead}`, no_proxy: 'example.com,127.0.0.1' },
    logger: createLogger({ level: 'info', write: (l) => lines.push(l) }),
  })
  try {
    await client.start()
    assert.equal(frps.logins.length, 1)
    assert.ok(lines.some((l) => l.includes('not using the proxy from http_proxy: no_proxy matches 127.0.0.1 (127.0.0.1)')), lines.join('\n'))
  } finally {
    await client.stop()
    await frps.close()
  }
})

test('transport.tls.trustedCaFile: unreadable, or without a certificate, is one configuration line', T, async () => {
  const frps = await startFrps({ token: TOKEN, tls: TLS })
  try {
    const cfg = (ca: string): ClientConfig =>
      validateClientConfig({ serverAddr: '127.0.0.1', serverPort: frps.port, auth: { token: TOKEN }, transport: { protocol: 'wss', tls: { trustedCaFile: ca, serverName: 'wsfrp.test' } } })
    const missing = fixture('no-such-ca.pem')
    let msg = await failure(cfg(missing), {}, 'ERR_CONFIG')
    assert.equal(msg, `cannot read transport.tls.trustedCaFile ${missing}: ENOENT: no such file or directory, open '${missing}'`)
    // A private key is a readable file, but not a CA.
    msg = await failure(cfg(fixture('server.key')), {}, 'ERR_CONFIG')
    assert.equal(msg, `transport.tls.trustedCaFile ${fixture('server.key')} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`)
    assert.equal(frps.upgrades.length, 0)
  } finally {
    await frps.close()
  }
})

test('certificate name mismatch, direct and through a proxy: the IP is checked (not "localhost") and the line says what to set', T, async () => {
  const frps = await startFrps({ token: TOKEN, tls: TLS })
  const socks = await startSocks5({})
  try {
    const transport = { protocol: 'wss', tls: { trustedCaFile: fixture('ca.pem') } }
    for (const extra of [{}, { proxyURL: `socks5://127.0.0.1:${socks.port}` }]) {
      const msg = await failure(config(frps, { ...transport, ...extra }), {}, 'ERR_CONNECT')
      assert.equal(
        msg,
        `connect to ${frps.url} failed: Hostname/IP does not match certificate's altnames: IP: 127.0.0.1 is not in the cert's list: (set transport.tls.serverName to a name the certificate holds)`,
      )
    }
    // Without the CA: the hint names trustedCaFile.
    const msg = await failure(config(frps, { protocol: 'wss', tls: { serverName: 'wsfrp.test' } }), {}, 'ERR_CONNECT')
    assert.match(msg, /certificate.*\(trust its CA with transport\.tls\.trustedCaFile\)$/)
    assert.equal(socks.seen.length, 1)
  } finally {
    await socks.close()
    await frps.close()
  }
})
