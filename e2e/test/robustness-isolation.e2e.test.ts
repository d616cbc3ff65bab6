/**
 * Two users ([[auth.users]]) on one real wsfrps process: each logs in as itself, and one user's
 * stalled reader (a download nobody reads) does not slow the other user's transfer.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import { Harness, dial, proxyUp, tcpProxy } from '../src/harness.js'
import { startBulkServer } from '../src/services.js'

const MiB = 1024 * 1024
const h = new Harness()
after(() => h.cleanup())

const USERS = `
[[auth.users]]
name = "alice"
token = "alice-secret"

[[auth.users]]
name = "bob"
token = "bob-secret"
allowTypes = ["tcp"]
`

/** A service that sends `total` bytes per connection and counts what it managed to hand to the kernel. */
async function source(total: number): Promise<{ port: number; written: () => number; reached: (n: number) => Promise<void>; close: () => void }> {
  let written = 0
  const waiters: { n: number; resolve: () => void }[] = []
  const sockets = new Set<net.Socket>()
  const chunk = Buffer.alloc(64 * 1024, 0x62)
  const srv = net.createServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
    s.on('close', () => sockets.delete(s))
    let left = total
    const go = (): void => {
      while (left > 0) {
        const n = Math.min(left, chunk.length)
        left -= n
        written += n
        for (const w of waiters.splice(0)) if (written >= w.n) w.resolve()
        else waiters.push(w)
        if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          s.once('drain', go)
          return
        }
      }
      s.end()
    }
    go()
  })
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  return {
    port: (srv.address() as net.AddressInfo).port,
    written: () => written,
    reached: (n) => (written >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }))),
    close: () => {
      for (const s of sockets) s.destroy()
      srv.close()
    },
  }
}

/** Milliseconds to download `total` bytes through `port` (bulk service 'D'). */
async function timedDownload(port: number, total: number): Promise<number> {
  const s = await dial(port)
  let got = 0
  const t0 = performance.now()
  const head = Buffer.alloc(9)
  head[0] = 0x44
  head.writeBigUInt64BE(BigInt(total), 1)
  await new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => (got += d.length))
    s.on('end', () => resolve())
    s.on('error', reject)
    s.write(head)
  })
  s.destroy()
  assert.equal(got, total)
  return performance.now() - t0
}

test('a stalled reader of one user does not slow another user\'s transfer', { timeout: 90_000 }, async (t) => {
  const bulk = await startBulkServer()
  const flood = await source(1024 * MiB)
  try {
    const server = await h.server(USERS)
    const alice = h.client(server.port, tcpProxy('alice-dl', bulk.port), { token: 'alice-secret' }).proc
    const bob = h.client(server.port, tcpProxy('bob-flood', flood.port), { token: 'bob-secret' }).proc
    const alicePort = Number((await alice.waitForLine(proxyUp('alice-dl')))[1])
    const bobPort = Number((await bob.waitForLine(proxyUp('bob-flood')))[1])
    // Each client logged in as its user.
    assert.ok(server.proc.lines.some((l) => /client logged in .*tenant=alice/.test(l)))
    assert.ok(server.proc.lines.some((l) => /client logged in .*tenant=bob/.test(l)))

    const SIZE = 64 * MiB
    await timedDownload(alicePort, 8 * MiB) // warm-up
    const baseline = await timedDownload(alicePort, SIZE)

    // Bob's user connection asks for 1 GiB and never reads a byte.
    const stalled = net.connect({ host: '127.0.0.1', port: bobPort })
    stalled.on('error', () => {})
    await once(stalled, 'connect')
    stalled.pause()
    // Wait until the stall is in force: 4 MiB is far beyond what yamux lets one stream have in
    // flight (its 256 KiB window plus a 64 KiB send queue), so the rest sits in kernel buffers and
    // bob's stream is blocked on credit. (Waiting for 8 MiB raced the kernel's buffer autotuning:
    // runs stopped at 8.0–8.1 MiB, and one never got there.)
    await flood.reached(4 * MiB)
    const stalledMs = await timedDownload(alicePort, SIZE)
    const heldBack = flood.written()
    t.diagnostic(`alice 64 MiB: ${baseline.toFixed(0)} ms alone, ${stalledMs.toFixed(0)} ms beside bob's stalled reader; bob's source wrote ${(heldBack / MiB).toFixed(1)} MiB of 1024`)
    // The bound: three times the baseline plus a second of scheduling slack on a loaded 2-core machine.
    assert.ok(stalledMs < baseline * 3 + 1000, `alice took ${stalledMs.toFixed(0)} ms beside the stall vs ${baseline.toFixed(0)} ms alone`)
    assert.ok(heldBack < 512 * MiB, 'bob\'s unread download is held back by backpressure, not buffered')
    assert.equal(stalled.destroyed, false, 'bob\'s stalled connection is still open (stalled, not cut)')
    stalled.destroy()
  } finally {
    await bulk.close()
    flood.close()
  }
})
