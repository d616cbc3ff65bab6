/**
 * The admin API's Basic auth is throttled per address: after ADMIN_SIGN_IN_FAILURES wrong
 * passwords an address gets 429 with Retry-After, even with the right password, and requests
 * without credentials are never counted.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import * as http from 'node:http'
import * as net from 'node:net'
import { ADMIN_SIGN_IN_FAILURES, startAdminServer } from '../src/admin.js'

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const { port } = s.address() as net.AddressInfo
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

function get(port: number, auth?: string): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = auth === undefined ? {} : { Authorization: `Basic ${Buffer.from(auth).toString('base64')}` }
    const req = http.request({ host: '127.0.0.1', port, path: '/api/status', headers, agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }))
    })
    req.on('error', reject)
    req.end()
  })
}

test('failed admin sign-ins from one address are throttled; no credentials are never counted', { timeout: 30_000 }, async () => {
  const port = await freePort()
  const admin = await startAdminServer({
    config: { addr: '127.0.0.1', port, user: 'admin', password: 'right' },
    client: { status: () => ({ state: 'online', url: 'ws://127.0.0.1:1/~!frp', runId: 'r', serverVersion: '0.44.0', failures: 0, lastError: '', proxies: [] }) },
    reload: () => Promise.reject(new Error('not used')),
  })
  try {
    // Browsers ask without credentials first: that is not a failure.
    for (let i = 0; i < ADMIN_SIGN_IN_FAILURES + 2; i++) assert.equal((await get(port)).status, 401)
    assert.equal((await get(port, 'admin:right')).status, 200)
    for (let i = 0; i < ADMIN_SIGN_IN_FAILURES; i++) assert.equal((await get(port, 'admin:wrong')).status, 401, `attempt ${i + 1}`)
    const blocked = await get(port, 'admin:right')
    assert.equal(blocked.status, 429, 'the right password is not even checked while throttled')
    assert.ok(Number(blocked.retryAfter) >= 1, `Retry-After: ${blocked.retryAfter}`)
  } finally {
    await admin.close()
  }
})
