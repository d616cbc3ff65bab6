/**
 * Faults against a real wsfrps process: the client process killed mid-transfer, the WebSocket
 * silently dropped mid-stream (a relay that stops forwarding), and 1,000 client connect/disconnect
 * cycles that must leave no fds, streams or heap behind.
 */
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import { createClient } from '@wsfrp/client-node'
import { validateClientConfig } from '@wsfrp/core'
import { Harness, TOKEN, dial, fdCount, portIsFree, proxyUp, roundTrip, serverStats, tcpProxy, until } from '../src/harness.js'
import { startBulkServer, startEchoServer } from '../src/services.js'

const MiB = 1024 * 1024
const h = new Harness()
after(() => h.cleanup())

/** Starts a download of `total` bytes through `port` (bulk service 'D'); reports bytes as they come. */
async function download(port: number, total: number): Promise<{ socket: net.Socket; received: () => number; ended: Promise<number> }> {
  const s = await dial(port)
  let got = 0
  s.on('data', (d: Buffer) => (got += d.length))
  s.on('error', () => {})
  const head = Buffer.alloc(9)
  head[0] = 0x44
  head.writeBigUInt64BE(BigInt(total), 1)
  s.write(head)
  // The server ends a cut user connection with a FIN (allowHalfOpen keeps ours open): 'end' or 'close', whichever first.
  const ended = new Promise<number>((resolve) => {
    s.once('end', () => resolve(performance.now()))
    s.once('close', () => resolve(performance.now()))
  })
  return { socket: s, received: () => got, ended }
}

/** Resolves once `check()` is true, testing on each chunk the socket delivers; rejects after `ms`. */
function whenReceived(s: net.Socket, check: () => boolean, ms: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      s.off('data', on)
      reject(new Error(`condition not reached within ${ms} ms`))
    }, ms)
    const on = (): void => {
      if (!check()) return
      clearTimeout(t)
      s.off('data', on)
      resolve()
    }
    s.on('data', on)
    on()
  })
}

describe('faults', { timeout: 200_000 }, () => {
  test('kill -9 of the client during a 1 GiB download: the user connection closes promptly and the port is freed', { timeout: 40_000 }, async () => {
    const bulk = await startBulkServer()
    try {
      const server = await h.server()
      const { proc: client } = h.client(server.port, tcpProxy('big', bulk.port))
      const port = Number((await client.waitForLine(proxyUp('big')))[1])
      const dl = await download(port, 1024 * MiB)
      await whenReceived(dl.socket, () => dl.received() >= 16 * MiB, 20_000)
      const since = server.proc.lines.length
      const t0 = performance.now()
      await client.kill9()
      const closedAt = await dl.ended
      const ms = closedAt - t0
      dl.socket.destroy()
      assert.ok(dl.received() < 1024 * MiB, 'the transfer was cut, not finished')
      assert.ok(ms < 5_000, `the user connection closed ${ms.toFixed(0)} ms after the kill (bound 5 s)`)
      await server.proc.waitForLine(new RegExp(`\\[big\\] tcp proxy closed port=${port}`), { since, timeoutMs: 10_000 })
      assert.ok(await until(() => portIsFree(port), 100), `port ${port} is free again`)
    } finally {
      await bulk.close()
    }
  })

  test('a WebSocket that goes silent mid-stream is noticed by both sides within the ping timeout; the client comes back', { timeout: 60_000 }, async () => {
    const bulk = await startBulkServer()
    // A relay between client and server that can stop forwarding without closing anything: the
    // TCP connections stay up, the bytes just stop (a dead NAT entry, a pulled cable). Nothing
    // crosses a frozen pair, closes included: the side whose ping times out first cuts its TCP
    // connection (yamux destroys the transport), and passing that close on would let the other
    // side notice a closed socket instead of its own ping timeout — the race that made this test
    // flaky (the server's timeout came first about one run in three).
    const pairs: { a: net.Socket; b: net.Socket }[] = []
    let frozen = false
    const relay = net.createServer((a) => {
      a.on('error', () => {})
      const b = net.connect({ host: '127.0.0.1', port: server.port })
      b.on('error', () => {})
      pairs.push({ a, b })
      a.on('data', (d: Buffer) => {
        if (!(frozen && pairs.indexOf(pair) === 0)) b.write(d)
      })
      b.on('data', (d: Buffer) => {
        if (!(frozen && pairs.indexOf(pair) === 0)) a.write(d)
      })
      const pair = pairs[pairs.length - 1]!
      const silent = (): boolean => frozen && pairs.indexOf(pair) === 0
      a.on('close', () => {
        if (!silent()) b.destroy()
      })
      b.on('close', () => {
        if (!silent()) a.destroy()
      })
    })
    relay.listen(0, '127.0.0.1')
    await once(relay, 'listening')
    const relayPort = (relay.address() as net.AddressInfo).port
    const server = await h.server('transport.tcpMuxKeepaliveInterval = 1')
    try {
      const { proc: client } = h.client(relayPort, 'transport.tcpMuxKeepaliveInterval = 1\n' + tcpProxy('flow', bulk.port))
      const port = Number((await client.waitForLine(proxyUp('flow')))[1])
      const dl = await download(port, 1024 * MiB)
      await whenReceived(dl.socket, () => dl.received() >= 8 * MiB, 20_000)
      const clientSince = client.lines.length
      const serverSince = server.proc.lines.length
      const t0 = performance.now()
      frozen = true // only the first pair: reconnections go through
      const [clientNoticed, serverNoticed, userClosed] = await Promise.all([
        client.waitForLine(/disconnected from ws:/, { since: clientSince, timeoutMs: 20_000 }).then(() => performance.now() - t0),
        server.proc.waitForLine(/client control closed reason=.*no ping answer/, { since: serverSince, timeoutMs: 20_000 }).then(() => performance.now() - t0),
        dl.ended.then((at) => at - t0),
      ])
      // Keep-alive 1 s + ping timeout 1 s, plus scheduling slack on a loaded 2-core machine.
      const bound = 6_000
      assert.ok(clientNoticed < bound, `client noticed after ${clientNoticed.toFixed(0)} ms`)
      assert.ok(serverNoticed < bound, `server noticed after ${serverNoticed.toFixed(0)} ms`)
      assert.ok(userClosed < bound, `the user connection closed after ${userClosed.toFixed(0)} ms`)
      assert.ok(client.lines.slice(clientSince).some((l) => /no ping answer within 1000 ms/.test(l)), 'the client gave up on a ping, not on a socket error')
      // The client reconnects through the relay and its proxy works again.
      const port2 = Number((await client.waitForLine(proxyUp('flow'), { since: clientSince, timeoutMs: 30_000 }))[1])
      const again = await download(port2, 4 * MiB)
      await again.ended
      assert.equal(again.received(), 4 * MiB)
    } finally {
      for (const p of pairs) {
        p.a.destroy()
        p.b.destroy()
      }
      relay.close()
      await server.proc.stop()
      await bulk.close()
    }
  })

  test('1,000 connect/disconnect cycles of a client leave no fds, streams or heap behind on the server', { timeout: 120_000 }, async (t) => {
    const echo = await startEchoServer()
    const server = await h.server('', { exposeGc: true })
    try {
      const LANES = 10
      /** One cycle: log in, register a proxy, see it run, stop gracefully. */
      const cycle = async (lane: number): Promise<void> => {
        const cfg = validateClientConfig({
          serverAddr: '127.0.0.1',
          serverPort: server.port,
          auth: { token: TOKEN },
          // Names repeat across cycles, so the server's deliberate per-name memory (port
          // reservations, traffic history) stays constant and only leaks would grow.
          proxies: [{ name: `lane-${lane}`, type: 'tcp', localIP: '127.0.0.1', localPort: echo.port }],
        })
        const c = createClient(cfg, { env: {}, reconnect: { initialDelayMs: 10, maxDelayMs: 100 } })
        const running = new Promise<string>((resolve, reject) =>
          c.on('proxy', (p) => {
            if (p.status === 'running') resolve(p.remote)
            else if (p.status === 'error') reject(new Error(p.error))
          }),
        )
        await c.start()
        await running
        await c.stop()
      }
      const run = async (cycles: number): Promise<void> => {
        let next = 0
        await Promise.all(
          Array.from({ length: LANES }, async (_, lane) => {
            while (next < cycles) {
              next++
              await cycle(lane)
            }
          }),
        )
      }
      const idle = async (): Promise<Awaited<ReturnType<typeof serverStats>>> => {
        let s = await serverStats(server.proc)
        const ok = await until(async () => {
          s = await serverStats(server.proc)
          return s.clients === 0 && s.transports === 0 && s.proxies === 0 && s.conns === 0
        }, 200)
        assert.ok(ok, `the server did not get back to idle: ${JSON.stringify(s)}`)
        return s
      }
      // Warm-up as long as the measured run: the first thousand cycles grow the heap by about
      // 1 MiB once (JIT code, pools, the per-name tables of the lane names), the next ones do not
      // (measured: +1.08, -0.09, +0.17, -0.03 MiB per 1,000).
      await run(1000)
      const before = await idle()
      const fdBefore = fdCount(server.proc.pid)
      const t0 = performance.now()
      await run(1000)
      const seconds = (performance.now() - t0) / 1000
      const afterStats = await idle()
      // A socket can take a moment to be closed after the session ended: look again while the
      // count is above, with a stats round trip between looks.
      let fdAfter = fdCount(server.proc.pid)
      await until(async () => {
        fdAfter = fdCount(server.proc.pid)
        if (fdAfter <= fdBefore) return true
        await serverStats(server.proc)
        return false
      }, 100)
      const heapGrowth = afterStats.heapUsed - before.heapUsed
      t.diagnostic(`1000 cycles in ${seconds.toFixed(1)} s; fds ${fdBefore} → ${fdAfter}; streams ${before.streams} → ${afterStats.streams}; heap ${(before.heapUsed / MiB).toFixed(2)} → ${(afterStats.heapUsed / MiB).toFixed(2)} MiB`)
      assert.ok(fdAfter <= fdBefore, `fds grew from ${fdBefore} to ${fdAfter}`)
      assert.equal(afterStats.streams, 0)
      // 1 MiB over 1,000 cycles: a leak of 1 KiB per cycle fails; GC noise after a full collection is far below.
      assert.ok(heapGrowth < MiB, `heap grew by ${(heapGrowth / 1024).toFixed(0)} KiB over 1,000 cycles`)
      // The server still serves.
      const c = h.client(server.port, tcpProxy('after-cycles', echo.port))
      const port = Number((await c.proc.waitForLine(proxyUp('after-cycles')))[1])
      assert.equal((await roundTrip(port, 'alive')).toString(), 'alive')
    } finally {
      await server.proc.stop()
      await echo.close()
    }
  })
})
