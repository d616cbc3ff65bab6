/**
 * Child processes for multi-process tests and benchmarks: spawn a wsfrp CLI from its TypeScript
 * source, wait for a line of its output (never a fixed sleep), stop it by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

export interface Proc {
  readonly pid: number
  readonly child: ChildProcess
  /** Every output line so far (stdout and stderr, in arrival order). */
  readonly lines: string[]
  /** Resolves with the first line (from index `since` on) matching `re`; rejects on exit or timeout. */
  waitForLine(re: RegExp, opts?: { since?: number; timeoutMs?: number }): Promise<RegExpMatchArray>
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it is gone. */
  stop(graceMs?: number): Promise<number | string>
  /** SIGKILL now (kill -9). */
  kill9(): Promise<number | string>
  /** Peak resident set size in MiB (VmHWM), while the process runs. */
  peakRssMiB(): number
}

export type Cli = 'server' | 'client'

/**
 * Starts `wsfrps` or `wsfrpc`: from source (tsx) by default, so tests never run a stale build, or
 * the built bins (`bin/wsfrps.mjs` → the `dist/` bundle, with the node flags of its `#!` line) with
 * `dist: true` (benchmarks: what users run).
 */
function binFlags(file: string): string[] {
  const first = readFileSync(file, 'utf8').split('\n', 1)[0] ?? ''
  const m = /^#!\/usr\/bin\/env -S node((?: \S+)*)$/.exec(first)
  return m?.[1] ? m[1].trim().split(' ') : []
}

export function startCli(which: Cli, args: string[], opts: { env?: NodeJS.ProcessEnv; name?: string; dist?: boolean } = {}): Proc {
  const pkg = which === 'server' ? 'packages/server' : 'packages/client-node'
  const bin = which === 'server' ? 'wsfrps.mjs' : 'wsfrpc.mjs'
  // The node flags of the bin's `#!/usr/bin/env -S node …` line, as a user's shell would pass them.
  const binFile = `${ROOT}${pkg}/bin/${bin}`
  const argv = opts.dist ? [...binFlags(binFile), binFile, ...args] : ['--conditions=wsfrp-source', '--import', 'tsx', `${pkg}/src/cli.ts`, ...args]
  return startProc(process.execPath, argv, {
    env: opts.env,
    name: opts.name ?? (which === 'server' ? 'wsfrps' : 'wsfrpc'),
  })
}

export function startProc(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; name?: string; cwd?: string } = {}): Proc {
  const child = spawn(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`)
  const pid = child.pid
  const name = opts.name ?? cmd
  const lines: string[] = []
  const listeners = new Set<() => void>()
  const feed = (stream: NodeJS.ReadableStream): void => {
    let buf = ''
    stream.setEncoding('utf8')
    stream.on('data', (d: string) => {
      buf += d
      let i: number
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, i))
        buf = buf.slice(i + 1)
      }
      for (const l of listeners) l()
    })
  }
  feed(child.stdout!)
  feed(child.stderr!)
  let exitValue: number | string | undefined
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      exitValue = code ?? signal ?? 'unknown'
      for (const l of listeners) l()
      resolve(exitValue)
    })
  })
  const tail = (): string => lines.slice(-20).map((l) => `  ${name}| ${l}`).join('\n')
  const proc: Proc = {
    pid,
    child,
    lines,
    exited,
    waitForLine(re, o = {}) {
      const since = o.since ?? 0
      const timeoutMs = o.timeoutMs ?? 15_000
      return new Promise((resolve, reject) => {
        const check = (): void => {
          for (let i = since; i < lines.length; i++) {
            const m = lines[i]!.match(re)
            if (m) {
              done()
              resolve(m)
              return
            }
          }
          if (exitValue !== undefined) {
            done()
            reject(new Error(`${name} (pid ${pid}) exited with ${exitValue} before printing ${re}\n${tail()}`))
          }
        }
        const timer = setTimeout(() => {
          done()
          reject(new Error(`${name} (pid ${pid}) did not print ${re} within ${timeoutMs} ms\n${tail()}`))
        }, timeoutMs)
        const done = (): void => {
          clearTimeout(timer)
          listeners.delete(check)
        }
        listeners.add(check)
        check()
      })
    },
    async stop(graceMs = 5000) {
      if (exitValue !== undefined) return exitValue
      process.kill(pid, 'SIGTERM')
      const t = setTimeout(() => {
        if (exitValue === undefined) process.kill(pid, 'SIGKILL')
      }, graceMs)
      const v = await exited
      clearTimeout(t)
      return v
    },
    async kill9() {
      if (exitValue === undefined) process.kill(pid, 'SIGKILL')
      return exited
    },
    peakRssMiB() {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8')
      const m = /^VmHWM:\s+(\d+) kB/m.exec(status)
      return m ? Number(m[1]) / 1024 : NaN
    },
  }
  return proc
}
