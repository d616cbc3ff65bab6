/**
 * Tunnel benchmark (issue: the tunnel itself): direct TCP vs through wsfrps + wsfrpc running as
 * separate processes, measured in the same run, reported as ratios of direct.
 *
 *   up:     512 MiB user → local service
 *   down:   512 MiB local service → user
 *   conn16: new connections per second with 16 workers (dial, 1 byte each way, close)
 *   peak RSS (VmHWM) of the server and client processes
 *
 * Last line: `tunnel: up R down R conn16 R rss-server-mib N rss-client-mib N`
 */
import net from 'node:net'
import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startCli } from '../../e2e/src/process.js'
import { startBulkServer, startEchoServer } from '../../e2e/src/services.js'
import { MiB, fmt, median, status } from './util.js'

const BULK = Number(process.env.BENCH_BULK_MIB ?? 512) * MiB
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const CONN_SECONDS = Number(process.env.BENCH_CONN_SECONDS ?? 5)

async function dial(port: number): Promise<net.Socket> {
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true, noDelay: true })
  await once(s, 'connect')
  return s
}

/** MiB/s for an upload of `total` bytes through `port` (bulk service protocol 'U'). */
async function upload(port: number, total: number): Promise<number> {
  const s = await dial(port)
  const chunk = Buffer.alloc(64 * 1024, 0x41)
  const t0 = performance.now()
  const answer = new Promise<string>((resolve, reject) => {
    let text = ''
    s.setEncoding('utf8')
    s.on('data', (d: string) => (text += d))
    s.on('end', () => resolve(text))
    s.on('error', reject)
  })
  s.write('U')
  let sent = 0
  await new Promise<void>((resolve) => {
    const go = (): void => {
      while (sent < total) {
        sent += chunk.length
        if (!s.write(chunk)) {
          s.once('drain', go)
          return
        }
      }
      s.end()
      resolve()
    }
    go()
  })
  const count = Number(await answer)
  const ms = performance.now() - t0
  if (count !== total) throw new Error(`upload: service counted ${count} of ${total}`)
  s.destroy()
  return total / MiB / (ms / 1000)
}

/** MiB/s for a download of `total` bytes through `port` (bulk service protocol 'D'). */
async function download(port: number, total: number): Promise<number> {
  const s = await dial(port)
  const head = Buffer.alloc(9)
  head[0] = 0x44
  head.writeBigUInt64BE(BigInt(total), 1)
  const t0 = performance.now()
  let got = 0
  const done = new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => (got += d.length))
    s.on('end', () => resolve())
    s.on('error', reject)
  })
  s.write(head)
  await done
  const ms = performance.now() - t0
  if (got !== total) throw new Error(`download: got ${got} of ${total}`)
  s.destroy()
  return total / MiB / (ms / 1000)
}

/** Connections per second: `workers` loops of dial → 1 byte → echo → close, for `seconds`. */
async function connRate(port: number, workers: number, seconds: number): Promise<number> {
  const deadline = performance.now() + seconds * 1000
  let count = 0
  let errors = 0
  const one = Buffer.from([0x31])
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      try {
        const s = await dial(port)
        await new Promise<void>((resolve, reject) => {
          s.once('data', () => {
            s.end()
            resolve()
          })
          s.once('error', reject)
          s.write(one)
        })
        s.destroy()
        count++
      } catch {
        errors++
      }
    }
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: workers }, worker))
  const s = (performance.now() - t0) / 1000
  if (errors > count / 100) throw new Error(`conn16: ${errors} errors for ${count} connections`)
  return count / s
}

async function main(): Promise<void> {
  const bulk = await startBulkServer()
  const echo = await startEchoServer()
  const token = 'bench-token'
  status('starting wsfrps and wsfrpc')
  const server = startCli('server', ['--bind-addr', '127.0.0.1', '--bind-port', '0', '--token', token], { dist: true })
  const [, serverPort] = await server.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/)
  // One client process carries both proxies, as a real deployment would.
  const dir = mkdtempSync(join(tmpdir(), 'wsfrp-bench-'))
  const cfg = join(dir, 'client.toml')
  writeFileSync(
    cfg,
    [`serverAddr = "127.0.0.1"`, `serverPort = ${serverPort}`, `auth.token = "${token}"`, `log.level = "warn"`]
      .concat(...[['bulk', bulk.port], ['echo', echo.port]].map(([n, p]) => ['', '[[proxies]]', `name = "${n}"`, 'type = "tcp"', `localPort = ${p}`, 'remotePort = 0']))
      .join('\n') + '\n',
  )
  const client = startCli('client', ['-c', cfg], { dist: true })
  const [, bulkRemote] = await client.waitForLine(/\[bulk\].*:(\d+)\s*$/)
  const [, echoRemote] = await client.waitForLine(/\[echo\].*:(\d+)\s*$/)
  try {
    // Warm-up in both directions on both paths: the first hundred MiB through the tunnel run while
    // functions tier up and windows grow, which is not the steady state the ratios describe.
    status('warm-up')
    for (const port of [Number(bulkRemote), bulk.port]) {
      await upload(port, 128 * MiB)
      await download(port, 128 * MiB)
    }
    const up: number[] = []
    const down: number[] = []
    const upD: number[] = []
    const downD: number[] = []
    for (let r = 0; r < ROUNDS; r++) {
      status(`round ${r + 1}/${ROUNDS}: bulk ${BULK / MiB} MiB up and down, direct and tunnelled`)
      upD.push(await upload(bulk.port, BULK))
      up.push(await upload(Number(bulkRemote), BULK))
      downD.push(await download(bulk.port, BULK))
      down.push(await download(Number(bulkRemote), BULK))
    }
    console.log(`up    direct ${fmt(median(upD), 0)} MiB/s  tunnel ${fmt(median(up), 0)} MiB/s  (rounds ${up.map((x) => fmt(x, 0)).join(', ')})`)
    console.log(`down  direct ${fmt(median(downD), 0)} MiB/s  tunnel ${fmt(median(down), 0)} MiB/s  (rounds ${down.map((x) => fmt(x, 0)).join(', ')})`)
    status(`new connections/s with 16 workers, ${CONN_SECONDS} s each`)
    const cD = await connRate(echo.port, 16, CONN_SECONDS)
    const cT = await connRate(Number(echoRemote), 16, CONN_SECONDS)
    console.log(`conn16 direct ${fmt(cD, 0)}/s  tunnel ${fmt(cT, 0)}/s`)
    const rssS = server.peakRssMiB()
    const rssC = client.peakRssMiB()
    console.log(`peak RSS: wsfrps ${fmt(rssS, 1)} MiB, wsfrpc ${fmt(rssC, 1)} MiB`)
    // Each round measures direct and tunnelled back to back; the median of the per-round ratios is
    // steadier than a ratio of medians when a neighbour slows a whole round.
    const upRatio = median(up.map((x, i) => x / upD[i]!))
    const downRatio = median(down.map((x, i) => x / downD[i]!))
    console.log(
      `tunnel: up ${fmt(upRatio)} down ${fmt(downRatio)} conn16 ${fmt(cT / cD)} rss-server-mib ${fmt(rssS, 0)} rss-client-mib ${fmt(rssC, 0)}`,
    )
  } finally {
    await client.stop()
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
    await bulk.close()
    await echo.close()
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)
