/**
 * yamux benchmark (issue: foundation). Everything in one process over loopback TCP, raw TCP measured
 * in the same run so that the figures are ratios and survive a noisy machine.
 *
 *   single:    1 stream × 512 MiB, yamux over TCP vs raw TCP
 *   stream100: 100 streams × 5 MiB at once, yamux vs raw TCP (same total bytes on one socket)
 *   heap:      10,000 open idle streams: heap bytes per stream pair (both ends are in this process)
 *   idle10k:   one busy stream (128 MiB in 16 KiB writes) with 10,000 idle streams open vs alone
 *
 * Last line: `mux: single-ratio R stream100-ratio R heap-per-stream-bytes N idle10k-ratio R`
 */
import net from 'node:net'
import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import { YamuxSession, type Conn, type YamuxStream } from '@wsfrp/core'
import { socketConn } from '@wsfrp/node'
import { MiB, fmt, gc, median, status } from './util.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const SINGLE_BYTES = Number(process.env.BENCH_SINGLE_MIB ?? 512) * MiB
const CHUNK = 64 * 1024

async function tcpPair(): Promise<{ client: net.Socket; server: net.Socket; close: () => void }> {
  const srv = net.createServer({ allowHalfOpen: true, noDelay: true })
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = (srv.address() as net.AddressInfo).port
  const accepted = once(srv, 'connection') as Promise<[net.Socket]>
  const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true, noDelay: true })
  await once(client, 'connect')
  const [server] = await accepted
  return {
    client,
    server,
    close: () => {
      client.destroy()
      server.destroy()
      srv.close()
    },
  }
}

/** Writes `total` bytes with backpressure, then ends. */
function writeAll(c: Conn, total: number, chunkSize = CHUNK): { start: () => void; onDrain: () => void } {
  const chunk = new Uint8Array(chunkSize).fill(0x5a)
  let sent = 0
  const go = (): void => {
    while (sent < total) {
      const n = Math.min(chunkSize, total - sent)
      sent += n
      if (!c.write(n === chunkSize ? chunk : chunk.subarray(0, n))) return
    }
    c.end()
  }
  return { start: go, onDrain: go }
}

async function rawTcp(total: number): Promise<number> {
  const { client, server, close } = await tcpPair()
  const done = new Promise<void>((resolve) => {
    let got = 0
    server.on('data', (d: Buffer) => {
      got += d.length
      if (got >= total) resolve()
    })
  })
  const t0 = performance.now()
  const chunk = Buffer.alloc(CHUNK, 0x5a)
  let sent = 0
  const go = (): void => {
    while (sent < total) {
      sent += CHUNK
      if (!client.write(chunk)) return
    }
  }
  client.on('drain', go)
  go()
  await done
  const ms = performance.now() - t0
  close()
  return total / MiB / (ms / 1000)
}

async function muxPair(opts: { maxStreams?: number } = {}): Promise<{ client: YamuxSession; server: YamuxSession; streams: YamuxStream[]; close: () => void; nextAccepted: () => Promise<YamuxStream> }> {
  const { client, server, close } = await tcpPair()
  const accepted: YamuxStream[] = []
  const waiters: ((s: YamuxStream) => void)[] = []
  const srv = new YamuxSession(socketConn(server), {
    client: false,
    keepAliveInterval: 0,
    maxStreams: opts.maxStreams ?? 8192,
    acceptBacklog: opts.maxStreams ?? 256,
    onStream: (s) => {
      const w = waiters.shift()
      if (w) w(s)
      else accepted.push(s)
    },
  })
  const cli = new YamuxSession(socketConn(client), { client: true, keepAliveInterval: 0, maxStreams: opts.maxStreams ?? 8192 })
  return {
    client: cli,
    server: srv,
    streams: accepted,
    close: () => {
      cli.close()
      srv.close()
      close()
    },
    nextAccepted: () => (accepted.length > 0 ? Promise.resolve(accepted.shift()!) : new Promise((r) => waiters.push(r))),
  }
}

/** Sends `perStream` bytes on each of `n` streams at once; returns MiB/s of the total. */
async function muxStreams(n: number, perStream: number, chunkSize = CHUNK, pair?: Awaited<ReturnType<typeof muxPair>>): Promise<number> {
  const p = pair ?? (await muxPair())
  let remaining = n
  const allDone = new Promise<void>((resolve) => {
    for (let i = 0; i < n; i++) {
      void p.nextAccepted().then((s) => {
        let got = 0
        s.start({
          onData: (d) => {
            got += d.length
          },
          onDrain: () => {},
          onEnd: () => {
            if (got !== perStream) throw new Error(`stream got ${got} of ${perStream}`)
            s.end()
            if (--remaining === 0) resolve()
          },
          onClose: () => {},
        })
      })
    }
  })
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    const s = p.client.open()
    const w = writeAll(s, perStream, chunkSize)
    s.start({ onData: () => {}, onDrain: w.onDrain, onEnd: () => {}, onClose: () => {} })
    w.start()
  }
  await allDone
  const ms = performance.now() - t0
  if (!pair) p.close()
  return (n * perStream) / MiB / (ms / 1000)
}

async function heapPerStream(count: number): Promise<{ perPair: number; pair: Awaited<ReturnType<typeof muxPair>> }> {
  const pair = await muxPair({ maxStreams: count + 16 })
  gc()
  const before = process.memoryUsage().heapUsed
  const held: YamuxStream[] = []
  const acceptedAll = new Promise<void>((resolve) => {
    let n = 0
    const take = (): void => {
      void pair.nextAccepted().then((s) => {
        held.push(s)
        s.start(noop)
        if (++n === count) resolve()
        else take()
      })
    }
    take()
  })
  const one = new Uint8Array([1])
  // Idle streams share one no-op sink: the figure is the mux's cost per stream, not the harness's.
  const noop = { onData: () => {}, onDrain: () => {}, onEnd: () => {}, onClose: () => {} }
  for (let i = 0; i < count; i++) {
    const s = pair.client.open()
    s.start(noop)
    s.write(one)
    held.push(s)
  }
  await acceptedAll
  gc()
  const after = process.memoryUsage().heapUsed
  ;(globalThis as { __held?: unknown }).__held = held
  return { perPair: (after - before) / count, pair }
}

async function main(): Promise<void> {
  // Warm-up: let the JIT and the socket paths settle before anything is measured (the first
  // seconds of a run are up to 2x slower while functions tier up).
  status('warm-up')
  for (let i = 0; i < 2; i++) {
    await rawTcp(128 * MiB)
    await muxStreams(1, 128 * MiB)
    await muxStreams(100, 1 * MiB)
  }
  const raw: number[] = []
  const single: number[] = []
  const s100: number[] = []
  const singleRatios: number[] = []
  const s100Ratios: number[] = []
  // Rounds interleave the three cases and each round yields its own ratios: a noisy neighbour
  // slows the whole round alike, so the median of per-round ratios is steadier than a ratio of
  // medians taken minutes apart.
  for (let r = 0; r < ROUNDS; r++) {
    status(`round ${r + 1}/${ROUNDS}: raw TCP ${SINGLE_BYTES / MiB} MiB`)
    raw.push(await rawTcp(SINGLE_BYTES))
    status(`round ${r + 1}/${ROUNDS}: yamux 1 stream × ${SINGLE_BYTES / MiB} MiB`)
    single.push(await muxStreams(1, SINGLE_BYTES))
    status(`round ${r + 1}/${ROUNDS}: yamux 100 streams × 5 MiB`)
    s100.push(await muxStreams(100, 5 * MiB))
    singleRatios.push(single[r]! / raw[r]!)
    s100Ratios.push(s100[r]! / raw[r]!)
  }
  console.log(`raw tcp            ${fmt(median(raw), 0)} MiB/s  (rounds: ${raw.map((x) => fmt(x, 0)).join(', ')})`)
  console.log(`yamux 1 × 512 MiB  ${fmt(median(single), 0)} MiB/s  (rounds: ${single.map((x) => fmt(x, 0)).join(', ')})`)
  console.log(`yamux 100 × 5 MiB  ${fmt(median(s100), 0)} MiB/s  (rounds: ${s100.map((x) => fmt(x, 0)).join(', ')})`)

  // Busy stream alone vs with 10,000 idle streams open: two pairs, rounds interleaved so that
  // the machine's noise hits both alike.
  status('opening 10,000 idle streams')
  const { perPair, pair } = await heapPerStream(10_000)
  console.log(`heap per stream pair with 10,000 open: ${fmt(perPair, 0)} bytes`)
  const lone = await muxPair()
  const alone: number[] = []
  const withIdle: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    status(`round ${r + 1}/${ROUNDS}: busy stream (128 MiB in 16 KiB writes) alone, then with 10,000 idle streams`)
    alone.push(await muxStreams(1, 128 * MiB, 16 * 1024, lone))
    withIdle.push(await muxStreams(1, 128 * MiB, 16 * 1024, pair))
  }
  lone.close()
  pair.close()
  console.log(`busy stream alone ${fmt(median(alone), 0)} MiB/s, with 10k idle ${fmt(median(withIdle), 0)} MiB/s`)

  const singleRatio = median(singleRatios)
  const s100Ratio = median(s100Ratios)
  const idleRatio = median(withIdle) / median(alone)
  console.log(`mux: single-ratio ${fmt(singleRatio)} stream100-ratio ${fmt(s100Ratio)} heap-per-stream-bytes ${Math.round(perPair)} idle10k-ratio ${fmt(idleRatio)}`)
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)
