#!/usr/bin/env node
/**
 * wsfrps command line: `wsfrps -c server.toml`, `wsfrps verify -c FILE`, or no config at all
 * (a loopback server with a generated token, for a first try).
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { parseArgs } from 'node:util'
import { readFileSync } from 'node:fs'
import { ConfigError, isWsfrpError, validateServerConfig, type LogLevel, type ServerConfig } from '@wsfrp/core'
import { enableGcPacer, gcPaceFromEnv, loadServerConfigFile } from '@wsfrp/node'
import { loggerFromConfig } from './logger.js'
import { createServer } from './server.js'
import { VERSION } from './version.js'

const USAGE = `wsfrps ${VERSION}: frp-compatible tunnel server on one WebSocket port

Usage:
  wsfrps [-c FILE] [options]    run the server
  wsfrps verify -c FILE         check a config file and exit

Options:
  -c, --config FILE       config file: frp >= 0.52 TOML (or JSON); see docs/CONFIG.md
      --bind-addr ADDR    address to listen on (overrides bindAddr)
      --bind-port PORT    port to listen on (overrides bindPort; 0 = any free port)
  -t, --token TOKEN       auth token (overrides auth.token)
      --log-level LEVEL   trace, debug, info, warn or error (overrides log.level)
      --demo              offer the in-browser demo on the landing page (needs subDomainHost;
                          demo clients may only publish http proxies under demo-<id>; docs/BROWSER.md)
  -h, --help              show this help
  -v, --version           show the version

$PORT sets the port when neither the file nor --bind-port does. Without a config file: bindAddr 127.0.0.1, bindPort $PORT or 7000, token $WSFRP_TOKEN or a
random one printed at start. frpc connects with transport.protocol = "websocket".
`

const LOG_LEVELS: readonly string[] = ['trace', 'debug', 'info', 'warn', 'error']

class UsageError extends Error {}

interface Flags {
  config?: string
  bindAddr?: string
  bindPort?: string
  token?: string
  logLevel?: string
  demo: boolean
  help: boolean
  version: boolean
  command: 'run' | 'verify'
}

function parseFlags(argv: string[]): Flags {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        'bind-addr': { type: 'string' },
        'bind-port': { type: 'string' },
        token: { type: 'string', short: 't' },
        'log-level': { type: 'string' },
        demo: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const { values, positionals } = parsed
  let command: Flags['command'] = 'run'
  if (positionals.length > 0) {
    if (positionals[0] === 'verify' && positionals.length === 1) command = 'verify'
    else throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`)
  }
  return {
    config: values.config,
    bindAddr: values['bind-addr'],
    bindPort: values['bind-port'],
    token: values.token,
    logLevel: values['log-level'],
    demo: values.demo ?? false,
    help: values.help ?? false,
    version: values.version ?? false,
    command,
  }
}

/** True when the config file names bindPort itself (TOML `bindPort =` or JSON `"bindPort":`). */
function configSetsBindPort(file: string): boolean {
  try {
    return /^\s*bindPort\s*=|"bindPort"\s*:/m.test(readFileSync(file, 'utf8'))
  } catch {
    return false
  }
}

/** A port given on the command line or in $PORT: a number when it looks like one, so the validator can say what is wrong otherwise. */
function portValue(s: string): number | string {
  return /^\d+$/.test(s) ? Number(s) : s
}

/**
 * Applies command-line overrides and re-validates. proxyBindAddr and vhostHTTPPort follow a new
 * bindAddr/bindPort when they were at their defaults (equal to the old values).
 */
function withOverrides(base: Record<string, unknown> | ServerConfig, f: Flags): ServerConfig {
  const cfg = JSON.parse(JSON.stringify(base)) as Record<string, unknown> & { auth?: Record<string, unknown>; log?: Record<string, unknown> }
  if (f.bindAddr !== undefined) {
    if (cfg.proxyBindAddr !== undefined && cfg.proxyBindAddr === cfg.bindAddr) cfg.proxyBindAddr = f.bindAddr
    cfg.bindAddr = f.bindAddr
  }
  // A vhostHTTPPort equal to bindPort is the default: drop it so that it follows a new bindPort.
  if (cfg.vhostHTTPPort !== undefined && cfg.vhostHTTPPort === (cfg.bindPort ?? 7000)) delete cfg.vhostHTTPPort
  if (f.bindPort !== undefined) cfg.bindPort = portValue(f.bindPort)
  if (f.token !== undefined) cfg.auth = { ...cfg.auth, token: f.token }
  if (f.logLevel !== undefined) {
    if (!LOG_LEVELS.includes(f.logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(f.logLevel)}`)
    cfg.log = { ...cfg.log, level: f.logLevel as LogLevel }
  }
  return validateServerConfig(cfg)
}

function out(line: string): void {
  process.stdout.write(`${line}\n`)
}

function fail(message: string, code = 1): never {
  process.stderr.write(`wsfrps: ${message}\n`)
  process.exit(code)
}

function describeError(err: unknown): string {
  if (err instanceof ConfigError) return err.message
  if (isWsfrpError(err)) return err.message
  return err instanceof Error ? err.message : String(err)
}

/** The host a client should dial: the bound address, or this machine's name for a wildcard bind. */
function dialHost(address: string): string {
  if (address === '0.0.0.0' || address === '::') return hostname()
  return address.includes(':') ? `[${address}]` : address
}

async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  let flags: Flags
  try {
    flags = parseFlags(argv)
  } catch (err) {
    fail(`${(err as Error).message}\n\n${USAGE}`, 2)
  }
  if (flags.help) {
    out(USAGE.trimEnd())
    return
  }
  if (flags.version) {
    out(VERSION)
    return
  }

  if (flags.command === 'verify') {
    if (flags.config === undefined) fail('verify needs a config file: wsfrps verify -c FILE', 2)
    try {
      await loadServerConfigFile(flags.config, env)
    } catch (err) {
      fail(describeError(err))
    }
    out(`the configuration file ${flags.config} syntax is ok`)
    return
  }

  try {
    enableGcPacer(gcPaceFromEnv(env))
  } catch (err) {
    fail((err as Error).message, 2)
  }

  let config: ServerConfig
  let generatedToken = false
  try {
    if (flags.config !== undefined) {
      const fromFile = await loadServerConfigFile(flags.config, env)
      // PaaS give the port in $PORT: it applies when the file leaves bindPort out (and no flag sets it).
      const portFromEnv =
        flags.bindPort === undefined && env.PORT !== undefined && env.PORT !== '' && !configSetsBindPort(flags.config)
          ? { bindPort: String(env.PORT) }
          : {}
      config = withOverrides(fromFile, { ...flags, ...portFromEnv })
    } else {
      let token = flags.token ?? env.WSFRP_TOKEN
      if (token === undefined || token === '') {
        token = randomBytes(16).toString('hex')
        generatedToken = true
      }
      const defaults: Record<string, unknown> = {
        bindAddr: '127.0.0.1',
        bindPort: env.PORT !== undefined && env.PORT !== '' ? portValue(env.PORT) : 7000,
        auth: { token },
      }
      config = withOverrides(defaults, { ...flags, token })
    }
  } catch (err) {
    if (err instanceof UsageError) fail(`${err.message}\n\n${USAGE}`, 2)
    fail(describeError(err))
  }

  const log = loggerFromConfig(config.log)
  if (config.auth.token === '') log.warn('auth.token is empty: any client can log in (set auth.token or --token)')

  if (flags.demo && config.subDomainHost === '') fail('--demo needs subDomainHost in the config (demo sites are published as demo-<id>.<subDomainHost>)')
  const server = createServer(config, { logger: log, demo: flags.demo })
  // The signal handlers go in before the first await and so before the ready line: scripts and
  // tests send SIGTERM as soon as they read that line, and a signal that beat the handlers took
  // Node's default action (death by signal, no graceful close) on a loaded machine.
  const starting = server.listen()
  // A start-up failure is reported by the await below; stop() only sequences after it.
  starting.catch(() => {})
  let stopping = false
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn('second signal: exiting now', { signal })
      process.exit(1)
    }
    stopping = true
    log.info('signal received: shutting down', { signal })
    const force = setTimeout(() => {
      log.error('shutdown took too long: exiting')
      process.exit(1)
    }, 10_000)
    force.unref()
    // A signal during start-up waits for listen() to settle: closing while the vhost or dashboard
    // listener is still being bound would leave that port open after close() resolved.
    starting.then(() => server.close()).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('shutdown failed', { error: describeError(err) })
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  // SIGUSR2: one line of counters on stdout, whatever the log level (operators, leak tests). With
  // --expose-gc a full collection runs first, so the heap figure is live objects, not garbage.
  process.on('SIGUSR2', () => {
    ;(globalThis as { gc?: () => void }).gc?.()
    const st = server.stats()
    const sessions = server.metrics.sessionTotals()
    const mem = process.memoryUsage()
    out(
      `wsfrps stats clients=${st.clients} proxies=${st.proxies} transports=${st.transports} streams=${sessions.streams} ` +
        `conns=${server.metrics.totals().curConns} heap-used=${mem.heapUsed} rss=${mem.rss}`,
    )
  })
  // Last line of defence: a bug reached by one peer's input must not take every other client down.
  process.on('unhandledRejection', (reason) => log.error('unhandled rejection (bug)', { error: describeError(reason) }))
  process.on('uncaughtException', (err) => log.error('uncaught exception (bug)', { error: err.message, stack: err.stack }))
  let addr
  try {
    addr = await starting
  } catch (err) {
    fail(describeError(err))
  }
  // Signalled while starting: stop() is already closing, print no ready line for a server going away.
  if (stopping) return

  const secure = config.transport.tls.certFile !== ''
  const scheme = secure ? 'wss' : 'ws'
  const host = addr.address.includes(':') ? `[${addr.address}]` : addr.address
  // The ready line: printed whatever the log level, one line, for people and for scripts waiting on it.
  out(`wsfrps ${VERSION} listening on ${scheme}://${host}:${addr.port}${server.wsPaths[0]} (${secure ? 'https, wss' : 'http, ws'})`)
  const vhostAddr = server.vhostMode === 'own' ? server.vhostAddress() : undefined
  if (vhostAddr !== undefined) {
    const vhostHost = vhostAddr.address.includes(':') ? `[${vhostAddr.address}]` : vhostAddr.address
    out(`wsfrps: http vhosts on http://${vhostHost}:${vhostAddr.port} (vhostHTTPPort)`)
  }
  if (generatedToken) {
    // The one place the token is ever printed: the operator needs it to connect a client.
    out(`wsfrps: no token configured (set WSFRP_TOKEN or --token to choose one); generated for this run: ${config.auth.token}`)
    out(`wsfrps: connect a client: wsfrpc tcp --server ${scheme}://${dialHost(addr.address)}:${addr.port} --token ${config.auth.token} --local-port 22 --remote-port 6000`)
  }
}

main(process.argv.slice(2), process.env).catch((err: unknown) => fail(describeError(err)))
