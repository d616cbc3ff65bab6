/**
 * nginx as a test peer (a reverse proxy in front of wsfrps): its own prefix and config in a temp
 * dir, in the foreground (`daemon off`), listening on 127.0.0.1 only, stopped by PID.
 *
 * Also the two helpers the external-binary suites share: {@link missingTools} (skip loudly on a
 * developer machine, fail in CI) and {@link freePort}.
 */
import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs'
import * as net from 'node:net'
import { join } from 'node:path'
import { startProc, type Proc } from './process.js'

/**
 * Which of `tools` cannot be run. Without them a suite is skipped loudly on a developer machine
 * (scripts/install-test-deps.sh installs them) and fails in CI (CI set), where .ci/run installs
 * them and a skip would hide a gap. Returns the skip reason, or false when all are present.
 */
export function missingTools(suite: string, tools: { bin: string; args?: string[]; pkg: string }[]): string | false {
  const missing = tools.filter((t) => {
    const r = spawnSync(t.bin, t.args ?? ['-v'], { stdio: 'ignore' })
    return r.error !== undefined
  })
  if (missing.length === 0) return false
  const msg = `${missing.map((t) => t.bin).join(', ')} missing: run \`bash scripts/install-test-deps.sh\` (${missing.map((t) => t.pkg).join(' ')})`
  if (process.env.CI) throw new Error(`${msg}; CI must run the ${suite} suite`)
  console.warn(`SKIPPING ${suite} tests: ${msg}`)
  return msg
}

/**
 * A port that was free a moment ago: bound on 127.0.0.1:0 by the OS, read back, closed. Only for
 * programs that cannot bind port 0 and report it (nginx, squid, $PORT); callers retry on
 * EADDRINUSE because another process may take the port in between.
 */
export async function freePort(): Promise<number> {
  const s = net.createServer()
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  const { port } = s.address() as net.AddressInfo
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

export interface Nginx {
  readonly proc: Proc
  /** The ports handed to the config, in order. */
  readonly ports: number[]
  /** The prefix dir (config, pid file, access.log). */
  readonly dir: string
  /** Stops the master (fast shutdown), then any worker still alive, by PID. */
  stop(): Promise<void>
}

export interface StartNginxOptions {
  /** Parent for the prefix dir. */
  tmp: string
  /** How many listen ports the config needs. */
  ports: number
  /** The `http { … }` body: server blocks using the ports. */
  http: (ports: number[]) => string
}

const BIND_FAILED = /bind\(\) to \S+ failed \(98: Address already in use\)/
const READY = /start worker process (\d+)/

/**
 * Starts nginx and resolves once its workers run (the listen sockets are bound before that). A port
 * taken in the meantime makes nginx report EADDRINUSE: then it is stopped and started again on new
 * ports, up to 5 times.
 */
export async function startNginx(opts: StartNginxOptions): Promise<Nginx> {
  for (let attempt = 1; ; attempt++) {
    const ports = await Promise.all(Array.from({ length: opts.ports }, () => freePort()))
    if (new Set(ports).size !== ports.length) continue
    // mkdtemp makes 0700 dirs: the unprivileged user must also be able to pass through the parent.
    chmodSync(opts.tmp, statSync(opts.tmp).mode | 0o711)
    const dir = mkdtempSync(join(opts.tmp, 'nginx-'))
    // Workers run as nobody when the tests run as root: they must reach the temp paths.
    chmodSync(dir, 0o755)
    const tmp = join(dir, 'tmp')
    mkdirSync(tmp)
    chmodSync(tmp, 0o777)
    const conf = join(dir, 'nginx.conf')
    writeFileSync(
      conf,
      `worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr info;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${tmp}/client;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
${opts.http(ports)}
}
`,
    )
    // -e stderr: nginx opens its compiled-in error log before reading the config otherwise.
    const proc = startProc('nginx', ['-p', `${dir}/`, '-c', conf, '-e', 'stderr', '-g', 'daemon off;'], { name: 'nginx' })
    const workers = new Set<number>()
    const stop = async (): Promise<void> => {
      await proc.stop()
      for (const l of proc.lines) {
        const m = READY.exec(l)
        if (m !== null) workers.add(Number(m[1]))
      }
      // A worker outlives a killed master; never leave one behind.
      for (const pid of workers) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // already gone
        }
      }
    }
    const m = await proc.waitForLine(new RegExp(`${READY.source}|${BIND_FAILED.source}|\\[emerg\\]`), { timeoutMs: 15_000 }).catch(async (err: unknown) => {
      await stop()
      throw err
    })
    if (READY.test(m[0])) return { proc, ports, dir, stop }
    await stop()
    if (!BIND_FAILED.test(m[0]) || attempt >= 5) throw new Error(`nginx did not start: ${m[0]}\n${proc.lines.join('\n')}`)
  }
}

/** http-context map for {@link proxyLocation}: `Connection: upgrade` only when the client asked for one. */
export const CONNECTION_UPGRADE_MAP = `map $http_upgrade $connection_upgrade { default upgrade; '' close; }`

/**
 * A `location` that passes requests and WebSocket upgrades to `upstream` (proxy_pass syntax), with
 * the forwarding headers wsfrps trusts from a loopback peer. The same block docs/DEPLOY.md shows.
 */
export function proxyLocation(path: string, upstream: string, extra: string[] = []): string {
  return `  location ${path} {
    proxy_pass ${upstream};
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $connection_upgrade;
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
${extra.map((l) => `    ${l}\n`).join('')}  }`
}
