import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import WebSocket from 'ws'
import { TOKEN_MISMATCH, YamuxSession, authKey, encodeMessage, readMessage, type Message } from '@wsfrp/core'
import { nodeCrypto, wsConn } from '@wsfrp/node'
import { TOKEN, memoryLogger, startServer } from './support/helpers.js'

/** Opens a WebSocket the way a plain Node client would (no Origin), and a yamux client session on it. */
async function rawSession(url: string): Promise<{ ws: WebSocket; mux: YamuxSession }> {
  const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true })
  await once(ws, 'open')
  return { ws, mux: new YamuxSession(wsConn(ws), { client: true, keepAliveInterval: 0 }) }
}

/** Sends Login on a new stream and resolves with the first answer. */
async function login(mux: YamuxSession, token: string, extra: Partial<Message & { type: 'Login' }> = {}): Promise<Message> {
  const s = mux.open()
  const ts = Math.floor(Date.now() / 1000)
  s.write(
    encodeMessage({
      type: 'Login',
      version: '0.44.0',
      os: 'linux',
      arch: 'amd64',
      privilege_key: authKey(nodeCrypto, token, ts),
      timestamp: ts,
      pool_count: 1,
      ...extra,
    }),
  )
  const { msg } = await readMessage(s)
  return msg
}

test('a raw Login over ws + yamux gets a LoginResp with a run id', { timeout: 10_000 }, async () => {
  const lines: string[] = []
  const { server, url } = await startServer({}, memoryLogger(lines))
  try {
    const loggedIn = once(server, 'login')
    const { ws, mux } = await rawSession(url)
    const resp = await login(mux, TOKEN)
    assert.equal(resp.type, 'LoginResp')
    if (resp.type !== 'LoginResp') return
    assert.equal(resp.error ?? '', '')
    assert.match(resp.run_id ?? '', /^[0-9a-f]{16}$/)
    await loggedIn
    assert.equal(server.role.controls.size, 1)
    assert.ok(server.role.controls.has(resp.run_id!))
    assert.ok(lines.some((l) => l.includes('client logged in')), 'the login is logged')
    assert.ok(!lines.some((l) => l.includes(TOKEN)), 'the token never reaches the log')
    mux.close()
    ws.terminate()
  } finally {
    await server.close()
  }
})

test('a wrong token gets a LoginResp with an error and no control', { timeout: 10_000 }, async () => {
  const { server, url } = await startServer({}, memoryLogger())
  try {
    const { ws, mux } = await rawSession(url)
    const resp = await login(mux, 'not-the-token')
    assert.equal(resp.type, 'LoginResp')
    if (resp.type !== 'LoginResp') return
    assert.equal(resp.error, TOKEN_MISMATCH)
    assert.equal(resp.run_id ?? '', '')
    assert.equal(server.role.controls.size, 0)
    mux.close()
    ws.terminate()
  } finally {
    await server.close()
  }
})

test('a WebSocket that never logs in is closed after transportLoginTimeoutMs', { timeout: 10_000 }, async () => {
  const { createServer } = await import('@wsfrp/server')
  const server = createServer({ bindAddr: '127.0.0.1', bindPort: 0, auth: { token: TOKEN } }, { logger: memoryLogger(), transportLoginTimeoutMs: 100 })
  const { port } = await server.listen()
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/~!frp`, { perMessageDeflate: false })
    await once(ws, 'open')
    const closed = once(server, 'transport-close')
    await once(ws, 'close')
    await closed
    assert.equal(server.stats().transports, 0)
  } finally {
    await server.close()
  }
})

test('garbage on the WebSocket closes that transport only; the server keeps serving', { timeout: 10_000 }, async () => {
  const { server, url } = await startServer({}, memoryLogger())
  try {
    const bad = new WebSocket(url, { perMessageDeflate: false })
    await once(bad, 'open')
    bad.send(Buffer.from('GET / HTTP/1.1\r\n\r\n this is not yamux at all'))
    await once(bad, 'close')
    const { ws, mux } = await rawSession(url)
    const resp = await login(mux, TOKEN)
    assert.equal(resp.type, 'LoginResp')
    mux.close()
    ws.terminate()
  } finally {
    await server.close()
  }
})

test('close() sends GoAway to connected clients and resolves', { timeout: 10_000 }, async () => {
  const { server, url } = await startServer({}, memoryLogger())
  const { mux } = await rawSession(url)
  const resp = await login(mux, TOKEN)
  assert.equal(resp.type, 'LoginResp')
  await server.close()
  // The session ends from the server side (GoAway, then the WebSocket close).
  await mux.closed
  assert.equal(server.role.controls.size, 0)
  assert.throws(() => mux.open())
})
