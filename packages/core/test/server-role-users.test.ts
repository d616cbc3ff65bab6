/**
 * FrpServerRole's refusal hook (onLoginRefused, one test per reason code) and its run-time users
 * (addUser/removeUser), driven over in-memory pairs with the real roles.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  FrpServerRole,
  FrpClientRole,
  YamuxSession,
  LoginThrottle,
  TOKEN_MISMATCH,
  TOO_MANY_FAILED_LOGINS,
  encodeMessage,
  readMessage,
  authKey,
  isWsfrpError,
  type ControlHandle,
  type LoginRefusal,
  type NewProxy,
  type ProxyManager,
  type ServerRoleOptions,
} from '@wsfrp/core'
import { memoryPair } from '@wsfrp/core/testing'
import { nodeCrypto } from '../../node/src/node-crypto.js'

const TOKEN = 'shared-token'
const T = { timeout: 10_000 }

class Proxies implements ProxyManager {
  readonly registered = new Map<string, ControlHandle>()
  readonly unregistered: string[] = []
  private waiters: (() => void)[] = []
  async register(def: NewProxy & { proxy_name: string }, control: ControlHandle): Promise<string> {
    this.registered.set(def.proxy_name, control)
    this.wake()
    return ':0'
  }
  unregister(name: string): void {
    this.registered.delete(name)
    this.unregistered.push(name)
    this.wake()
  }
  async until(pred: () => boolean): Promise<void> {
    while (!pred()) await new Promise<void>((r) => this.waiters.push(r))
  }
  private wake(): void {
    for (const w of this.waiters.splice(0)) w()
  }
}

interface Harness {
  role: FrpServerRole
  proxies: Proxies
  refusals: LoginRefusal[]
  sessions: YamuxSession[]
  clients: FrpClientRole[]
  close(): Promise<void>
}

function harness(opts: Partial<ServerRoleOptions> = {}): Harness {
  const proxies = new Proxies()
  const refusals: LoginRefusal[] = []
  const role = new FrpServerRole({
    token: TOKEN,
    crypto: nodeCrypto,
    proxies,
    yamux: { keepAliveInterval: 0 },
    onLoginRefused: (r) => refusals.push(r),
    ...opts,
  })
  const h: Harness = {
    role,
    proxies,
    refusals,
    sessions: [],
    clients: [],
    async close() {
      for (const c of h.clients) c.close()
      for (const s of h.sessions) s.close()
      await role.close()
    },
  }
  return h
}

/**
 * Sends one Login on a fresh transport from `ip` and returns the LoginResp. Raw, so that the test
 * chooses every field (an old version, a user name) and reads the refusal text itself.
 */
async function rawLogin(h: Harness, login: { token: string; user?: string; version?: string; ip?: string }): Promise<{ run_id?: string; error?: string }> {
  const { a, b } = memoryPair()
  const ip = login.ip ?? '192.0.2.1'
  h.role.handleTransport(b, { remoteAddress: `${ip}:4000`, ip })
  const mux = new YamuxSession(a, { client: true, keepAliveInterval: 0 })
  h.sessions.push(mux)
  const s = mux.open()
  const ts = 1_700_000_000
  s.write(
    encodeMessage({
      type: 'Login',
      version: login.version ?? '0.44.0',
      user: login.user,
      privilege_key: authKey(nodeCrypto, login.token, ts),
      timestamp: ts,
      pool_count: 0,
    }),
  )
  const { msg } = await readMessage(s)
  assert.equal(msg.type, 'LoginResp')
  return msg as { run_id?: string; error?: string }
}

/** A real client role on a fresh transport; resolves once it is logged in and its proxy registered. */
async function client(h: Harness, token: string, user?: string, proxy = 'p'): Promise<{ client: FrpClientRole; runId: string }> {
  const { a, b } = memoryPair()
  h.role.handleTransport(b, { remoteAddress: '198.51.100.1:5000', ip: '198.51.100.1' })
  const c = new FrpClientRole(a, {
    token,
    user,
    crypto: nodeCrypto,
    poolCount: 0,
    proxies: [{ name: proxy, type: 'tcp', fields: { remote_port: 0 } }],
    dialTarget: async () => {
      throw new Error('no user connections in these tests')
    },
    yamux: { keepAliveInterval: 0 },
  })
  h.clients.push(c)
  const { runId } = await c.login()
  const wire = user ? `${user}.${proxy}` : proxy
  await h.proxies.until(() => h.proxies.registered.has(wire))
  return { client: c, runId }
}

test('onLoginRefused: token — no token matched; the callback gets no secret', T, async () => {
  const h = harness()
  try {
    const resp = await rawLogin(h, { token: 'wrong', user: 'bob', ip: '192.0.2.9' })
    assert.equal(resp.error, TOKEN_MISMATCH)
    assert.deepEqual(h.refusals, [{ reason: 'token', error: TOKEN_MISMATCH, remoteAddress: '192.0.2.9:4000', user: 'bob' }])
    assert.ok(!JSON.stringify(h.refusals).includes('wrong'), 'neither the token nor a key is passed on')
    assert.equal(h.role.controls.size, 0)
  } finally {
    await h.close()
  }
})

test('onLoginRefused: version — a client older than 0.18.0', T, async () => {
  const h = harness()
  try {
    const resp = await rawLogin(h, { token: TOKEN, version: '0.17.9' })
    assert.match(resp.error ?? '', /0\.18\.0/)
    assert.equal(h.refusals.length, 1)
    assert.equal(h.refusals[0]!.reason, 'version')
    assert.equal(h.refusals[0]!.error, resp.error)
  } finally {
    await h.close()
  }
})

test('onLoginRefused: throttled — after the failures an address is allowed, even the right token is refused unchecked', T, async () => {
  const h = harness({ loginThrottle: new LoginThrottle({ maxFailures: 2, windowMs: 3_600_000 }) })
  try {
    for (let i = 0; i < 2; i++) assert.equal((await rawLogin(h, { token: 'guess', ip: '192.0.2.50' })).error, TOKEN_MISMATCH)
    const resp = await rawLogin(h, { token: TOKEN, ip: '192.0.2.50' })
    assert.equal(resp.error, TOO_MANY_FAILED_LOGINS)
    assert.deepEqual(
      h.refusals.map((r) => r.reason),
      ['token', 'token', 'throttled'],
    )
    // Another address is not affected.
    const other = await rawLogin(h, { token: TOKEN, ip: '192.0.2.51' })
    assert.equal(other.error, undefined)
    assert.match(other.run_id ?? '', /^[0-9a-f]{16}$/)
    assert.equal(h.refusals.length, 3)
  } finally {
    await h.close()
  }
})

test('onLoginRefused: max-clients — a login beyond maxClients', T, async () => {
  const h = harness({ maxClients: 1 })
  try {
    await client(h, TOKEN)
    const resp = await rawLogin(h, { token: TOKEN })
    assert.match(resp.error ?? '', /too many clients.*maxClients/)
    assert.deepEqual(
      h.refusals.map((r) => r.reason),
      ['max-clients'],
    )
    assert.equal(h.role.controls.size, 1)
  } finally {
    await h.close()
  }
})

test('onLoginRefused: policy — authorizeLogin said no, and was told the tenant', T, async () => {
  const seen: (string | undefined)[] = []
  const h = harness({
    users: [{ name: 'alice', token: 'alice-token' }],
    authorizeLogin: (_login, _addr, tenant) => {
      seen.push(tenant)
      return tenant === 'alice' ? 'alice may not log in today' : undefined
    },
  })
  try {
    const resp = await rawLogin(h, { token: 'alice-token', user: 'alice' })
    assert.equal(resp.error, 'alice may not log in today')
    assert.deepEqual(h.refusals, [{ reason: 'policy', error: 'alice may not log in today', remoteAddress: '192.0.2.1:4000', user: 'alice' }])
    assert.equal((await rawLogin(h, { token: TOKEN })).error, undefined, 'the shared token passes the same policy')
    assert.deepEqual(seen, ['alice', undefined])
  } finally {
    await h.close()
  }
})

test('onLoginRefused: a throwing callback is ignored and the refusal still goes out', T, async () => {
  const h = harness({
    onLoginRefused: () => {
      throw new Error('metrics are broken')
    },
  })
  try {
    assert.equal((await rawLogin(h, { token: 'wrong' })).error, TOKEN_MISMATCH)
  } finally {
    await h.close()
  }
})

test('addUser: the new token logs in as that tenant; duplicates and empty tokens are refused', T, async () => {
  const h = harness()
  try {
    assert.equal((await rawLogin(h, { token: 'late-token' })).error, TOKEN_MISMATCH, 'unknown before addUser')
    h.role.addUser({ name: 'late', token: 'late-token' })
    const { runId } = await client(h, 'late-token', 'late')
    assert.equal(h.role.controls.get(runId)?.tenant, 'late')
    // Without a user name the login is matched against every user.
    const anon = await rawLogin(h, { token: 'late-token' })
    assert.equal(anon.error, undefined)
    assert.equal(h.role.controls.get(anon.run_id!)?.tenant, 'late')
    assert.throws(() => h.role.addUser({ name: 'late', token: 'other' }), (e: unknown) => isWsfrpError(e, 'ERR_CONFIG'))
    assert.throws(() => h.role.addUser({ name: 'empty', token: '' }), (e: unknown) => isWsfrpError(e, 'ERR_CONFIG'))
    assert.equal((await rawLogin(h, { token: TOKEN })).error, undefined, 'the shared token still works')
  } finally {
    await h.close()
  }
})

test('removeUser: its token logs in no more; its running clients stay until closed through controls', T, async () => {
  const h = harness({ users: [{ name: 'keep', token: 'keep-token' }] })
  try {
    h.role.addUser({ name: 'gone', token: 'gone-token' })
    const gone = await client(h, 'gone-token', 'gone')
    const kept = await client(h, 'keep-token', 'keep')
    assert.equal(h.role.removeUser('gone'), true)
    assert.equal(h.role.removeUser('gone'), false, 'a second removal finds nothing')

    const refused = await rawLogin(h, { token: 'gone-token', user: 'gone' })
    assert.equal(refused.error, TOKEN_MISMATCH)
    assert.equal((await rawLogin(h, { token: 'gone-token' })).error, TOKEN_MISMATCH, 'not through the every-user match either')
    assert.deepEqual(
      h.refusals.map((r) => r.reason),
      ['token', 'token'],
    )
    // Documented: removeUser only withdraws the token. The owner (the demo) closes the clients.
    assert.equal(h.role.controls.get(gone.runId)?.tenant, 'gone')
    for (const c of [...h.role.controls.values()]) if (c.tenant === 'gone') c.close('user removed')
    const err = await gone.client.closed
    assert.ok(err === undefined || err instanceof Error)
    await h.proxies.until(() => !h.proxies.registered.has('gone.p'))
    assert.equal(h.role.controls.has(gone.runId), false)
    assert.ok(h.proxies.unregistered.includes('gone.p'))
    // Users given at construction can be removed as well; other tenants are untouched.
    assert.equal(h.role.controls.get(kept.runId)?.tenant, 'keep')
    assert.ok(h.proxies.registered.has('keep.p'))
    assert.equal(h.role.removeUser('keep'), true)
    assert.equal((await rawLogin(h, { token: 'keep-token' })).error, TOKEN_MISMATCH)
  } finally {
    await h.close()
  }
})
