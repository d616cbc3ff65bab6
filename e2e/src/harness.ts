/**
 * Shared pieces of the robustness, reload and isolation suites: config files in a temp dir, the
 * server and client processes, echo round trips, and what /proc says about a process.
 */
import net from 'node:net'
import { once } from 'node:events'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startCli, startProc, type Proc } from './process.js'

export const TOKEN = 'e2e-robust-token'
export const READY_SERVER = /listening on ws:\/\/127\.0\.0\.1:(\d+)\/~!frp/
export const proxyUp = (name: string): RegExp => new RegExp(`\\[${name}\\] tcp proxy running: .* ⇐ .*:(\\d+)\\s*$`)

/** A temp dir and the processes of one test file; `cleanup()` stops every process by PID. */
export class Harness {
  readonly dir = mkdtempSync(join(tmpdir(), 'wsfrp-robust-'))
  private readonly procs = new Set<Proc>()

  track(p: Proc): Proc {
    this.procs.add(p)
    void p.exited.then(() => this.procs.delete(p))
    return p
  }

  file(name: string, text: string): string {
    const f = join(this.dir, name)
    writeFileSync(f, text)
    return f
  }

  /**
   * Starts wsfrps on 127.0.0.1:0 with `extraToml` appended. `exposeGc` runs it with --expose-gc so
   * that its SIGUSR2 stats line reports the live heap.
   */
  async server(extraToml = '', opts: { exposeGc?: boolean; name?: string } = {}): Promise<{ proc: Proc; port: number }> {
    const file = this.file(`server-${Math.random().toString(16).slice(2)}.toml`, `bindAddr = "127.0.0.1"\nbindPort = 0\nproxyBindAddr = "127.0.0.1"\nauth.token = "${TOKEN}"\n${extraToml}\n`)
    const proc = this.track(
      opts.exposeGc
        ? startProc(process.execPath, ['--expose-gc', '--conditions=wsfrp-source', '--import', 'tsx', 'packages/server/src/cli.ts', '-c', file], { name: opts.name ?? 'wsfrps' })
        : startCli('server', ['-c', file], { name: opts.name }),
    )
    const [, p] = await proc.waitForLine(READY_SERVER)
    return { proc, port: Number(p) }
  }

  /** Writes a client config (TOML text after the server lines) and starts wsfrpc on it. */
  client(serverPort: number, bodyToml: string, opts: { token?: string; name?: string; file?: string } = {}): { proc: Proc; file: string } {
    const file = opts.file ?? join(this.dir, `client-${Math.random().toString(16).slice(2)}.toml`)
    writeFileSync(file, clientToml(serverPort, bodyToml, opts.token))
    return { proc: this.track(startCli('client', ['-c', file], { name: opts.name })), file }
  }

  async cleanup(): Promise<void> {
    await Promise.all([...this.procs].map((p) => p.stop()))
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** The text of a client config: server, token, then `bodyToml` (proxies, transport…). */
export function clientToml(serverPort: number, bodyToml: string, token = TOKEN): string {
  return `serverAddr = "127.0.0.1"\nserverPort = ${serverPort}\nauth.token = "${token}"\nloginFailExit = false\n${bodyToml}\n`
}

/** `[[proxies]]` of a tcp proxy. */
export function tcpProxy(name: string, localPort: number, remotePort = 0): string {
  return `\n[[proxies]]\nname = "${name}"\ntype = "tcp"\nlocalIP = "127.0.0.1"\nlocalPort = ${localPort}\nremotePort = ${remotePort}\n`
}

export async function dial(port: number): Promise<net.Socket> {
  const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  await once(s, 'connect')
  return s
}

/** Sends `data`, half-closes, and resolves with the whole reply (until the peer's FIN). */
export async function roundTrip(port: number, data: Buffer | string, timeoutMs = 10_000): Promise<Buffer> {
  const s = await dial(port)
  const chunks: Buffer[] = []
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no complete reply on port ${port} within ${timeoutMs} ms`)), timeoutMs)
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
  return Buffer.concat(chunks)
}

/** Writes `msg` on a held connection and resolves once the same bytes came back. */
export async function echoOn(s: net.Socket, msg: string, timeoutMs = 10_000): Promise<void> {
  let got = ''
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      s.off('data', onData)
      reject(new Error(`echo of ${JSON.stringify(msg)} did not come back within ${timeoutMs} ms (got ${JSON.stringify(got)})`))
    }, timeoutMs)
    const onData = (d: Buffer): void => {
      got += d.toString()
      if (got.length >= msg.length) {
        clearTimeout(t)
        s.off('data', onData)
        if (got === msg) resolve()
        else reject(new Error(`echoed ${JSON.stringify(got)} instead of ${JSON.stringify(msg)}`))
      }
    }
    s.on('data', onData)
    s.write(msg)
  })
}

/** VmRSS of a process in KiB (what it holds now, not its peak). */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(m[1])
}

/** Open file descriptors of a process. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

export interface ServerStatsLine {
  clients: number
  proxies: number
  transports: number
  streams: number
  conns: number
  heapUsed: number
  rss: number
}

/** Asks a wsfrps process for its counters (SIGUSR2) and parses the line it prints. */
export async function serverStats(proc: Proc): Promise<ServerStatsLine> {
  const since = proc.lines.length
  process.kill(proc.pid, 'SIGUSR2')
  const m = await proc.waitForLine(/wsfrps stats clients=(\d+) proxies=(\d+) transports=(\d+) streams=(\d+) conns=(\d+) heap-used=(\d+) rss=(\d+)/, { since, timeoutMs: 10_000 })
  const n = m.slice(1).map(Number)
  return { clients: n[0]!, proxies: n[1]!, transports: n[2]!, streams: n[3]!, conns: n[4]!, heapUsed: n[5]!, rss: n[6]! }
}

/**
 * Polls `check` (which may do I/O, e.g. a round trip) until it returns true, at most `tries` times;
 * returns whether it did. The pacing is the work each check does, never a fixed sleep.
 */
export async function until(check: () => Promise<boolean> | boolean, tries: number): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true
    await new Promise<void>((r) => setImmediate(r))
  }
  return false
}

/** Resolves once `port` on 127.0.0.1 can be bound again (the server closed its listener). */
export async function portIsFree(port: number): Promise<boolean> {
  const probe = net.createServer()
  const ok = await new Promise<boolean>((resolve) => {
    probe.once('error', () => resolve(false))
    probe.listen(port, '127.0.0.1', () => resolve(true))
  })
  if (ok) await new Promise<void>((r) => probe.close(() => r()))
  return ok
}
