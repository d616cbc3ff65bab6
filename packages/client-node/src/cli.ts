#!/usr/bin/env node
/**
 * wsfrpc: the command line.
 *
 *   wsfrpc -c client.toml          run with a configuration file
 *   wsfrpc verify -c client.toml   check a configuration file
 *   wsfrpc reload -c client.toml   make the running wsfrpc reload its file (admin API, webServer)
 *   wsfrpc status -c client.toml   show the running wsfrpc's proxies (admin API, webServer)
 *   wsfrpc tcp|http -s URL …       quick mode, one proxy, no file (frpc's `frpc tcp …`)
 *
 * Output: log lines (stdout, or `log.to`); one ready line per proxy on stdout when it comes up,
 * `[name] tcp proxy running: 127.0.0.1:22 ⇐ host:6000`; fatal errors as `wsfrpc: …` on stderr, exit
 * code 2 for a malformed command line (as wsfrps), 1 for the rest. SIGTERM/SIGINT close gracefully
 * and exit 0. SIGHUP reads the configuration file again and applies its proxies (a file that does
 * not validate is refused, its problems logged, and the running configuration kept); so does
 * `GET /api/reload` on the admin API when `webServer.port` is set (admin.ts).
 */
import { parseArgs } from 'node:util'
import { ConfigError, formatConfigIssue, validateClientConfig, type ClientConfig, type ConfigIssue } from '@wsfrp/core'
import { enableGcPacer, gcPaceFromEnv, loadClientConfigFile } from '@wsfrp/node'
import { adminURL, callAdmin, startAdminServer, type AdminServer, type AdminStatus, type ReloadOutcome } from './admin.js'
import { createClient, readyLine, type WsfrpClient } from './client.js'
import { createLogger, isLogLevel, type ClientLogger } from './logger.js'
import { redactUrl, serverUrlFor } from './url.js'
import { VERSION } from './version.js'

const HELP = `wsfrpc ${VERSION}: frp-compatible tunnel client over one WebSocket

Usage:
  wsfrpc -c client.toml              run with a configuration file (frp >= 0.52 TOML, or JSON)
  wsfrpc verify -c client.toml       check a configuration file and exit
  wsfrpc reload -c client.toml       make the wsfrpc running with this file reload it (admin API)
  wsfrpc status -c client.toml       show the proxies of the wsfrpc running with this file (admin API)
  wsfrpc tcp  -s SERVER --local-port N [--remote-port N] [options]
  wsfrpc http -s SERVER --local-port N (--custom-domain D | --sd LABEL) [options]
  wsfrpc --help | --version

Options:
  -c, --config FILE         configuration file
      --log-level LEVEL     trace, debug, info, warn or error (overrides log.level)

Quick mode (tcp, http: one proxy, no file):
  -s, --server SERVER       ws://host:port[/path], wss://host[/path], or host[:port] (port 7000)
  -t, --token TOKEN         auth token (default: $WSFRP_TOKEN, else empty)
  -n, --name NAME           proxy name (default: tcp-<local port> / http-<local port>)
  -u, --user USER           frp user (proxies are registered as user.name)
      --local-ip IP         local service address (default 127.0.0.1)
      --local-port N        local service port
      --remote-port N       tcp: server port (default 0: the server picks one)
      --custom-domain D     http: host name routed to this proxy (repeatable)
      --sd, --subdomain L   http: subdomain of the server's subDomainHost
      --ue, --use-encryption  encrypt work connections (AES-128-CFB, keyed by the token)
      --login-fail-exit B   true (default): exit if the first login fails; false: keep retrying

wss:// verifies the server certificate (system CAs, or transport.tls.trustedCaFile); frpc does not
verify without a CA file. Once a proxy is up this line is printed on stdout:
  [NAME] tcp proxy running: 127.0.0.1:22 ⇐ SERVER-HOST:PORT
SIGTERM/SIGINT close the session gracefully and exit 0. SIGHUP reloads the configuration file:
proxies are added, removed or changed without dropping the others (an invalid file is refused and
the running configuration kept). With webServer.port set in the file, the admin API (frpc's) listens
on webServer.addr (default 127.0.0.1): GET /api/status, GET or POST /api/reload, Basic auth with
webServer.user/password; "wsfrpc reload|status -c FILE" call it. A malformed command line exits 2; an
invalid configuration, a failed first login (loginFailExit) or a failed reload|status exits 1.
`

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  'log-level': { type: 'string' },
  server: { type: 'string', short: 's' },
  token: { type: 'string', short: 't' },
  name: { type: 'string', short: 'n' },
  user: { type: 'string', short: 'u' },
  'local-ip': { type: 'string' },
  'local-port': { type: 'string' },
  'remote-port': { type: 'string' },
  'custom-domain': { type: 'string', multiple: true },
  subdomain: { type: 'string' },
  sd: { type: 'string' },
  'use-encryption': { type: 'boolean' },
  ue: { type: 'boolean' },
  'login-fail-exit': { type: 'string' },
} as const

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values']

const QUICK_ONLY = ['server', 'token', 'name', 'user', 'local-ip', 'local-port', 'remote-port', 'custom-domain', 'subdomain', 'sd', 'use-encryption', 'ue', 'login-fail-exit'] as const

/** A malformed command line: printed as `wsfrpc: …`, exit 2 (as wsfrps). */
class UsageError extends Error {}

/** A configuration that does not validate (file or quick-mode values): `wsfrpc: …`, exit 1. */
class InvalidConfig extends Error {}

async function main(argv: string[]): Promise<number> {
  // A reader that went away (`wsfrpc … | head`) must not crash us with EPIPE.
  process.stdout.on('error', () => {})
  process.stderr.on('error', () => {})

  let values: Values
  let positionals: string[]
  try {
    ;({ values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }))
  } catch (err) {
    // Node's message continues with advice about "--" that does not apply here.
    const first = (err as Error).message.split('. ')[0] ?? String(err)
    throw new UsageError(`${first} (see wsfrpc --help)`)
  }
  if (values.help) {
    process.stdout.write(HELP)
    return 0
  }
  if (values.version) {
    process.stdout.write(`wsfrpc ${VERSION}\n`)
    return 0
  }
  const logLevel = values['log-level']
  if (logLevel !== undefined && !isLogLevel(logLevel)) {
    throw new UsageError(`--log-level must be trace, debug, info, warn or error, got ${JSON.stringify(logLevel)}`)
  }

  const [command, ...extra] = positionals
  if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])} (see wsfrpc --help)`)

  if (command === 'tcp' || command === 'http') {
    if (values.config !== undefined) throw new UsageError(`-c cannot be combined with the quick mode "${command}"`)
    const cfg = quickConfig(command, values)
    return run(cfg, logLevel)
  }
  const misplaced = QUICK_ONLY.find((k) => values[k] !== undefined)
  if (misplaced !== undefined) throw new UsageError(`--${misplaced} is only for the quick modes (wsfrpc tcp|http …)`)
  if (command !== undefined && command !== 'verify' && command !== 'reload' && command !== 'status') {
    throw new UsageError(`unknown command ${JSON.stringify(command)}: use -c FILE, verify, reload, status, tcp or http (see wsfrpc --help)`)
  }
  const file = values.config
  if (file === undefined) {
    throw new UsageError(command !== undefined ? `${command} needs a configuration file: wsfrpc ${command} -c client.toml` : 'no configuration: use -c client.toml, or a quick mode (wsfrpc tcp …); see wsfrpc --help')
  }
  const cfg = await loadClientConfigFile(file)
  if (command === 'reload' || command === 'status') return adminCommand(command, cfg, file)
  if (command === 'verify') {
    const n = cfg.proxies.length
    process.stdout.write(`wsfrpc: the configuration file ${file} syntax is ok (${n} ${n === 1 ? 'proxy' : 'proxies'}, server ${redactUrl(serverUrlFor(cfg))})\n`)
    return 0
  }
  return run(cfg, logLevel, file)
}

/** Builds the configuration of a quick-mode command and validates it like a file would be. */
function quickConfig(type: 'tcp' | 'http', v: Values): ClientConfig {
  const raw: Record<string, unknown> = {}
  const server = v.server
  if (server === undefined) throw new UsageError(`${type} needs --server (-s), e.g. -s ws://127.0.0.1:7000`)
  if (server.includes('://')) raw.serverURL = server
  else {
    const m = /^(\[[^\]]+\]|[^:]+)(?::(.*))?$/.exec(server)
    if (m === null) throw new UsageError(`--server must be ws://host:port, wss://host or host[:port], got ${JSON.stringify(server)}`)
    raw.serverAddr = (m[1] ?? '').replace(/^\[(.*)\]$/, '$1')
    if (m[2] !== undefined) raw.serverPort = numberOrText(m[2])
  }
  raw.auth = { token: v.token ?? process.env.WSFRP_TOKEN ?? '' }
  if (v.user !== undefined) raw.user = v.user
  const lfe = v['login-fail-exit']
  if (lfe !== undefined) {
    if (lfe !== 'true' && lfe !== 'false') throw new UsageError(`--login-fail-exit must be true or false, got ${JSON.stringify(lfe)}`)
    raw.loginFailExit = lfe === 'true'
  }
  const localPort = v['local-port']
  const proxy: Record<string, unknown> = {
    name: v.name ?? `${type}-${localPort ?? ''}`,
    type,
  }
  if (localPort !== undefined) proxy.localPort = numberOrText(localPort)
  if (v['local-ip'] !== undefined) proxy.localIP = v['local-ip']
  if (v['use-encryption'] || v.ue) proxy.transport = { useEncryption: true }
  if (type === 'tcp') {
    for (const k of ['custom-domain', 'subdomain', 'sd'] as const) {
      if (v[k] !== undefined) throw new UsageError(`--${k} applies to http proxies, not tcp`)
    }
    if (v['remote-port'] !== undefined) proxy.remotePort = numberOrText(v['remote-port'])
  } else {
    if (v['remote-port'] !== undefined) throw new UsageError('--remote-port applies to tcp proxies, not http')
    if (v['custom-domain'] !== undefined) proxy.customDomains = v['custom-domain']
    const sub = v.subdomain ?? v.sd
    if (sub !== undefined) proxy.subdomain = sub
  }
  raw.proxies = [proxy]
  try {
    return validateClientConfig(raw)
  } catch (err) {
    if (err instanceof ConfigError) throw new InvalidConfig(quickIssues(err.issues))
    throw err
  }
}

/** Issue paths of a quick-mode config, named by the flag that set them. */
const FLAG_OF: Record<string, string> = {
  serverURL: '--server',
  serverAddr: '--server',
  serverPort: '--server (port)',
  user: '--user',
  'auth.token': '--token',
  'proxies[0].name': '--name',
  'proxies[0].localIP': '--local-ip',
  'proxies[0].localPort': '--local-port',
  'proxies[0].remotePort': '--remote-port',
  'proxies[0].customDomains': '--custom-domain',
  'proxies[0].subdomain': '--sd',
  'proxies[0]': 'http',
}

function quickIssues(issues: readonly ConfigIssue[]): string {
  const lines = issues.map((i) => {
    const flag = FLAG_OF[i.path] ?? FLAG_OF[i.path.replace(/\[\d+\]$/, '')]
    return flag !== undefined ? `${flag}: ${i.message}` : formatConfigIssue(i)
  })
  return lines.length === 1 ? `invalid arguments: ${lines[0]}` : `invalid arguments:\n  ${lines.join('\n  ')}`
}

/** Numbers stay numbers; anything else is passed on as text, so the validator names the flag and the value. */
function numberOrText(s: string): number | string {
  return /^\d+$/.test(s) ? Number(s) : s
}

async function run(cfg: ClientConfig, levelOverride: string | undefined, file?: string): Promise<number> {
  let logger: ClientLogger
  try {
    logger = createLogger({
      level: levelOverride !== undefined && isLogLevel(levelOverride) ? levelOverride : cfg.log.level,
      to: cfg.log.to,
      ...(cfg.log.disablePrintColor ? { color: false } : {}),
    })
  } catch (err) {
    throw new InvalidConfig((err as Error).message)
  }
  try {
    enableGcPacer(gcPaceFromEnv(process.env))
  } catch (err) {
    throw new InvalidConfig((err as Error).message)
  }
  const toConsole = cfg.log.to === 'console'
  // On the console the ready line below is that event's one line; a log file still gets its own.
  const client = createClient(cfg, { logger, logProxyReady: !toConsole })
  client.on('proxy', (p) => {
    if (p.status === 'running') process.stdout.write(`[${p.name}] ${readyLine(p, p.remote)}\n`)
  })

  let signalled = false
  let closeAdmin = (): Promise<void> => Promise.resolve()
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled) {
      // A second signal while closing: the user wants out now.
      process.exit(1)
    }
    signalled = true
    logger.info(`received ${sig}: closing the connection`)
    void Promise.all([client.stop(), closeAdmin()]).then(() => {
      logger.info('stopped')
      logger.close()
      process.exit(0)
    })
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  // SIGHUP and the admin API: the file again, one reload at a time. A file that does not validate
  // changes nothing.
  let reloads: Promise<unknown> = Promise.resolve()
  const reload = (why: string): Promise<ReloadOutcome> => {
    const next = reloads.then(() => reloadFile(client, file!, logger, why))
    reloads = next.catch(() => {})
    return next
  }
  process.on('SIGHUP', () => {
    if (file === undefined) {
      logger.warn('received SIGHUP: nothing to reload (no configuration file in quick mode)')
      return
    }
    void reload('received SIGHUP')
  })

  let admin: AdminServer | undefined
  if (file !== undefined && cfg.webServer.port !== 0) {
    try {
      admin = await startAdminServer({ config: cfg.webServer, client, reload: () => reload('admin API'), logger })
    } catch (err) {
      // Like frpc: without its configured admin API the client does not start.
      const msg = (err as Error).message
      if (!toConsole) logger.error(msg)
      logger.close()
      process.stderr.write(`wsfrpc: ${msg}\n`)
      return 1
    }
  }
  closeAdmin = () => admin?.close() ?? Promise.resolve()

  logger.info(`wsfrpc ${VERSION} starting`, { server: redactUrl(serverUrlFor(cfg)), proxies: cfg.proxies.length, user: cfg.user || undefined })
  try {
    await client.start()
  } catch (err) {
    if (signalled) return new Promise<number>(() => {}) // the signal handler exits
    const msg = (err as Error).message
    if (!toConsole) logger.error(msg)
    logger.close()
    process.stderr.write(`wsfrpc: ${msg}\n`)
    return 1
  }
  // From here the client reconnects forever; the process ends through a signal.
  return new Promise<number>(() => {})
}

/** Reads `file` again and applies its proxies to `client`; logs the outcome (SIGHUP, admin API). */
async function reloadFile(client: WsfrpClient, file: string, logger: ClientLogger, why: string): Promise<ReloadOutcome> {
  logger.info(`${why}: reloading ${file}`)
  let next: ClientConfig
  try {
    next = await loadClientConfigFile(file)
  } catch (err) {
    const problems = err instanceof ConfigError ? err.issues.map(formatConfigIssue) : [(err as Error).message]
    const error = `reload refused: ${file} has ${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}; the running configuration is kept`
    logger.error(error)
    for (const p of problems) logger.error(`reload: ${p}`)
    return { ok: false, error, problems }
  }
  const r = client.reload(next)
  logger.info(`reloaded ${file}`, { added: r.added.join(',') || undefined, removed: r.removed.join(',') || undefined, changed: r.changed.join(',') || undefined })
  return { ok: true, result: r }
}

/** `wsfrpc reload|status -c FILE`: asks the wsfrpc running with FILE through its admin API. */
async function adminCommand(command: 'reload' | 'status', cfg: ClientConfig, file: string): Promise<number> {
  if (cfg.webServer.port === 0) throw new InvalidConfig(`${command} needs the admin API: set webServer.port in ${file} (and restart wsfrpc)`)
  const { status, body } = await callAdmin(cfg.webServer, 'GET', `/api/${command}`)
  if (status === 401) throw new InvalidConfig(`the admin API at ${adminURL(cfg.webServer, '')} refused webServer.user/password of ${file}`)
  if (command === 'reload') {
    const b = (body ?? {}) as { error?: string; problems?: string[]; added?: string[]; removed?: string[]; changed?: string[]; ignored?: string[] }
    if (status !== 200) {
      throw new InvalidConfig([b.error ?? `reload failed: HTTP ${status}`, ...(b.problems ?? [])].join('\n  '))
    }
    const list = (xs: string[] | undefined): string => (xs !== undefined && xs.length > 0 ? xs.join(', ') : 'none')
    process.stdout.write(`reload success (added: ${list(b.added)}; removed: ${list(b.removed)}; changed: ${list(b.changed)})\n`)
    if (b.ignored !== undefined && b.ignored.length > 0) process.stdout.write(`not applied until wsfrpc restarts: ${b.ignored.join(', ')}\n`)
    return 0
  }
  if (status !== 200 || body === undefined) throw new InvalidConfig(`status failed: HTTP ${status}`)
  process.stdout.write(formatStatus(body as AdminStatus))
  return 0
}

/** frpc's `status` output: one table per type with proxies. */
function formatStatus(st: AdminStatus): string {
  let out = ''
  for (const [type, list] of Object.entries(st)) {
    if (list.length === 0) continue
    const rows = [['Name', 'Status', 'LocalAddr', 'RemoteAddr', 'Error'], ...list.map((p) => [p.name, p.status, p.local_addr, p.remote_addr, p.err])]
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
    out += `${type.toUpperCase()}\n`
    for (const r of rows) out += `${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`
    out += '\n'
  }
  return out === '' ? 'no proxies\n' : out
}

// process.exit: a failed login may leave a WebSocket close handshake pending (up to 30 s in ws);
// stdout and stderr are synchronous for files and pipes, so no output is lost.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // Configuration errors carry one line per problem; the rest are one-liners too.
    const msg = err instanceof Error ? err.message : String(err)
    process.stderr.write(`wsfrpc: ${msg}\n`)
    process.exit(err instanceof UsageError ? 2 : 1)
  },
)
