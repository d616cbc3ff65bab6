/**
 * squid as a corporate forward proxy for tests: Basic auth (basic_ncsa_auth + an htpasswd file
 * from `htpasswd -b -c`), CONNECT to any port, no cache, on 127.0.0.1, in the foreground
 * (`squid -N`), stopped by PID.
 *
 * Its access log is sent over TCP to a listener here (squid's `tcp://` log module), so tests wait
 * for a log line as an event instead of polling a file that squid (running as user `proxy`) writes.
 */
import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs'
import * as net from 'node:net'
import { join } from 'node:path'
import { freePort } from './nginx.js'
import { startProc, type Proc } from './process.js'

export interface Squid {
  readonly proc: Proc
  readonly port: number
  /** `http://user:password@127.0.0.1:port` for the first user (or without credentials). */
  readonly url: string
  /** Access log lines received so far. */
  readonly accessLog: string[]
  /** Resolves with the first access log line (from index `since`) matching `re`. */
  waitForAccess(re: RegExp, opts?: { since?: number; timeoutMs?: number }): Promise<string>
  stop(): Promise<void>
}

export interface StartSquidOptions {
  /** Parent for squid's own dir. */
  tmp: string
  /** Accounts for Basic auth; the first one goes into `url`. */
  users: { user: string; password: string }[]
}

const READY = /Accepting HTTP Socket connections at \S+ local=127\.0\.0\.1:(\d+)/
const BIND_FAILED = /Address already in use|Cannot open HTTP Port/

/** A TCP listener for squid's `access_log tcp://…` records, one per line. */
async function startLogSink(): Promise<{ port: number; lines: string[]; onLine: Set<() => void>; close(): Promise<void> }> {
  const lines: string[] = []
  const onLine = new Set<() => void>()
  const sockets = new Set<net.Socket>()
  const server = net.createServer((s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    let buf = ''
    s.setEncoding('utf8')
    s.on('data', (d: string) => {
      buf += d
      let i: number
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, i))
        buf = buf.slice(i + 1)
      }
      for (const f of onLine) f()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as net.AddressInfo).port,
    lines,
    onLine,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

export async function startSquid(opts: StartSquidOptions): Promise<Squid> {
  // mkdtemp makes 0700 dirs: the unprivileged user must also be able to pass through the parent.
  chmodSync(opts.tmp, statSync(opts.tmp).mode | 0o711)
  const dir = mkdtempSync(join(opts.tmp, 'squid-'))
  // squid drops to user `proxy` when started as root: the dir must be traversable, the password
  // file readable, the log dir writable by it.
  chmodSync(dir, 0o755)
  const logs = join(dir, 'logs')
  mkdirSync(logs)
  chmodSync(logs, 0o777)
  const htpasswd = join(dir, 'htpasswd')
  opts.users.forEach(({ user, password }, i) => {
    const r = spawnSync('htpasswd', [...(i === 0 ? ['-c'] : []), '-b', htpasswd, user, password], { encoding: 'utf8' })
    if (r.error !== undefined || r.status !== 0) throw new Error(`htpasswd failed: ${r.error?.message ?? r.stderr}`)
  })
  chmodSync(htpasswd, 0o644)
  const sink = await startLogSink()

  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const conf = join(dir, `squid-${attempt}.conf`)
    writeFileSync(
      conf,
      `http_port 127.0.0.1:${port}
pid_filename ${dir}/squid-${attempt}.pid
cache_log ${logs}/cache.log
access_log tcp://127.0.0.1:${sink.port}
cache deny all
cache_mem 8 MB
icp_port 0
htcp_port 0
pinger_enable off
netdb_filename none
coredump_dir ${dir}
visible_hostname wsfrp-e2e
# The tests stop squid by PID; they must not wait 30 s for open tunnels.
shutdown_lifetime 0 seconds
auth_param basic program /usr/lib/squid/basic_ncsa_auth ${htpasswd}
auth_param basic realm wsfrp-e2e
acl authed proxy_auth REQUIRED
# CONNECT to any port: wsfrps listens on an ephemeral one (a stock squid.conf allows only 443).
http_access allow authed
http_access deny all
`,
    )
    const proc = startProc('squid', ['-N', '-d', '1', '-f', conf], { name: 'squid' })
    const stop = async (): Promise<void> => {
      await proc.stop()
    }
    let m: RegExpMatchArray
    try {
      m = await proc.waitForLine(new RegExp(`${READY.source}|${BIND_FAILED.source}|FATAL`), { timeoutMs: 20_000 })
    } catch (err) {
      await stop()
      await sink.close()
      throw err
    }
    if (!READY.test(m[0])) {
      await stop()
      if (!BIND_FAILED.test(m[0]) || attempt >= 5) {
        await sink.close()
        throw new Error(`squid did not start: ${m[0]}\n${proc.lines.join('\n')}`)
      }
      continue
    }
    const first = opts.users[0]
    const cred = first !== undefined ? `${encodeURIComponent(first.user)}:${encodeURIComponent(first.password)}@` : ''
    return {
      proc,
      port,
      url: `http://${cred}127.0.0.1:${port}`,
      accessLog: sink.lines,
      waitForAccess(re, o = {}) {
        const since = o.since ?? 0
        return new Promise<string>((resolve, reject) => {
          const check = (): void => {
            const hit = sink.lines.slice(since).find((l) => re.test(l))
            if (hit === undefined) return
            done()
            resolve(hit)
          }
          const timer = setTimeout(() => {
            done()
            reject(new Error(`squid logged no access line matching ${re} within ${o.timeoutMs ?? 10_000} ms; got:\n${sink.lines.join('\n')}`))
          }, o.timeoutMs ?? 10_000)
          const done = (): void => {
            clearTimeout(timer)
            sink.onLine.delete(check)
          }
          sink.onLine.add(check)
          check()
        })
      },
      async stop() {
        await stop()
        await sink.close()
      },
    }
  }
}
