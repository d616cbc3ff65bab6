import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as net from 'node:net'
import { isWsfrpError, type Conn } from '@wsfrp/core'
import { acceptTcp, connectTcp, listenTcp, socketConn } from '@wsfrp/node'
import { connSuite, Recorder, type ConnPair } from '../../core/test/support/conn-suite.js'

/** A client conn (a) and the server's conn for it (b) over loopback TCP. */
async function tcpPair(): Promise<ConnPair> {
  let accepted!: (c: Conn) => void
  const got = new Promise<Conn>((resolve) => (accepted = resolve))
  const listener = await listenTcp((conn) => accepted(conn))
  const a = await connectTcp(listener.host, listener.port)
  const b = await got
  return { a, b, cleanup: () => listener.close() }
}

connSuite('socketConn over loopback TCP', tcpPair)

const T = { timeout: 15_000 }

test('connectTcp: a refused connection is ERR_CONNECT with the Node error as cause', T, async () => {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  await assert.rejects(connectTcp('127.0.0.1', port), (err: unknown) => {
    assert.ok(isWsfrpError(err, 'ERR_CONNECT'))
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED')
    return true
  })
})

test('connectTcp: an aborted signal gives ERR_CONN_ABORTED', T, async () => {
  await assert.rejects(connectTcp('127.0.0.1', 9, { signal: AbortSignal.abort() }), (err: unknown) =>
    isWsfrpError(err, 'ERR_CONN_ABORTED'),
  )
})

test('socketConn: half-close works on sockets of a server created without allowHalfOpen', T, async () => {
  const server = net.createServer()
  let accepted!: (c: Conn) => void
  const got = new Promise<Conn>((resolve) => (accepted = resolve))
  acceptTcp(server, (conn) => accepted(conn))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  // A plain net.connect socket too: socketConn switches allowHalfOpen on itself.
  const raw = net.connect(port, '127.0.0.1')
  await new Promise<void>((resolve) => raw.once('connect', resolve))
  const a = socketConn(raw)
  const b = await got
  try {
    const ra = new Recorder().expect(new TextEncoder().encode('late reply'))
    const rb = new Recorder().expect(new TextEncoder().encode('ping'))
    a.start(ra)
    b.start(rb)
    a.write(new TextEncoder().encode('ping'))
    a.end()
    await rb.waitFor(() => rb.ended, 'onEnd')
    // The server side must still be able to answer after the client's FIN.
    b.write(new TextEncoder().encode('late reply'))
    b.end()
    await ra.waitFor(() => ra.ended, 'onEnd')
    await Promise.all([ra.waitClosed(), rb.waitClosed()])
    ra.assertReceivedAll('reply after FIN')
    rb.assertReceivedAll('ping')
    ra.assertCleanClose()
    rb.assertCleanClose()
  } finally {
    a.destroy()
    b.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
})

test('socketConn: destroy(err) resets the connection: the peer gets ERR_CONN_CLOSED (ECONNRESET), not an end', T, async () => {
  const { a, b, cleanup } = await tcpPair()
  try {
    const ra = new Recorder()
    const rb = new Recorder()
    a.start(ra)
    b.start(rb)
    a.write(new Uint8Array(10))
    await rb.waitFor(() => rb.bytes === 10, 'bytes')
    a.destroy(new Error('abort'))
    await rb.waitClosed()
    assert.equal(rb.ended, false)
    assert.ok(isWsfrpError(rb.closeErr, 'ERR_CONN_CLOSED'))
    assert.equal((rb.closeErr.cause as NodeJS.ErrnoException).code, 'ECONNRESET')
  } finally {
    a.destroy()
    b.destroy()
    await cleanup?.()
  }
})

test('socketConn: wrapping an already destroyed socket reports onClose(ERR_CONN_CLOSED)', T, async () => {
  const s = new net.Socket()
  s.destroy()
  const conn = socketConn(s)
  const r = new Recorder()
  conn.start(r)
  await r.waitClosed()
  assert.ok(isWsfrpError(r.closeErr, 'ERR_CONN_CLOSED'))
  r.assertNoViolations()
})
