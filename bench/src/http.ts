/**
 * HTTP vhost benchmark (issue: HTTP virtual hosts): wrk -t2 -c50 -d10s against a local Node HTTP
 * service directly, then through wsfrps's vhost and a wsfrpc http proxy (separate processes), in
 * one run: a 3-second warm-up each, then 3 rounds alternating direct and tunnel (medians; BENCH_ROUNDS).
 * wrk comes from Debian; it is installed here when missing (root) or the bench says how.
 *
 * Last line: `http: rps-ratio R p50-ms N p99-ms N` (latencies through the tunnel).
 */
import http from 'node:http'
import { once } from 'node:events'
import { execFile, spawnSync } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startCli } from '../../e2e/src/process.js'
import { fmt, median, status } from './util.js'

const DURATION = process.env.BENCH_HTTP_SECONDS ?? '10'
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const execFileP = promisify(execFile)

function ensureWrk(): void {
  if (spawnSync('wrk', ['--version']).error === undefined) return
  status('wrk is missing: installing it from Debian (apt-get install -y wrk)')
  const r = spawnSync('bash', ['-c', 'export DEBIAN_FRONTEND=noninteractive; (apt-get install -y -qq wrk || (apt-get update -qq && apt-get install -y -qq wrk)) >/dev/null'], { stdio: 'inherit' })
  if (r.status !== 0 || spawnSync('wrk', ['--version']).error !== undefined) {
    throw new Error('wrk is required: apt-get install wrk')
  }
}

interface WrkResult {
  rps: number
  p50: number
  p99: number
  errors: number
}

/** Runs wrk with latency percentiles and parses its report (async: the service lives in this process). */
async function wrk(url: string, host?: string, seconds = DURATION): Promise<WrkResult> {
  const args = ['-t2', '-c50', `-d${seconds}s`, '--latency', ...(host ? ['-H', `Host: ${host}`] : []), url]
  const { stdout: out } = await execFileP('wrk', args, { encoding: 'utf8' })
  const ms = (re: RegExp): number => {
    const m = re.exec(out)
    if (!m) throw new Error(`cannot parse wrk output:\n${out}`)
    const v = Number(m[1])
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v
  }
  const errs = /Non-2xx or 3xx responses: (\d+)/.exec(out)
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]),
    p50: ms(/50%\s+([\d.]+)(us|ms|s)/),
    p99: ms(/99%\s+([\d.]+)(us|ms|s)/),
    errors: Number(errs?.[1] ?? 0) + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
  }
}

async function main(): Promise<void> {
  ensureWrk()
  // The local service: a 19-byte keep-alive body, like the frp baseline (frp-observed.md).
  const app = http.createServer((_req, res) => {
    res.setHeader('content-type', 'text/plain')
    res.end('hello from backend\n')
  })
  app.listen(0, '127.0.0.1')
  await once(app, 'listening')
  const appPort = (app.address() as import('node:net').AddressInfo).port
  const dir = mkdtempSync(join(tmpdir(), 'wsfrp-bench-http-'))
  const token = 'bench-http'
  writeFileSync(join(dir, 'server.toml'), `bindAddr = "127.0.0.1"\nbindPort = 0\nauth.token = "${token}"\nlog.level = "warn"\n`)
  const server = startCli('server', ['-c', join(dir, 'server.toml')], { dist: true })
  const serverPort = Number((await server.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/))[1])
  writeFileSync(
    join(dir, 'client.toml'),
    [`serverAddr = "127.0.0.1"`, `serverPort = ${serverPort}`, `auth.token = "${token}"`, `log.level = "warn"`, '', '[[proxies]]', 'name = "web"', 'type = "http"', `localPort = ${appPort}`, 'customDomains = ["bench.test"]'].join('\n') + '\n',
  )
  const client = startCli('client', ['-c', join(dir, 'client.toml')], { dist: true })
  await client.waitForLine(/\[web\] http proxy running/)
  try {
    // Warm-up: the first seconds through the tunnel include JIT tier-up and opening the 50 work
    // streams, which are not the steady state the figures describe.
    status('warm-up: wrk -d3s direct and through the tunnel')
    await wrk(`http://127.0.0.1:${appPort}/`, undefined, '3')
    await wrk(`http://127.0.0.1:${serverPort}/`, 'bench.test', '3')
    // Rounds alternate direct and tunnel; the ratio is per round and the figures are medians, since
    // one 10-second p99 on a shared 2-core machine moves by ±25 % from run to run.
    const directs: WrkResult[] = []
    const tunnels: WrkResult[] = []
    for (let r = 0; r < ROUNDS; r++) {
      status(`round ${r + 1}/${ROUNDS}: wrk -t2 -c50 -d${DURATION}s direct`)
      const direct = await wrk(`http://127.0.0.1:${appPort}/`)
      status(`round ${r + 1}/${ROUNDS}: wrk -t2 -c50 -d${DURATION}s through wsfrps + wsfrpc`)
      const tunnel = await wrk(`http://127.0.0.1:${serverPort}/`, 'bench.test')
      console.log(`round ${r + 1}: direct ${fmt(direct.rps, 0)} req/s p99 ${fmt(direct.p99)} ms | tunnel ${fmt(tunnel.rps, 0)} req/s p50 ${fmt(tunnel.p50)} ms p99 ${fmt(tunnel.p99)} ms`)
      if (tunnel.errors > 0) throw new Error(`${tunnel.errors} errors through the tunnel`)
      directs.push(direct)
      tunnels.push(tunnel)
    }
    const ratio = median(tunnels.map((t, i) => t.rps / directs[i]!.rps))
    const p50 = median(tunnels.map((t) => t.p50))
    const p99 = median(tunnels.map((t) => t.p99))
    console.log(`direct  ${fmt(median(directs.map((d) => d.rps)), 0)} req/s  p50 ${fmt(median(directs.map((d) => d.p50)))} ms  p99 ${fmt(median(directs.map((d) => d.p99)))} ms (medians of ${ROUNDS})`)
    console.log(`tunnel  ${fmt(median(tunnels.map((t) => t.rps)), 0)} req/s  p50 ${fmt(p50)} ms  p99 ${fmt(p99)} ms (medians of ${ROUNDS})`)
    console.log(`peak RSS: wsfrps ${fmt(server.peakRssMiB(), 1)} MiB, wsfrpc ${fmt(client.peakRssMiB(), 1)} MiB`)
    console.log(`http: rps-ratio ${fmt(ratio)} p50-ms ${fmt(p50)} p99-ms ${fmt(p99)}`)
  } finally {
    await client.stop()
    await server.stop()
    app.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)
