/**
 * Soak: a bounded mixed load on one wsfrps process (the built program, as users run it).
 *
 *   50 clients × 5 tcp proxies (in-process `createClient` instances of this process), all to echo
 *   services here; 24 workers echo random payloads (1 byte to 256 KiB, checked byte for byte)
 *   through random proxies, while a churn worker keeps stopping a random client and starting it
 *   again (its proxies come back, usually on the same ports).
 *
 * Runs SOAK_SECONDS (default 120). Reports the server's RSS (VmRSS) and open fds with every client
 * connected, before and after the load.
 *
 * Last line: `soak: clients N proxies N errors N rss-start-mib N rss-end-mib N fd-start N fd-end N`
 */
import net from 'node:net'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { readFileSync, readdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient, type WsfrpClient } from '@wsfrp/client-node'
import { validateClientConfig } from '@wsfrp/core'
import { startCli } from '../../e2e/src/process.js'
import { startEchoServer } from '../../e2e/src/services.js'
import { MiB, fmt, status } from './util.js'

const SECONDS = Number(process.env.SOAK_SECONDS ?? 120)
const CLIENTS = Number(process.env.SOAK_CLIENTS ?? 50)
const PROXIES = 5
const WORKERS = 24
const TOKEN = 'soak-token'

interface Slot {
  index: number
  client: WsfrpClient
  ports: number[]
  up: boolean
  inflight: number
  idle: (() => void) | undefined
  cycles: number
}

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? NaN : Number(m[1]) / 1024
}

const fds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length

/** Echoes `data` through `port` (half-close after sending) and checks the reply. */
async function echoOnce(port: number, data: Buffer): Promise<void> {
  const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  const chunks: Buffer[] = []
  try {
    await once(s, 'connect')
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('echo timed out after 30 s')), 30_000)
      s.on('data', (d: Buffer) => chunks.push(d))
      s.on('end', () => {
        clearTimeout(t)
        resolve()
      })
      s.on('error', (e) => {
        clearTimeout(t)
        reject(e)
      })
      s.end(data)
    })
  } finally {
    s.destroy()
  }
  const back = Buffer.concat(chunks)
  if (!back.equals(data)) throw new Error(`echo mismatch: sent ${data.length} bytes, got ${back.length}`)
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wsfrp-soak-'))
  const cfgFile = join(dir, 'server.toml')
  writeFileSync(cfgFile, `bindAddr = "127.0.0.1"\nbindPort = 0\nproxyBindAddr = "127.0.0.1"\nauth.token = "${TOKEN}"\nlog.level = "warn"\n`)
  const server = startCli('server', ['-c', cfgFile], { dist: true })
  const echoes = await Promise.all(Array.from({ length: 4 }, () => startEchoServer()))
  let errors = 0
  const errorKinds = new Map<string, number>()
  const fail = (what: string, err: unknown): void => {
    errors++
    const key = `${what}: ${err instanceof Error ? err.message : String(err)}`.slice(0, 120)
    errorKinds.set(key, (errorKinds.get(key) ?? 0) + 1)
  }
  try {
    const [, port] = await server.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)\/~!frp/)
    const serverPort = Number(port)

    /** Starts client `i`; resolves once all its proxies run, with their ports. */
    const startSlot = async (i: number): Promise<{ client: WsfrpClient; ports: number[] }> => {
      const cfg = validateClientConfig({
        serverAddr: '127.0.0.1',
        serverPort,
        auth: { token: TOKEN },
        proxies: Array.from({ length: PROXIES }, (_, j) => ({ name: `c${i}-p${j}`, type: 'tcp', localIP: '127.0.0.1', localPort: echoes[(i + j) % echoes.length]!.port })),
      })
      const client = createClient(cfg, { env: {}, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } })
      const ports = new Map<string, number>()
      const allUp = new Promise<void>((resolve, reject) => {
        client.on('proxy', (p) => {
          if (p.status === 'running' && p.remotePort !== undefined) ports.set(p.name, p.remotePort)
          else if (p.status === 'error') reject(new Error(`${p.name}: ${p.error}`))
          if (ports.size === PROXIES) resolve()
        })
      })
      await client.start()
      await allUp
      return { client, ports: Array.from({ length: PROXIES }, (_, j) => ports.get(`c${i}-p${j}`)!) }
    }

    status(`starting ${CLIENTS} clients × ${PROXIES} proxies`)
    const slots: Slot[] = []
    for (let i = 0; i < CLIENTS; i += 10) {
      const batch = await Promise.all(Array.from({ length: Math.min(10, CLIENTS - i) }, (_, k) => startSlot(i + k)))
      batch.forEach((b, k) => slots.push({ index: i + k, ...b, up: true, inflight: 0, idle: undefined, cycles: 0 }))
    }
    // Warm-up: every proxy once.
    for (const s of slots) await Promise.all(s.ports.map((p) => echoOnce(p, randomBytes(1024))))
    const rssStart = rssMiB(server.pid)
    const fdStart = fds(server.pid)
    status(`load for ${SECONDS} s (server RSS ${fmt(rssStart, 1)} MiB, ${fdStart} fds)`)

    const deadline = Date.now() + SECONDS * 1000
    let echoed = 0
    let echoedBytes = 0
    let churns = 0
    const worker = async (): Promise<void> => {
      while (Date.now() < deadline) {
        const s = slots[Math.floor(Math.random() * slots.length)]!
        if (!s.up) continue
        const port = s.ports[Math.floor(Math.random() * PROXIES)]!
        // Mostly small messages, some large ones.
        const size = Math.random() < 0.9 ? 1 + Math.floor(Math.random() * 4096) : 64 * 1024 + Math.floor(Math.random() * 192 * 1024)
        s.inflight++
        try {
          await echoOnce(port, randomBytes(size))
          echoed++
          echoedBytes += size
        } catch (err) {
          fail('echo', err)
        } finally {
          s.inflight--
          if (s.inflight === 0) s.idle?.()
        }
      }
    }
    const churn = async (): Promise<void> => {
      while (Date.now() < deadline) {
        const s = slots[Math.floor(Math.random() * slots.length)]!
        // Workers stop picking it; the ones using it finish first, so a churn is never an echo error.
        s.up = false
        if (s.inflight > 0) await new Promise<void>((resolve) => (s.idle = resolve))
        s.idle = undefined
        try {
          await s.client.stop()
          const next = await startSlot(s.index)
          s.client = next.client
          s.ports = next.ports
          s.cycles++
          churns++
        } catch (err) {
          fail('churn', err)
        }
        s.up = true
      }
    }
    const progress = setInterval(() => status(`echoes ${echoed} (${fmt(echoedBytes / MiB, 0)} MiB), churns ${churns}, errors ${errors}, server RSS ${fmt(rssMiB(server.pid), 1)} MiB, ${fds(server.pid)} fds`), 15_000)
    await Promise.all([...Array.from({ length: WORKERS }, () => worker()), churn()])
    clearInterval(progress)

    // Every client connected again and the load gone: the same state as at the start.
    const rssEnd = rssMiB(server.pid)
    const fdEnd = fds(server.pid)
    console.log(`echoes ${echoed}, ${fmt(echoedBytes / MiB, 0)} MiB echoed, ${churns} client restarts, ${fmt(echoed / SECONDS, 0)} echoes/s`)
    console.log(`server RSS ${fmt(rssStart, 1)} → ${fmt(rssEnd, 1)} MiB, peak ${fmt(server.peakRssMiB(), 1)} MiB; fds ${fdStart} → ${fdEnd}`)
    for (const [k, n] of errorKinds) console.log(`error ×${n}: ${k}`)
    await Promise.all(slots.map((s) => s.client.stop()))
    console.log(`soak: clients ${slots.length} proxies ${slots.length * PROXIES} errors ${errors} rss-start-mib ${fmt(rssStart, 1)} rss-end-mib ${fmt(rssEnd, 1)} fd-start ${fdStart} fd-end ${fdEnd}`)
  } finally {
    await server.stop()
    await Promise.all(echoes.map((e) => e.close()))
    rmSync(dir, { recursive: true, force: true })
  }
  if (errors > 0) process.exitCode = 1
}

await main()
