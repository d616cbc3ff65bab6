/**
 * Shared steps of the deployment suites (proxies, nginx, embedding, idle): wsfrps and wsfrpc CLIs
 * from TOML written into a temp dir, the proxy-ready line, and byte transfers through a tcp proxy
 * checked by sha256.
 */
import { once } from 'node:events'
import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import * as net from 'node:net'
import { join } from 'node:path'
import { startCli, type Proc } from './process.js'

export const TOKEN = 'e2e-deploy-token'
export const MiB = 1024 * 1024

/** The server's ready line: `listening on ws://127.0.0.1:PORT/path` (wss with TLS). */
export const SERVER_READY = /listening on wss?:\/\/127\.0\.0\.1:(\d+)\/\S*/
export const proxyUp = (name: string): RegExp => new RegExp(`\\[${name}\\] tcp proxy running: .* ⇐ .*:(\\d+)\\s*$`)

/**
 * Every proxy variable set to "" (which counts as unset): a client process must not pick up a
 * proxy from the environment of whoever runs the tests, unless a test sets one on purpose.
 */
export const NO_PROXY_ENV: NodeJS.ProcessEnv = {
  HTTP_PROXY: '',
  http_proxy: '',
  HTTPS_PROXY: '',
  https_proxy: '',
  ALL_PROXY: '',
  all_proxy: '',
  NO_PROXY: '',
  no_proxy: '',
}

/** Processes of one test file, all stopped (by PID) in its after hook. */
export class Procs {
  private readonly set = new Set<Proc>()
  track(p: Proc): Proc {
    this.set.add(p)
    void p.exited.then(() => this.set.delete(p))
    return p
  }
  async stopAll(): Promise<void> {
    await Promise.all([...this.set].map((p) => p.stop()))
  }
}

let seq = 0
function writeConfig(dir: string, kind: string, text: string): string {
  const file = join(dir, `${kind}-${process.pid}-${++seq}.toml`)
  writeFileSync(file, text)
  return file
}

/** wsfrps on 127.0.0.1:0 with TOKEN; `extraToml` is appended (top-level keys first, then tables). */
export async function startServer(procs: Procs, dir: string, extraToml = ''): Promise<{ proc: Proc; port: number }> {
  const file = writeConfig(dir, 'server', `bindAddr = "127.0.0.1"\nbindPort = 0\nproxyBindAddr = "127.0.0.1"\nauth.token = "${TOKEN}"\n${extraToml}\n`)
  const proc = procs.track(startCli('server', ['-c', file]))
  const [, port] = await proc.waitForLine(SERVER_READY)
  return { proc, port: Number(port) }
}

export interface ClientSpec {
  /** Top-level client settings (serverURL or serverAddr/serverPort, transport.*), as TOML lines. */
  settings: string[]
  /** tcp proxies, remote port 0. */
  proxies: { name: string; localPort: number }[]
  /** More TOML after the tcp proxies (e.g. an http proxy's [[proxies]] table). */
  extra?: string[]
  /** Added to NO_PROXY_ENV for the process. */
  env?: NodeJS.ProcessEnv
  loginFailExit?: boolean
}

/** wsfrpc with TOKEN. It is not waited for: wait for {@link proxyUp} or an exit. */
export function startClient(procs: Procs, dir: string, spec: ClientSpec): Proc {
  const lines = [
    `auth.token = "${TOKEN}"`,
    `loginFailExit = ${spec.loginFailExit ?? true}`,
    ...spec.settings,
    ...spec.proxies.flatMap((p) => ['', '[[proxies]]', `name = "${p.name}"`, 'type = "tcp"', 'localIP = "127.0.0.1"', `localPort = ${p.localPort}`, 'remotePort = 0']),
    ...(spec.extra ?? []),
  ]
  const file = writeConfig(dir, 'client', `${lines.join('\n')}\n`)
  return procs.track(startCli('client', ['-c', file], { env: { ...NO_PROXY_ENV, ...spec.env } }))
}

/** The port the server bound for a proxy, from the client's ready line. */
export async function proxyPort(client: Proc, name: string, timeoutMs = 20_000): Promise<number> {
  return Number((await client.waitForLine(proxyUp(name), { timeoutMs }))[1])
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** Sends `data`, half-closes, and collects the whole reply until the server's FIN. */
export async function roundTrip(port: number, data: Buffer): Promise<Buffer> {
  const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  await once(s, 'connect')
  const chunks: Buffer[] = []
  const done = new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => chunks.push(d))
    s.on('end', () => resolve())
    s.on('error', reject)
  })
  s.end(data)
  await done
  s.destroy()
  return Buffer.concat(chunks)
}

/**
 * Streams `mib` MiB of random bytes to an echo service through the tunnel while reading the echo,
 * and returns both digests and the byte count received, for the caller to compare.
 */
export async function echoTransfer(port: number, mib: number): Promise<{ sent: string; got: string; bytes: number }> {
  const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  await once(s, 'connect')
  const sent = createHash('sha256')
  const got = createHash('sha256')
  let bytes = 0
  const echoed = new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => {
      got.update(d)
      bytes += d.length
    })
    s.on('end', () => resolve())
    s.on('error', reject)
  })
  for (let i = 0; i < mib; i++) {
    const chunk = randomBytes(MiB)
    sent.update(chunk)
    if (!s.write(chunk)) await once(s, 'drain')
  }
  s.end()
  await echoed
  s.destroy()
  return { sent: sent.digest('hex'), got: got.digest('hex'), bytes }
}
