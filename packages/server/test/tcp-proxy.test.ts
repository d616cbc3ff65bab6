import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as net from 'node:net'
import { once } from 'node:events'
import type { Conn } from '@wsfrp/core'
import { memoryPair } from '@wsfrp/core/testing'
import { TcpProxyManager } from '@wsfrp/server'
import {
  closeNet,
  connectClient,
  echoServer,
  fakeControl,
  listenOn,
  memoryLogger,
  proxyClosed,
  roundTrip,
  startServer,
} from './support/helpers.js'

function portOf(remoteAddr: string): number {
  const m = /^:(\d+)$/.exec(remoteAddr)
  assert.ok(m, `remote_addr ${JSON.stringify(remoteAddr)} has frp's ":<port>" form`)
  return Number(m[1])
}

test('a tcp proxy registered by the client role echoes through the tunnel, with half-close', { timeout: 15_000 }, async () => {
  const echo = await echoServer()
  const { server, url } = await startServer({}, memoryLogger())
  try {
    const c = await connectClient(url, [{ name: 'echo', type: 'tcp', fields: { remote_port: 0 } }], { targetPort: echo.port })
    const st = await c.status('echo')
    assert.equal(st.status, 'running', st.detail)
    const port = portOf(st.detail)
    assert.equal(server.tcp.portOf('echo'), port)
    const payload = Buffer.alloc(300_000, 'abcdefgh')
    const back = await roundTrip(port, payload)
    assert.equal(back.length, payload.length)
    assert.ok(back.equals(payload))
    // Several at once share the one WebSocket.
    const many = await Promise.all([1, 2, 3, 4, 5].map((i) => roundTrip(port, `hello ${i}`)))
    assert.deepEqual(
      many.map((b) => b.toString()),
      [1, 2, 3, 4, 5].map((i) => `hello ${i}`),
    )
    assert.equal(server.stats().proxies, 1)
    c.client.close()
  } finally {
    await server.close()
    await echo.close()
  }
})

test('a tcp proxy with use_encryption echoes too (AES-CFB on the work stream)', { timeout: 15_000 }, async () => {
  const echo = await echoServer()
  const { server, url } = await startServer({}, memoryLogger())
  try {
    const c = await connectClient(url, [{ name: 'enc', type: 'tcp', fields: { remote_port: 0, use_encryption: true } }], { targetPort: echo.port })
    const port = portOf((await c.status('enc')).detail)
    assert.equal((await roundTrip(port, 'secret bytes')).toString(), 'secret bytes')
    c.client.close()
  } finally {
    await server.close()
    await echo.close()
  }
})

test('the work connection carries the user address in StartWorkConn', { timeout: 15_000 }, async () => {
  const echo = await echoServer()
  const { server, url } = await startServer({}, memoryLogger())
  try {
    const starts: { src_addr?: string; src_port?: number; dst_port?: number }[] = []
    const { connectTcp } = await import('@wsfrp/node')
    const c = await connectClient(url, [{ name: 'who', type: 'tcp', fields: { remote_port: 0 } }], {
      extra: {
        dialTarget: (_p, start) => {
          starts.push(start)
          return connectTcp('127.0.0.1', echo.port)
        },
      },
    })
    const port = portOf((await c.status('who')).detail)
    const s = net.connect(port, '127.0.0.1')
    await once(s, 'connect')
    s.write('x')
    await once(s, 'data')
    assert.equal(starts.length, 1)
    assert.equal(starts[0]!.src_addr, '127.0.0.1')
    assert.equal(starts[0]!.src_port, s.localPort)
    assert.equal(starts[0]!.dst_port, port)
    s.destroy()
    c.client.close()
  } finally {
    await server.close()
    await echo.close()
  }
})

test('allowPorts: a port outside the list is refused in NewProxyResp', { timeout: 10_000 }, async () => {
  const { server, url } = await startServer({ allowPorts: [{ start: 40000, end: 40010 }] }, memoryLogger())
  try {
    const c = await connectClient(url, [{ name: 'p', type: 'tcp', fields: { remote_port: 6000 } }])
    const st = await c.status('p')
    assert.equal(st.status, 'error')
    assert.equal(st.detail, 'port 6000 is not allowed')
    assert.equal(server.stats().proxies, 0)
    c.client.close()
  } finally {
    await server.close()
  }
})

test('a port already in use is refused with an error naming the port', { timeout: 10_000 }, async () => {
  const taken = await listenOn(0)
  const port = (taken.address() as net.AddressInfo).port
  const { server, url } = await startServer({}, memoryLogger())
  try {
    const c = await connectClient(url, [{ name: 'p', type: 'tcp', fields: { remote_port: port } }])
    const st = await c.status('p')
    assert.equal(st.status, 'error')
    assert.equal(st.detail, `port ${port} is already in use`)
    c.client.close()
  } finally {
    await server.close()
    await closeNet(taken)
  }
})

test('other proxy types are refused clearly', { timeout: 10_000 }, async () => {
  const { server, url } = await startServer({}, memoryLogger())
  try {
    const c = await connectClient(url, [{ name: 'udp1', type: 'udp' as 'tcp', fields: { remote_port: 0 } }])
    const st = await c.status('udp1')
    assert.equal(st.status, 'error')
    assert.equal(st.detail, 'proxy type udp is not supported by this server yet')
    c.client.close()
  } finally {
    await server.close()
  }
})

test('use_compression is refused instead of corrupting the data', { timeout: 10_000 }, async () => {
  const { server, url } = await startServer({}, memoryLogger())
  try {
    const c = await connectClient(url, [{ name: 'z', type: 'tcp', fields: { remote_port: 0, use_compression: true } }])
    const st = await c.status('z')
    assert.equal(st.status, 'error')
    assert.match(st.detail, /use_compression .* is not supported/)
    c.client.close()
  } finally {
    await server.close()
  }
})

test('a proxy name is unique across clients', { timeout: 10_000 }, async () => {
  const { server, url } = await startServer({}, memoryLogger())
  try {
    const a = await connectClient(url, [{ name: 'same', type: 'tcp', fields: { remote_port: 0 } }])
    assert.equal((await a.status('same')).status, 'running')
    const b = await connectClient(url, [{ name: 'same', type: 'tcp', fields: { remote_port: 0 } }])
    const st = await b.status('same')
    assert.equal(st.status, 'error')
    assert.equal(st.detail, 'proxy [same] is already in use')
    a.client.close()
    b.client.close()
  } finally {
    await server.close()
  }
})

test('maxPortsPerClient limits the ports one client holds', { timeout: 10_000 }, async () => {
  const { server, url } = await startServer({ maxPortsPerClient: 1 }, memoryLogger())
  try {
    const c = await connectClient(url, [
      { name: 'one', type: 'tcp', fields: { remote_port: 0 } },
      { name: 'two', type: 'tcp', fields: { remote_port: 0 } },
    ])
    const [one, two] = await Promise.all([c.status('one'), c.status('two')])
    const statuses = [one.status, two.status].sort()
    assert.deepEqual(statuses, ['error', 'running'])
    const refused = one.status === 'error' ? one : two
    assert.match(refused.detail, /maxPortsPerClient = 1/)
    c.client.close()
  } finally {
    await server.close()
  }
})

test("closing the client's WebSocket frees the port at once", { timeout: 15_000 }, async () => {
  const echo = await echoServer()
  const { server, url } = await startServer({}, memoryLogger())
  try {
    const c = await connectClient(url, [{ name: 'gone', type: 'tcp', fields: { remote_port: 0 } }], { targetPort: echo.port })
    const port = portOf((await c.status('gone')).detail)
    // A user connection that is open when the client goes must not keep the port.
    const user = net.connect(port, '127.0.0.1')
    await once(user, 'connect')
    user.on('error', () => {})
    const userClosed = once(user, 'close')
    const closed = proxyClosed(server, 'gone')
    // Abrupt: the client's TCP connection is cut, no GoAway.
    c.transport.destroy()
    assert.equal(await closed, port)
    const again = await listenOn(port)
    await closeNet(again)
    await userClosed
    assert.equal(server.role.controls.size, 0)
  } finally {
    await server.close()
    await echo.close()
  }
})

test('a client that logs in again with its run id gets its remote_port = 0 port back', { timeout: 15_000 }, async () => {
  const { server, url } = await startServer({}, memoryLogger())
  try {
    const a = await connectClient(url, [{ name: 'sticky', type: 'tcp', fields: { remote_port: 0 } }])
    const first = portOf((await a.status('sticky')).detail)
    const closed = proxyClosed(server, 'sticky')
    a.client.close()
    await closed
    const b = await connectClient(url, [{ name: 'sticky', type: 'tcp', fields: { remote_port: 0 } }], { runId: a.runId })
    assert.equal(portOf((await b.status('sticky')).detail), first)
    b.client.close()
  } finally {
    await server.close()
  }
})

// ---- TcpProxyManager driven directly (a stand-in control gives full control over work connections) ----

test('maxPendingUserConns: user connections beyond the bound are closed at once; unregister closes the rest', { timeout: 10_000 }, async () => {
  const tcp = new TcpProxyManager({ proxyBindAddr: '127.0.0.1', maxPendingUserConns: 1, logger: memoryLogger() })
  let asked = 0
  let onAsked!: () => void
  const askedOnce = new Promise<void>((resolve) => (onAsked = resolve))
  const control = fakeControl('r1', () => {
    asked++
    onAsked()
    return new Promise<Conn>(() => {}) // the client never sends a work connection
  })
  const port = portOf(await tcp.register({ type: 'NewProxy', proxy_name: 'slow', proxy_type: 'tcp', remote_port: 0 }, control))
  try {
    const first = net.connect(port, '127.0.0.1')
    first.on('error', () => {})
    await once(first, 'connect')
    await askedOnce
    const second = net.connect(port, '127.0.0.1')
    second.on('error', () => {})
    await once(second, 'close')
    assert.equal(asked, 1, 'the refused connection never asked for a work connection')
    assert.equal(first.destroyed, false)
    const firstClosed = once(first, 'close')
    tcp.unregister('slow', control)
    await firstClosed
  } finally {
    await tcp.close()
  }
})

test('a user connection whose work connection fails is closed', { timeout: 10_000 }, async () => {
  const tcp = new TcpProxyManager({ proxyBindAddr: '127.0.0.1', logger: memoryLogger() })
  const control = fakeControl('r2', () => Promise.reject(new Error('no work connection')))
  const port = portOf(await tcp.register({ type: 'NewProxy', proxy_name: 'nowork', proxy_type: 'tcp' }, control))
  try {
    const s = net.connect(port, '127.0.0.1')
    s.on('error', () => {})
    await once(s, 'close')
  } finally {
    await tcp.close()
  }
})

test('unregister by a control that does not own the proxy is ignored', { timeout: 10_000 }, async () => {
  const tcp = new TcpProxyManager({ proxyBindAddr: '127.0.0.1' })
  const owner = fakeControl('owner', () => {
    const { a, b } = memoryPair()
    b.start({ onData: (d) => b.write(d), onDrain() {}, onEnd: () => b.end(), onClose() {} })
    return Promise.resolve(a)
  })
  const other = fakeControl('other', () => Promise.reject(new Error('unused')))
  const port = portOf(await tcp.register({ type: 'NewProxy', proxy_name: 'mine', proxy_type: 'tcp' }, owner))
  try {
    tcp.unregister('mine', other)
    assert.equal(tcp.portOf('mine'), port)
    assert.equal((await roundTrip(port, 'still here')).toString(), 'still here')
    await assert.rejects(tcp.register({ type: 'NewProxy', proxy_name: 'mine', proxy_type: 'tcp' }, other), /proxy \[mine\] is already in use/)
  } finally {
    await tcp.close()
  }
})

test('remote_port = 0 with allowPorts picks a port from the allowed set, and says so when none is free', { timeout: 10_000 }, async () => {
  const range = { start: 41000, end: 41999 }
  const held = await listenOn(0)
  const heldPort = (held.address() as net.AddressInfo).port
  const tcp = new TcpProxyManager({ proxyBindAddr: '127.0.0.1', allowPorts: [range] })
  const only = new TcpProxyManager({ proxyBindAddr: '127.0.0.1', allowPorts: [{ start: heldPort, end: heldPort }] })
  const control = fakeControl('r3', () => Promise.reject(new Error('unused')))
  try {
    const port = portOf(await tcp.register({ type: 'NewProxy', proxy_name: 'pick', proxy_type: 'tcp', remote_port: 0 }, control))
    assert.ok(port >= range.start && port <= range.end, `port ${port} is in the allowed range`)
    await assert.rejects(only.register({ type: 'NewProxy', proxy_name: 'pick2', proxy_type: 'tcp', remote_port: 0 }, control), /no allowed port is free/)
    assert.equal(only.size, 0)
  } finally {
    await tcp.close()
    await only.close()
    await closeNet(held)
  }
})
