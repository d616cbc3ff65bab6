/**
 * Browser client benchmark (issue 6): an http handler in page mode, in headless Chromium, served
 * through wsfrps (the built CLI, its own process) to Node and wrk on 127.0.0.1.
 *
 * Chromium is started directly, not through Playwright: with DevTools attached, every WebSocket
 * frame is also reported over CDP (payload included), which was measured to cut the download rate
 * to a third (40 → 12-15 MiB/s on the same machine). The page is told everything in its URL, and
 * the bench learns that the handler is published from wsfrps's log.
 *
 * - rps: `wrk -t2 -c16 -d<BENCH_WEB_SECONDS>s` on a 3-byte response (handler `/tiny`);
 * - mibps: one download of BENCH_WEB_MIB MiB (handler `/big`, 64 KiB chunks pulled as the tunnel
 *   takes them), read by Node;
 * - bundle-kb: size of `wsfrp-sw.js`, minified, in SI kilobytes (as its budget counts).
 *
 * Last line: `web: rps N mibps N bundle-kb N`.
 */
import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import * as http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { performance } from 'node:perf_hooks'
import { CHROMIUM_ARGS, CHROMIUM_PATH, WWW, buildBundles, chromiumMissing, startStaticServer } from '../../e2e/src/chromium.js'
import { startCli, startProc, type Proc } from '../../e2e/src/process.js'
import { MiB, fmt, status } from './util.js'

const SECONDS = Number(process.env.BENCH_WEB_SECONDS ?? '10')
const DOWNLOAD_MIB = Number(process.env.BENCH_WEB_MIB ?? '128')
const execFileP = promisify(execFile)
const HOST = 'web.bench.test'

function ensureWrk(): void {
  if (spawnSync('wrk', ['--version']).error === undefined) return
  status('wrk is missing: installing it from Debian (apt-get install -y wrk)')
  const r = spawnSync('bash', ['-c', 'export DEBIAN_FRONTEND=noninteractive; (apt-get install -y -qq wrk || (apt-get update -qq && apt-get install -y -qq wrk)) >/dev/null'], { stdio: 'inherit' })
  if (r.status !== 0 || spawnSync('wrk', ['--version']).error !== undefined) throw new Error('wrk is required: apt-get install wrk')
}

async function wrk(port: number): Promise<{ rps: number; errors: number; report: string }> {
  const { stdout } = await execFileP('wrk', ['-t2', '-c16', `-d${SECONDS}s`, '-H', `Host: ${HOST}`, `http://127.0.0.1:${port}/tiny`], { encoding: 'utf8' })
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0)
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout)
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? NaN),
    errors: non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
    report: stdout,
  }
}

/** Downloads `mib` MiB through the vhost; resolves with MiB/s (time to the last byte). */
function download(port: number, mib: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const req = http.get({ host: '127.0.0.1', port, path: `/big?mib=${mib}`, headers: { Host: HOST }, agent: false }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`download: HTTP ${res.statusCode}`))
      let n = 0
      res.on('data', (c: Buffer) => (n += c.length))
      res.on('end', () => {
        if (n !== mib * MiB) return reject(new Error(`download: got ${n} bytes, expected ${mib * MiB}`))
        resolve(mib / ((performance.now() - t0) / 1000))
      })
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

async function main(): Promise<void> {
  if (chromiumMissing('web bench')) throw new Error('the web bench needs Chromium')
  ensureWrk()
  const bundles = await buildBundles()
  const site = await startStaticServer([WWW, bundles.dir])
  const dir = mkdtempSync(join(tmpdir(), 'wsfrp-bench-web-'))
  const token = 'bench-web'
  // log.level info: the bench waits for the "proxy registered" line.
  writeFileSync(join(dir, 'server.toml'), `bindAddr = "127.0.0.1"\nbindPort = 0\nsubDomainHost = "bench.test"\nauth.token = "${token}"\nlog.level = "info"\n`)
  const server = startCli('server', ['-c', join(dir, 'server.toml')], { dist: true })
  let chromium: Proc | undefined
  try {
    const port = Number((await server.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/))[1])
    const q = new URLSearchParams({ server: `ws://127.0.0.1:${port}`, token, sub: 'web' })
    const since = server.lines.length
    chromium = startProc(CHROMIUM_PATH, ['--headless', ...CHROMIUM_ARGS, `--user-data-dir=${join(dir, 'profile')}`, `${site.origin}/page-mode.html?${q}`], { name: 'chromium' })
    await server.waitForLine(/proxy registered.*page-web/, { since, timeoutMs: 30_000 }).catch((err: Error) => {
      throw new Error(`the page did not publish its handler: ${err.message}\n${chromium!.lines.slice(-20).join('\n')}`)
    })

    // Warm-up: the first requests open work streams and JIT the parser.
    await download(port, 8)
    status(`wrk -t2 -c16 -d${SECONDS}s GET /tiny through wsfrps to the page's handler`)
    const w = await wrk(port)
    if (w.errors > 0 || !Number.isFinite(w.rps)) throw new Error(`wrk saw ${w.errors} errors:\n${w.report}`)
    status(`download ${DOWNLOAD_MIB} MiB from the page's handler`)
    const mibps = await download(port, DOWNLOAD_MIB)
    const kb = bundles.sizes['wsfrp-sw.js']! / 1000
    console.log(`page mode, ${spawnSync(CHROMIUM_PATH, ['--version'], { encoding: 'utf8' }).stdout.trim()}`)
    console.log(`requests   ${fmt(w.rps, 0)} req/s (wrk -t2 -c16, ${SECONDS} s, 3-byte body)`)
    console.log(`download   ${fmt(mibps, 1)} MiB/s (${DOWNLOAD_MIB} MiB, one request)`)
    console.log(`bundles    ${Object.entries(bundles.sizes).map(([f, n]) => `${f} ${fmt(n / 1000, 1)} KB`).join(', ')}`)
    console.log(`peak RSS   wsfrps ${fmt(server.peakRssMiB(), 1)} MiB`)
    console.log(`web: rps ${fmt(w.rps, 0)} mibps ${fmt(mibps, 1)} bundle-kb ${fmt(kb, 1)}`)
  } finally {
    await chromium?.stop()
    await server.stop()
    await site.close()
    bundles.remove()
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
