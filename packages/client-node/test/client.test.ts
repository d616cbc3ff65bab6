import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as net from 'node:net'
import { WebSocketServer } from 'ws'
import { TOKEN_MISMATCH, isWsfrpError, validateClientConfig, type ClientConfig } from '@wsfrp/core'
import { createClient, createLogger, type ClientEventName, type ClientEvents, type WsfrpClient } from '@wsfrp/client-node'
import { echoThrough, startEcho, startFrps } from './support/frps.js'

const T = { timeout: 20_000 }
const TOKEN = 'client-test-token'
/** Short, deterministic backoff for tests: the ceiling still doubles, random() is fixed. */
const FAST = { initialDelayMs: 10, maxDelayMs: 40, random: () => 0.5 }

function config(raw: Record<string, unknown>): ClientConfig {
  return validateClientConfig({ auth: { token: TOKEN }, ...raw })
}

/** Collects log lines in memory (at debug level). */
function memoryLogger() {
  const lines: string[] = []
  return { lines, logger: createLogger({ level: 'debug', write: (l) => lines.push(l) }) }
}

/** Sends `data` to 127.0.0.1:port and resolves with what came back once the connection closed (by FIN or reset). */
function userConnection(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port })
    let got = ''
    s.setEncoding('utf8')
    s.on('data', (d: string) => (got += d))
    s.on('error', () => {})
    s.on('close', () => resolve(got))
    s.on('connect', () => s.write(data))
  })
}

/** The next `event` for which `pred` holds. */
function next<E extends ClientEventName>(c: WsfrpClient, event: E, pred: (...a: ClientEvents[E]) => boolean = () => true): Promise<ClientEvents[E]> {
  return new Promise((resolve) => {
    const l = (...a: ClientEvents[E]): void => {
      if (!pred(...a)) return
      c.off(event, l)
      resolve(a)
    }
    c.on(event, l)
  })
}

test('the upgrade request carries Origin: http://host:port and the configured path', T, async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise<void>((r) => wss.once('listening', () => r()))
  const port = (wss.address() as net.AddressInfo).port
  const seen = new Promise<{ origin: string | undefined; url: string | undefined }>((resolve) => {
    wss.once('connection', (ws, req) => {
      resolve({ origin: req.headers.origin, url: req.url })
      // Not an frp server: end the attempt so the client gives up (loginFailExit).
      ws.close(1011)
    })
  })
  const client = createClient(config({ serverURL: `ws://127.0.0.1:${port}/custom/path` }), { reconnect: FAST })
  const started = client.start()
  try {
    assert.deepEqual(await seen, { origin: `http://127.0.0.1:${port}`, url: '/custom/path' })
    await assert.rejects(started, (err) => isWsfrpError(err, 'ERR_LOGIN_FAILED') && err.message.startsWith(`login to ws://127.0.0.1:${port}/custom/path failed:`))
    assert.equal(client.status().state, 'stopped')
  } finally {
    await client.stop()
    await new Promise<void>((r) => wss.close(() => r()))
  }
})

test('a refused upgrade is retried with backoff until the server accepts, then the client logs in', T, async () => {
  // The port stays bound all along: the server first answers 503, then accepts.
  const frps = await startFrps({ token: TOKEN, mode: 'reject' })
  const { lines, logger } = memoryLogger()
  const client = createClient(config({ serverAddr: '127.0.0.1', serverPort: frps.port, loginFailExit: false }), { logger, reconnect: FAST })
  const retries: number[] = []
  client.on('retry', (r) => retries.push(r.delayMs))
  try {
    const twoRetries = next(client, 'retry', () => retries.length >= 2)
    const started = client.start()
    await twoRetries
    assert.equal(client.status().failures >= 2, true)
    assert.match(client.status().lastError, /^connect to ws:\/\/127\.0\.0\.1:\d+\/~!frp failed: Unexpected server response: 503$/)
    const loggedIn = next(client, 'login')
    frps.accept()
    await started
    const [info] = await loggedIn
    assert.equal(info.reconnect, false)
    assert.match(info.runId, /^[0-9a-f]{16}$/)
    assert.equal(client.status().state, 'online')
    assert.equal(client.status().failures, 0)
    // Backoff with random() = 0.5: half of 10, 20, 40, 40 … ms.
    assert.deepEqual(retries.slice(0, 3), [5, 10, 20].slice(0, Math.min(3, retries.length)))
    // The same failure is logged once at warn, then at debug.
    const warn = lines.filter((l) => l.includes('[W] connect to'))
    assert.equal(warn.length, 1, lines.join('\n'))
    assert.ok(lines.some((l) => l.includes('[D] connect to')))
    assert.ok(lines.some((l) => /\[I\] logged in to ws:\/\/127\.0\.0\.1:\d+\/~!frp runId=/.test(l)))
  } finally {
    await client.stop()
    await frps.close()
  }
})

test('loginFailExit: a wrong token ends start() with ERR_AUTH and the server message', T, async () => {
  const frps = await startFrps({ token: 'the-right-token' })
  const { lines, logger } = memoryLogger()
  const client = createClient(config({ serverAddr: '127.0.0.1', serverPort: frps.port }), { logger, reconnect: FAST })
  try {
    await assert.rejects(client.start(), (err) => {
      assert.ok(isWsfrpError(err, 'ERR_AUTH'), String(err))
      assert.equal(err.message, `login to ws://127.0.0.1:${frps.port}/~!frp failed: ${TOKEN_MISMATCH}`)
      return true
    })
    assert.equal(frps.upgrades.length, 1, 'no retry after a refused first login')
    assert.equal(client.status().state, 'stopped')
    assert.ok(!lines.some((l) => l.includes(TOKEN)), 'the token is never logged')
  } finally {
    await client.stop()
    await frps.close()
  }
})

test('loginFailExit: a network error on the first dial also ends start()', T, async () => {
  const frps = await startFrps({ token: TOKEN, mode: 'reject' })
  const client = createClient(config({ serverAddr: '127.0.0.1', serverPort: frps.port }), { reconnect: FAST })
  try {
    await assert.rejects(client.start(), (err) => isWsfrpError(err, 'ERR_CONNECT') && /failed: Unexpected server response: 503$/.test(err.message))
  } finally {
    await client.stop()
    await frps.close()
  }
})

test('loginFailExit = false: a wrong token is reported once, retried quietly, and the login succeeds once it matches', T, async () => {
  const frps = await startFrps({ token: 'other-token' })
  const { lines, logger } = memoryLogger()
  const client = createClient(config({ serverAddr: '127.0.0.1', serverPort: frps.port, loginFailExit: false }), { logger, reconnect: FAST })
  let retries = 0
  client.on('retry', () => retries++)
  try {
    const threeRetries = next(client, 'retry', () => retries >= 3)
    const started = client.start()
    await threeRetries
    const expected = `login to ws://127.0.0.1:${frps.port}/~!frp failed: ${TOKEN_MISMATCH}`
    assert.equal(lines.filter((l) => l.includes(`[E] ${expected}`)).length, 1, lines.join('\n'))
    assert.ok(lines.filter((l) => l.includes(`[D] ${expected}`)).length >= 2)
    frps.setToken(TOKEN)
    await started
    assert.equal(client.status().state, 'online')
  } finally {
    await client.stop()
    await frps.close()
  }
})

test('a tcp proxy with remotePort 0 comes up and carries bytes both ways', T, async () => {
  const frps = await startFrps({ token: TOKEN })
  const echo = await startEcho()
  const { lines, logger } = memoryLogger()
  const client = createClient(
    config({ serverAddr: '127.0.0.1', serverPort: frps.port, proxies: [{ name: 'echo', type: 'tcp', localPort: echo.port, remotePort: 0 }] }),
    { logger, reconnect: FAST },
  )
  try {
    const running = next(client, 'proxy', (p) => p.status === 'running')
    await client.start()
    const [p] = await running
    assert.equal(p.name, 'echo')
    assert.equal(p.remotePort, frps.proxies.get('echo'))
    assert.equal(p.remote, `127.0.0.1:${p.remotePort}`)
    assert.equal(p.local, `127.0.0.1:${echo.port}`)
    assert.ok(lines.some((l) => l.endsWith(`[echo] tcp proxy running: 127.0.0.1:${echo.port} ⇐ 127.0.0.1:${p.remotePort}`)), lines.join('\n'))
    const big = 'x'.repeat(300_000)
    assert.equal(await echoThrough(p.remotePort!, big), big)
    assert.equal(await echoThrough(p.remotePort!, 'hello'), 'hello')
    assert.deepEqual(client.status().proxies.map((x) => [x.name, x.status]), [['echo', 'running']])
  } finally {
    await client.stop()
    await frps.close()
    await echo.close()
  }
})

test('after the connection drops the client reconnects with the same run id and re-registers its proxies', T, async () => {
  const frps = await startFrps({ token: TOKEN })
  const echo = await startEcho()
  const client = createClient(
    config({ serverAddr: '127.0.0.1', serverPort: frps.port, proxies: [{ name: 'echo', type: 'tcp', localPort: echo.port }] }),
    { reconnect: FAST },
  )
  try {
    const firstUp = next(client, 'proxy', (p) => p.status === 'running')
    await client.start()
    await firstUp
    const runId = client.status().runId
    const disconnected = next(client, 'disconnect')
    const relogin = next(client, 'login')
    const upAgain = next(client, 'proxy', (p) => p.status === 'running')
    frps.dropAll()
    const [d] = await disconnected
    assert.ok(d.error instanceof Error)
    assert.equal(typeof d.retryInMs, 'number')
    const [info] = await relogin
    assert.equal(info.reconnect, true)
    assert.equal(info.runId, runId)
    assert.equal(frps.logins.length, 2)
    assert.equal(frps.logins[1]!.run_id, runId, 'the second Login carries the first run id')
    const [p] = await upAgain
    assert.equal(await echoThrough(p.remotePort!, 'again'), 'again')
  } finally {
    await client.stop()
    await frps.close()
    await echo.close()
  }
})

test('a refused local service ends only that user connection, with one log line', T, async (t) => {
  // Port 1 (tcpmux) is not served anywhere we run tests; check instead of assuming.
  const refused = await new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: 1 })
    s.on('connect', () => {
      s.destroy()
      resolve(false)
    })
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'))
  })
  if (!refused) {
    t.skip('something listens on 127.0.0.1:1')
    return
  }
  const frps = await startFrps({ token: TOKEN })
  const echo = await startEcho()
  const { lines, logger } = memoryLogger()
  const client = createClient(
    config({
      serverAddr: '127.0.0.1',
      serverPort: frps.port,
      proxies: [
        { name: 'dead', type: 'tcp', localPort: 1 },
        { name: 'echo', type: 'tcp', localPort: echo.port },
      ],
    }),
    { logger, reconnect: FAST },
  )
  let disconnects = 0
  client.on('disconnect', () => disconnects++)
  try {
    const bothUp = frps.until(() => frps.proxies.size === 2)
    await client.start()
    await bothUp
    // The user connection is closed (reset) without data.
    assert.equal(await userConnection(frps.proxies.get('dead')!, 'anyone?'), '')
    assert.equal(await echoThrough(frps.proxies.get('echo')!, 'still fine'), 'still fine')
    assert.equal(disconnects, 0)
    assert.equal(client.status().state, 'online')
    const refusedLines = lines.filter((l) => l.includes('cannot reach the local service'))
    assert.equal(refusedLines.length, 1, lines.join('\n'))
    assert.match(refusedLines[0]!, /\[W\].*proxy=dead .*ECONNREFUSED/)
  } finally {
    await client.stop()
    await frps.close()
    await echo.close()
  }
})

test('stop() closes gracefully (WebSocket close 1000) and the server drops the proxy', T, async () => {
  const frps = await startFrps({ token: TOKEN })
  const echo = await startEcho()
  const client = createClient(config({ serverAddr: '127.0.0.1', serverPort: frps.port, proxies: [{ name: 'echo', type: 'tcp', localPort: echo.port }] }), { reconnect: FAST })
  try {
    const up = frps.until(() => frps.proxies.size === 1)
    await client.start()
    await up
    const disconnected = next(client, 'disconnect')
    await client.stop()
    const [d] = await disconnected
    assert.equal(d.error, undefined)
    assert.equal(d.retryInMs, undefined)
    await frps.until(() => frps.closeCodes.length === 1 && frps.proxies.size === 0)
    assert.deepEqual(frps.closeCodes, [1000])
    assert.equal(client.status().state, 'stopped')
    assert.equal(frps.upgrades.length, 1, 'no reconnect after stop()')
  } finally {
    await client.stop()
    await frps.close()
    await echo.close()
  }
})

test('stop() before the first login rejects start() with ERR_CONN_ABORTED', T, async () => {
  const frps = await startFrps({ token: TOKEN, mode: 'reject' })
  const client = createClient(config({ serverAddr: '127.0.0.1', serverPort: frps.port, loginFailExit: false }), { reconnect: { ...FAST, initialDelayMs: 60_000, maxDelayMs: 60_000 } })
  try {
    const retried = next(client, 'retry')
    const started = client.start()
    await retried
    await client.stop()
    await assert.rejects(started, (err) => isWsfrpError(err, 'ERR_CONN_ABORTED'))
  } finally {
    await frps.close()
  }
})

for (const [resetAfterMs, expected] of [
  [-1, [0, 0, 0]],
  [60_000, [0, 1, 2]],
] as const) {
  test(`backoff after dropped sessions with resetAfterMs = ${resetAfterMs}: attempts ${expected.join(', ')}`, T, async () => {
    const frps = await startFrps({ token: TOKEN })
    // -1: every logged-in session counts as long-lived; 60 s: none of these short ones does.
    const client = createClient(config({ serverAddr: '127.0.0.1', serverPort: frps.port }), { reconnect: { ...FAST, resetAfterMs } })
    const attempts: number[] = []
    client.on('retry', (r) => attempts.push(r.attempt))
    try {
      await client.start()
      for (let i = 0; i < 3; i++) {
        const relogin = next(client, 'login')
        frps.dropAll()
        await relogin
      }
      assert.deepEqual(attempts, expected)
    } finally {
      await client.stop()
      await frps.close()
    }
  })
}

test('credentials in serverURL go to the server as Basic auth but never into messages', T, async () => {
  const frps = await startFrps({ token: TOKEN, mode: 'reject' })
  const { lines, logger } = memoryLogger()
  const client = createClient(config({ serverURL: `ws://user:top-secret@127.0.0.1:${frps.port}` }), { logger, reconnect: FAST })
  try {
    await assert.rejects(client.start(), (err) => {
      assert.ok(isWsfrpError(err, 'ERR_CONNECT'))
      assert.equal(err.message, `connect to ws://127.0.0.1:${frps.port}/~!frp failed: Unexpected server response: 503`)
      return true
    })
    assert.equal(frps.upgrades[0]?.headers.authorization, `Basic ${Buffer.from('user:top-secret').toString('base64')}`)
    assert.equal(client.status().url, `ws://127.0.0.1:${frps.port}/~!frp`)
    assert.ok(!lines.some((l) => l.includes('top-secret')))
    assert.ok(!client.status().lastError.includes('top-secret'))
  } finally {
    await client.stop()
    await frps.close()
  }
})

test('a server that accepts TCP but never answers the upgrade times out', T, async () => {
  const held = new Set<net.Socket>()
  const silent = net.createServer((s) => {
    held.add(s)
    s.on('error', () => {})
  })
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
  const port = (silent.address() as net.AddressInfo).port
  const client = createClient(config({ serverAddr: '127.0.0.1', serverPort: port }), { reconnect: FAST, handshakeTimeoutMs: 100 })
  try {
    await assert.rejects(client.start(), (err) => isWsfrpError(err, 'ERR_TIMEOUT') && err.message === `connect to ws://127.0.0.1:${port}/~!frp failed: timed out after 100 ms`)
  } finally {
    await client.stop()
    for (const s of held) s.destroy()
    await new Promise<void>((r) => silent.close(() => r()))
  }
})

test('a proxy the server refuses is reported once and registered again later, until it runs', T, async () => {
  const frps = await startFrps({ token: TOKEN })
  const echo = await startEcho()
  const { lines, logger } = memoryLogger()
  frps.refuse.set('echo', 'port already used')
  const client = createClient(
    config({ serverAddr: '127.0.0.1', serverPort: frps.port, proxies: [{ name: 'echo', type: 'tcp', localPort: echo.port, remotePort: 0 }] }),
    { logger, reconnect: FAST, proxyRetryMs: 20 },
  )
  try {
    const failed = next(client, 'proxy', (p) => p.status === 'error')
    await client.start()
    const [p] = await failed
    assert.equal(p.error, 'port already used')
    assert.equal(client.status().proxies[0]!.error, 'port already used')
    await frps.until(() => (frps.newProxyCount.get('echo') ?? 0) >= 3)
    const running = next(client, 'proxy', (x) => x.status === 'running')
    frps.refuse.delete('echo')
    const [up] = await running
    assert.equal(up.error, '')
    assert.equal(await echoThrough(up.remotePort!, 'finally'), 'finally')
    const warned = lines.filter((l) => l.includes('[W]') && l.includes('proxy start error'))
    assert.equal(warned.length, 1, lines.join('\n'))
    assert.match(warned[0]!, /\[echo\] tcp proxy start error: port already used retryInMs=20$/)
    assert.equal(client.status().state, 'online', 'a refused proxy never ends the session')
  } finally {
    await client.stop()
    await frps.close()
    await echo.close()
  }
})

test('a server that answers garbage is a failed attempt, retried, never a crash', T, async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise<void>((r) => wss.once('listening', () => r()))
  const port = (wss.address() as net.AddressInfo).port
  let connections = 0
  wss.on('connection', (ws) => {
    connections++
    // Not a yamux frame: version 7, unknown type.
    ws.send(Buffer.from([7, 9, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]))
    ws.on('error', () => {})
  })
  const { lines, logger } = memoryLogger()
  const client = createClient(config({ serverAddr: '127.0.0.1', serverPort: port, loginFailExit: false }), { logger, reconnect: FAST })
  let retries = 0
  client.on('retry', () => retries++)
  try {
    const third = next(client, 'retry', () => retries >= 3)
    void client.start().catch(() => {})
    const [r] = await third
    assert.equal(r.phase, 'login')
    assert.ok(isWsfrpError(r.error, 'ERR_LOGIN_FAILED'), String(r.error))
    assert.ok(connections >= 3)
    assert.equal(lines.filter((l) => l.includes('[W] login to')).length, 1, lines.join('\n'))
  } finally {
    await client.stop()
    await new Promise<void>((r) => wss.close(() => r()))
  }
})
