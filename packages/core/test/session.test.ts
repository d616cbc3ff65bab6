import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import {
  FrpServerRole,
  FrpClientRole,
  YamuxSession,
  TOKEN_MISMATCH,
  encodeMessage,
  readMessage,
  authKey,
  fromHex,
  concatBytes,
  isWsfrpError,
  pipe,
  type Conn,
  type ControlHandle,
  type NewProxy,
  type ProxyManager,
  type StartWorkConn,
  type ClientProxy,
  type ClientRoleOptions,
} from '@wsfrp/core'
import { memoryPair } from '@wsfrp/core/testing'
import { nodeCrypto } from '../../node/src/node-crypto.js'

const TOKEN = 'test-token'

/** A ProxyManager that records what it is asked and lets the test play the user side. */
class RecordingProxies implements ProxyManager {
  registered = new Map<string, { def: NewProxy; control: ControlHandle }>()
  unregistered: string[] = []
  refuse = new Map<string, string>()
  private waiters: (() => void)[] = []
  async register(def: NewProxy & { proxy_name: string }, control: ControlHandle): Promise<string> {
    const why = this.refuse.get(def.proxy_name)
    if (why) throw new Error(why)
    this.registered.set(def.proxy_name, { def, control })
    this.waiters.splice(0).forEach((w) => w())
    return `:${def.remote_port ?? 0}`
  }
  unregister(name: string): void {
    this.registered.delete(name)
    this.unregistered.push(name)
    this.waiters.splice(0).forEach((w) => w())
  }
  async until(pred: () => boolean): Promise<void> {
    while (!pred()) await new Promise<void>((r) => this.waiters.push(r))
  }
}

/** A local "service" that echoes, over memory pairs. */
function echoTarget(): { dial: ClientRoleOptions['dialTarget']; starts: StartWorkConn[] } {
  const starts: StartWorkConn[] = []
  return {
    starts,
    dial: async (_p, start) => {
      starts.push(start)
      const { a, b } = memoryPair()
      b.start({ onData: (d) => b.write(d), onDrain() {}, onEnd: () => b.end(), onClose() {} })
      return a
    },
  }
}

function setup(opts: { serverToken?: string; clientToken?: string; proxies?: ClientProxy[]; poolCount?: number; version?: string } = {}) {
  const proxies = new RecordingProxies()
  const server = new FrpServerRole({ token: opts.serverToken ?? TOKEN, crypto: nodeCrypto, proxies, yamux: { keepAliveInterval: 0 }, userConnTimeoutMs: 2000 })
  const { a, b } = memoryPair()
  server.handleTransport(b, { remoteAddress: '127.0.0.1:1234' })
  const target = echoTarget()
  const statuses: [string, string, string][] = []
  const client = new FrpClientRole(a, {
    token: opts.clientToken ?? TOKEN,
    crypto: nodeCrypto,
    poolCount: opts.poolCount ?? 1,
    proxies: opts.proxies ?? [{ name: 'echo', type: 'tcp', fields: { remote_port: 6000 } }],
    dialTarget: target.dial,
    yamux: { keepAliveInterval: 0 },
    onProxyStatus: (n, s, d) => statuses.push([n, s, d]),
  })
  return { server, client, proxies, target, statuses }
}

/** Plays a user connection through a registered proxy and returns what comes back. */
async function userRoundTrip(control: ControlHandle, proxy: string, payload: Uint8Array): Promise<Uint8Array> {
  const work = await control.startWorkConn(proxy, { src_addr: '203.0.113.9', src_port: 5555, dst_addr: '127.0.0.1', dst_port: 6000 })
  const { a: user, b: userSide } = memoryPair()
  const done = pipe(userSide, work)
  const chunks: Uint8Array[] = []
  const ended = new Promise<void>((resolve) =>
    user.start({ onData: (d) => chunks.push(d), onDrain() {}, onEnd: () => resolve(), onClose() {} }),
  )
  user.write(payload)
  user.end() // half-close after the request: the reply must still come back in full
  await ended
  await done
  return concatBytes(chunks)
}

test('login, proxy registration and an echo through a work stream with half-close', { timeout: 10000 }, async () => {
  const { server, client, proxies, target, statuses } = setup()
  const { runId } = await client.login()
  assert.match(runId, /^[0-9a-f]{16}$/)
  await proxies.until(() => proxies.registered.has('echo'))
  const reg = proxies.registered.get('echo')!
  assert.equal(reg.def.proxy_type, 'tcp')
  assert.equal(reg.def.remote_port, 6000)
  assert.equal(server.controls.get(runId), reg.control)
  const payload = new Uint8Array(300_000).map((_, i) => i & 255)
  const back = await userRoundTrip(reg.control, 'echo', payload)
  assert.deepEqual(back, payload)
  assert.equal(target.starts[0]!.src_addr, '203.0.113.9')
  assert.equal(target.starts[0]!.proxy_name, 'echo')
  assert.deepEqual(statuses[0], ['echo', 'running', ':6000'])
})

test('several sequential and concurrent user connections reuse the pool without surplus', { timeout: 10000 }, async () => {
  const { client, proxies } = setup({ poolCount: 2 })
  await client.login()
  await proxies.until(() => proxies.registered.has('echo'))
  const control = proxies.registered.get('echo')!.control
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => userRoundTrip(control, 'echo', new Uint8Array([i, i + 1]))))
  results.forEach((r, i) => assert.deepEqual([...r], [i, i + 1]))
  for (let i = 0; i < 5; i++) assert.deepEqual([...(await userRoundTrip(control, 'echo', new Uint8Array([9])))], [9])
})

test('use_encryption work streams carry the bytes both ways', { timeout: 10000 }, async () => {
  const { client, proxies } = setup({ proxies: [{ name: 'sec', type: 'tcp', fields: { remote_port: 1, use_encryption: true } }] })
  await client.login()
  await proxies.until(() => proxies.registered.has('sec'))
  const back = await userRoundTrip(proxies.registered.get('sec')!.control, 'sec', new TextEncoder().encode('secret bytes'))
  assert.equal(new TextDecoder().decode(back), 'secret bytes')
})

test('a wrong token is refused with frp\'s message and ERR_AUTH', { timeout: 5000 }, async () => {
  const { client, server } = setup({ clientToken: 'nope' })
  await assert.rejects(client.login(), (e: unknown) => isWsfrpError(e, 'ERR_AUTH') && (e as Error).message === TOKEN_MISMATCH)
  assert.equal(server.controls.size, 0)
})

test('a refused proxy gets NewProxyResp with the error and the session stays up', { timeout: 5000 }, async () => {
  const { client, proxies, statuses } = setup({ proxies: [{ name: 'bad', type: 'tcp', fields: { remote_port: 22 } }, { name: 'good', type: 'tcp', fields: { remote_port: 6001 } }] })
  proxies.refuse.set('bad', 'port 22 is not allowed')
  await client.login()
  await proxies.until(() => proxies.registered.has('good'))
  while (statuses.length < 2) await new Promise<void>((r) => setImmediate(r))
  assert.deepEqual(statuses.find((s) => s[0] === 'bad'), ['bad', 'error', 'port 22 is not allowed'])
})

test('removeProxy sends CloseProxy; a client disconnect unregisters everything and forgets the control', { timeout: 5000 }, async () => {
  const { client, proxies, server } = setup({ proxies: [{ name: 'p1', type: 'tcp', fields: { remote_port: 1 } }, { name: 'p2', type: 'tcp', fields: { remote_port: 2 } }] })
  await client.login()
  await proxies.until(() => proxies.registered.size === 2)
  client.removeProxy('p1')
  await proxies.until(() => proxies.unregistered.includes('p1'))
  client.close()
  assert.equal(await client.closed, undefined)
  await proxies.until(() => proxies.unregistered.includes('p2'))
  assert.equal(server.controls.size, 0)
})

test('a re-login with the previous run id replaces the old control', { timeout: 5000 }, async () => {
  const proxies = new RecordingProxies()
  const server = new FrpServerRole({ token: TOKEN, crypto: nodeCrypto, proxies, yamux: { keepAliveInterval: 0 } })
  const connect = (runId?: string) => {
    const { a, b } = memoryPair()
    server.handleTransport(b, { remoteAddress: 'x' })
    return new FrpClientRole(a, { token: TOKEN, crypto: nodeCrypto, runId, proxies: [{ name: 'p', type: 'tcp', fields: {} }], dialTarget: echoTarget().dial, yamux: { keepAliveInterval: 0 } })
  }
  const first = connect()
  const { runId } = await first.login()
  await proxies.until(() => proxies.registered.has('p'))
  const oldControl = server.controls.get(runId)
  const second = connect(runId)
  assert.equal((await second.login()).runId, runId)
  await proxies.until(() => proxies.registered.get('p')?.control !== oldControl && proxies.registered.has('p'))
  assert.equal(server.controls.size, 1)
  assert.notEqual(server.controls.get(runId), oldControl)
  assert.ok(await first.closed, 'the replaced client sees its session end')
})

test('a client older than 0.18.0 is refused like frps does', { timeout: 5000 }, async () => {
  const server = new FrpServerRole({ token: TOKEN, crypto: nodeCrypto, proxies: new RecordingProxies(), yamux: { keepAliveInterval: 0 } })
  const { a, b } = memoryPair()
  server.handleTransport(b, { remoteAddress: 'x' })
  const mux = new YamuxSession(a, { client: true, keepAliveInterval: 0 })
  const s = mux.open()
  const ts = 1700000000
  s.write(encodeMessage({ type: 'Login', version: '0.17.9', privilege_key: authKey(nodeCrypto, TOKEN, ts), timestamp: ts }))
  const { msg } = await readMessage(s)
  assert.equal(msg.type, 'LoginResp')
  assert.match((msg as { error?: string }).error ?? '', /0\.18\.0/)
})

test('the first message of a stream must come within the login timeout', { timeout: 5000 }, async () => {
  const server = new FrpServerRole({ token: TOKEN, crypto: nodeCrypto, proxies: new RecordingProxies(), loginTimeoutMs: 50, yamux: { keepAliveInterval: 0 } })
  const { a, b } = memoryPair()
  server.handleTransport(b, { remoteAddress: 'x' })
  const mux = new YamuxSession(a, { client: true, keepAliveInterval: 0 })
  const s = mux.open()
  const closed = new Promise<Error | undefined>((r) => s.start({ onData() {}, onDrain() {}, onEnd() {}, onClose: r }))
  s.write(new Uint8Array([0x6f])) // one byte of a Login, then silence
  const err = await closed
  assert.ok(isWsfrpError(err, 'ERR_MUX_STREAM_RESET'), String(err))
})

// ---- replays of a real frp 0.44 session (../shared/vectors/frp-0.44/login-tcp-ping.json) -------------

interface WsFrame {
  dir: 'c2s' | 's2c'
  opcode_name: string
  payload_hex: string
}
const vectorPath = new URL('../../../../shared/vectors/frp-0.44/login-tcp-ping.json', import.meta.url)
function captured(dir: 'c2s' | 's2c'): Uint8Array[] {
  const json = JSON.parse(readFileSync(vectorPath, 'utf8')) as { connections: { ws_frames: WsFrame[] }[] }
  return json.connections[0]!.ws_frames.filter((f) => f.dir === dir && (f.opcode_name === 'text' || f.opcode_name === 'binary')).map((f) => fromHex(f.payload_hex))
}

test('replay: a real frpc 0.44 session logs into our server role and registers its proxy', { timeout: 5000 }, async () => {
  const proxies = new RecordingProxies()
  const server = new FrpServerRole({ token: 'vector-token', crypto: nodeCrypto, proxies, yamux: { keepAliveInterval: 0 } })
  const { a, b } = memoryPair()
  const fromServer: Uint8Array[] = []
  a.start({ onData: (d) => fromServer.push(d), onDrain() {}, onEnd() {}, onClose() {} })
  server.handleTransport(b, { remoteAddress: 'replay' })
  for (const frame of captured('c2s')) {
    a.write(frame)
    await new Promise<void>((r) => setImmediate(r))
  }
  await proxies.until(() => proxies.registered.has('vector-tcp'))
  const def = proxies.registered.get('vector-tcp')!.def
  assert.equal(def.proxy_type, 'tcp')
  assert.equal(def.remote_port, 16000)
  assert.equal(server.controls.size, 1)
  // The LoginResp went out in plaintext on stream 1: find it in what the server wrote.
  const out = new TextDecoder('latin1').decode(concatBytes(fromServer))
  // LoginResp: plaintext on stream 1 with a fresh run id and no error
  assert.match(out, /1\x00{7}0\{"version":"0\.44\.0","run_id":"[0-9a-f]{16}"\}/)
  // the captured work streams carry the capture's run id, unknown here: refused, not crashed
  assert.match(out, /no client control found for run id \[fa17996c3dc01fbf\]/)
})

test('replay: our client role follows a real frps 0.44 through login, work stream and user bytes', { timeout: 5000 }, async () => {
  const { a, b } = memoryPair()
  b.start({ onData() {}, onDrain() {}, onEnd() {}, onClose() {} })
  const got: Uint8Array[] = []
  let resolveData!: () => void
  const dataSeen = new Promise<void>((r) => (resolveData = r))
  const starts: StartWorkConn[] = []
  const statuses: string[][] = []
  const client = new FrpClientRole(a, {
    token: 'vector-token',
    crypto: nodeCrypto,
    proxies: [{ name: 'vector-tcp', type: 'tcp', fields: { remote_port: 16000 } }],
    yamux: { keepAliveInterval: 0 },
    onProxyStatus: (n, s, d) => statuses.push([n, s, d]),
    dialTarget: async (_p, start) => {
      starts.push(start)
      const pair = memoryPair()
      pair.b.start({ onData: (d) => { got.push(d); resolveData() }, onDrain() {}, onEnd() {}, onClose() {} })
      return pair.a
    },
  })
  const login = client.login()
  const frames = captured('s2c')
  for (const frame of frames) {
    b.write(frame)
    await new Promise<void>((r) => setImmediate(r))
  }
  const { runId } = await login
  assert.equal(runId.length, 16)
  await dataSeen
  assert.equal(new TextDecoder().decode(concatBytes(got)), 'ping\n')
  assert.equal(starts[0]!.proxy_name, 'vector-tcp')
  assert.equal(starts[0]!.dst_port, 16000)
  assert.deepEqual(statuses[0]?.slice(0, 2), ['vector-tcp', 'running'])
  client.close()
})

void ({} as Conn)
