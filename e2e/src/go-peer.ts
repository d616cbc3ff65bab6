/**
 * Test fixture for the Go yamux interop peer (`e2e/go/yamux-peer`, built from Debian's Go packages).
 *
 * `startGoPeer()` builds the binary when it is missing or older than its sources, spawns it, and
 * resolves once the peer printed `LISTEN <addr>`. The peer reports every event as one stdout line;
 * tests wait for those lines with `waitForLine()` instead of sleeping.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const goDir = fileURLToPath(new URL('../go/', import.meta.url))
const buildScript = `${goDir}build.sh`
const sources = [`${goDir}yamux-peer/main.go`, buildScript]

/** Path of the built peer binary (gitignored). */
export const goPeerBinary = `${goDir}bin/yamux-peer`

const INSTALL_HINT = 'apt-get install golang-go golang-github-hashicorp-yamux-dev golang-golang-x-net-dev'

/** Options of {@link startGoPeer}; they map one to one onto the peer's flags. */
export interface GoPeerOptions {
  /** `tcp`: raw yamux on TCP. `ws`: yamux inside a WebSocket at `/~!frp`, like frps. */
  transport: 'tcp' | 'ws'
  /** Go `MaxStreamWindowSize` in bytes; default 256 KiB (frp ≥ 0.50 uses 6 MiB). */
  window?: number
  /** ws only: send binary frames (frp ≥ 0.70) instead of text frames (frp ≤ 0.69). */
  binary?: boolean
  /** Go keep-alive interval as a Go duration string, e.g. `'30s'`. */
  keepAlive?: string
}

/** Options of {@link GoPeer.waitForLine}. */
export interface WaitForLineOptions {
  /** Only lines with an index ≥ `since` match (see {@link GoPeer.lineCount}); default 0 = all. */
  since?: number
  /** Milliseconds before the wait fails with the peer's recent output; default 10 000. */
  timeout?: number
}

interface LineWaiter {
  re: RegExp
  since: number
  resolve(m: RegExpExecArray): void
  reject(err: Error): void
  timer: ReturnType<typeof setTimeout>
}

let buildOnce: Promise<string> | undefined

function isStale(): boolean {
  if (!existsSync(goPeerBinary)) return true
  const built = statSync(goPeerBinary).mtimeMs
  return sources.some((src) => statSync(src).mtimeMs > built)
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s))
    child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, output }))
  })
}

/**
 * Builds the peer unless an up-to-date binary exists; memoised per process. Rejects with a
 * "Go toolchain missing: apt-get install …" error when `go` is not installed.
 */
export function buildGoPeer(): Promise<string> {
  buildOnce ??= (async () => {
    if (!isStale()) return goPeerBinary
    const probe = await run('go', ['version']).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new Error(`Go toolchain missing: ${INSTALL_HINT}`)
      throw err
    })
    if (probe.code !== 0) throw new Error(`Go toolchain missing: ${INSTALL_HINT} (go version: ${probe.output.trim()})`)
    const built = await run('sh', [buildScript])
    if (built.code !== 0) throw new Error(`building the Go yamux peer failed (${buildScript}):\n${built.output}`)
    return goPeerBinary
  })()
  // A failed build must not poison later attempts in the same process (e.g. after apt-get install).
  buildOnce.catch(() => {
    buildOnce = undefined
  })
  return buildOnce
}

/** A running Go yamux peer. Always `stop()` it in an after/finally hook. */
export class GoPeer {
  /** `host:port` the peer listens on (always 127.0.0.1 with an OS-chosen port). */
  readonly addr: string
  readonly host: string
  readonly port: number
  /** Every stdout line so far, in order. */
  readonly lines: string[] = []
  readonly #stderr: string[]
  readonly #child: ChildProcess
  readonly #waiters = new Set<LineWaiter>()
  readonly #exited: Promise<void>
  #exitInfo: string | undefined

  /** @internal use {@link startGoPeer} */
  constructor(child: ChildProcess, listenLine: string, earlier: string[], stderr: string[], exited: Promise<void>) {
    this.#child = child
    this.lines.push(...earlier)
    this.#stderr = stderr
    this.#exited = exited
    this.addr = listenLine
    const colon = listenLine.lastIndexOf(':')
    this.host = listenLine.slice(0, colon)
    this.port = Number(listenLine.slice(colon + 1))
  }

  /** Process id of the peer. */
  get pid(): number {
    return this.#child.pid!
  }

  /** The frps-style WebSocket URL (`ws://addr/~!frp`); only meaningful with `transport: 'ws'`. */
  get wsUrl(): string {
    return `ws://${this.addr}/~!frp`
  }

  /** Number of stdout lines so far: pass it as `since` to wait only for lines that come later. */
  get lineCount(): number {
    return this.lines.length
  }

  /** Lines whose text matches `re` (from index `since` on). */
  linesMatching(re: RegExp, since = 0): string[] {
    return this.lines.slice(since).filter((l) => re.test(l))
  }

  /**
   * Resolves with the match of the first stdout line (at index ≥ `since`) that matches `re`, whether
   * it was already printed or arrives later. Rejects on timeout or when the peer exits first; the
   * error carries the peer's recent output as evidence.
   */
  waitForLine(re: RegExp, opts: WaitForLineOptions = {}): Promise<RegExpExecArray> {
    const since = opts.since ?? 0
    for (let i = since; i < this.lines.length; i++) {
      const m = re.exec(this.lines[i]!)
      if (m) return Promise.resolve(m)
    }
    if (this.#exitInfo !== undefined) {
      return Promise.reject(new Error(`Go peer ${this.#exitInfo} before printing ${re}\n${this.tail()}`))
    }
    const timeout = opts.timeout ?? 10_000
    return new Promise((resolve, reject) => {
      const waiter: LineWaiter = {
        re,
        since,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter)
          reject(new Error(`timed out after ${timeout} ms waiting for Go peer line ${re}\n${this.tail()}`))
        }, timeout),
      }
      this.#waiters.add(waiter)
    })
  }

  /** The last `n` stdout and stderr lines, for assertion messages. */
  tail(n = 40): string {
    const out = this.lines.slice(-n).map((l) => `  go> ${l}`)
    const err = this.#stderr.slice(-n).map((l) => `  go! ${l}`)
    return [...out, ...err].join('\n')
  }

  /** Kills the peer by PID (SIGTERM, then SIGKILL if it lingers) and waits for it to exit. */
  async stop(): Promise<void> {
    if (this.#exitInfo === undefined) {
      try {
        process.kill(this.pid, 'SIGTERM')
      } catch {
        // already gone: the exit handler will fire or has fired
      }
      const escalate = setTimeout(() => {
        try {
          process.kill(this.pid, 'SIGKILL')
        } catch {
          // exited in between
        }
      }, 3_000)
      await this.#exited
      clearTimeout(escalate)
    }
  }

  /** @internal */
  onLine(line: string): void {
    this.lines.push(line)
    const index = this.lines.length - 1
    for (const w of this.#waiters) {
      if (index < w.since) continue
      const m = w.re.exec(line)
      if (m) {
        this.#waiters.delete(w)
        clearTimeout(w.timer)
        w.resolve(m)
      }
    }
  }

  /** @internal */
  onExit(info: string): void {
    this.#exitInfo = info
    for (const w of this.#waiters) {
      clearTimeout(w.timer)
      w.reject(new Error(`Go peer ${info} while waiting for ${w.re}\n${this.tail()}`))
    }
    this.#waiters.clear()
  }
}

function splitLines(onLine: (line: string) => void): (chunk: string) => void {
  let partial = ''
  return (chunk) => {
    partial += chunk
    let nl: number
    while ((nl = partial.indexOf('\n')) >= 0) {
      onLine(partial.slice(0, nl).replace(/\r$/, ''))
      partial = partial.slice(nl + 1)
    }
  }
}

/**
 * Builds (if needed) and starts a Go yamux peer listening on 127.0.0.1:0, resolving once it printed
 * its `LISTEN` line. Rejects (after killing the child) if it exits or stays silent for 20 s.
 */
export async function startGoPeer(opts: GoPeerOptions): Promise<GoPeer> {
  const bin = await buildGoPeer()
  const args = ['-transport', opts.transport, '-listen', '127.0.0.1:0', '-exit-on-stdin-eof']
  if (opts.window !== undefined) args.push('-window', String(opts.window))
  if (opts.binary) args.push('-binary')
  if (opts.keepAlive !== undefined) args.push('-keepalive', opts.keepAlive)
  // stdin is a pipe we never write to: if this process dies without stopping the peer, the pipe
  // closes and the peer exits on its own (-exit-on-stdin-eof).
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] })

  const early: string[] = []
  const stderr: string[] = []
  let peer: GoPeer | undefined
  let exitInfo: string | undefined
  let resolveExit!: () => void
  const exited = new Promise<void>((r) => (resolveExit = r))

  return new Promise<GoPeer>((resolve, reject) => {
    const fail = (why: string): void => {
      if (exitInfo === undefined) {
        try {
          process.kill(child.pid!, 'SIGKILL')
        } catch {
          // it is already gone
        }
      }
      reject(new Error(`Go peer ${args.join(' ')}: ${why}\n${[...early, ...stderr].join('\n')}`))
    }
    const startTimer = setTimeout(() => fail('no LISTEN line within 20 s'), 20_000)
    child.on('error', (err) => {
      clearTimeout(startTimer)
      fail(`spawn failed: ${err.message}`)
    })
    child.stderr!.setEncoding('utf8').on('data', splitLines((l) => stderr.push(l)))
    child.stdout!.setEncoding('utf8').on(
      'data',
      splitLines((line) => {
        if (peer) return peer.onLine(line)
        const m = /^LISTEN (\S+)$/.exec(line)
        if (!m) return void early.push(line)
        clearTimeout(startTimer)
        peer = new GoPeer(child, m[1]!, early, stderr, exited)
        resolve(peer)
      }),
    )
    child.on('exit', (code, signal) => {
      exitInfo = signal ? `killed by ${signal}` : `exited with code ${code}`
      resolveExit()
      if (peer) peer.onExit(exitInfo)
      else {
        clearTimeout(startTimer)
        fail(exitInfo)
      }
    })
  })
}
