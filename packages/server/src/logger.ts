/**
 * The server's logger: one line per event, `time [L] [prefix]… message key=value…`, filtered by
 * level. It implements core's `Logger` (plus `trace`), so core code logs through it with the
 * context prefixes the server adds (`[remote address]`, `[run id]`, `[proxy]`).
 */
import { createWriteStream } from 'node:fs'
import type { LogConfig, LogFields, Logger } from '@wsfrp/core'

/** Log threshold, as in frp's `log.level`. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error'

const RANK: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 }
const TAG: Record<LogLevel, string> = { trace: 'T', debug: 'D', info: 'I', warn: 'W', error: 'E' }
/** ANSI colours per level (only on a TTY and unless disabled). */
const COLOR: Record<LogLevel, string> = { trace: '\x1b[90m', debug: '\x1b[36m', info: '\x1b[32m', warn: '\x1b[33m', error: '\x1b[31m' }
const RESET = '\x1b[0m'

/** Field names whose values are never written, whatever the caller passed (defence in depth). */
const SECRET_KEY = /token|password|passwd|secret|privilege_?key|authorization/i

/** A core `Logger` with a `trace` level and a level check. */
export interface ServerLogger extends Logger {
  trace(msg: string, fields?: LogFields): void
  child(prefix: string): ServerLogger
  /** True when a line at `level` would be written (skip building expensive fields otherwise). */
  enabled(level: LogLevel): boolean
  readonly level: LogLevel
}

export interface LoggerOptions {
  /** Lowest level written. Default `"info"`. */
  level?: LogLevel
  /** Where each finished line goes (without a trailing newline). Default: `process.stdout`. */
  write?: (line: string) => void
  /** ANSI colour for the level tag. Default: true when stdout is a TTY. */
  color?: boolean
  /** Clock for the time stamp (tests). Default `() => new Date()`. */
  now?: () => Date
}

/** Creates a logger; see {@link LoggerOptions} for the defaults. */
export function createLogger(opts: LoggerOptions = {}): ServerLogger {
  const sink: Sink = {
    level: opts.level ?? 'info',
    write: opts.write ?? ((line) => process.stdout.write(`${line}\n`)),
    color: opts.color ?? (opts.write === undefined && process.stdout.isTTY === true),
    now: opts.now ?? (() => new Date()),
  }
  return new LineLogger(sink, '')
}

interface Sink {
  level: LogLevel
  write: (line: string) => void
  color: boolean
  now: () => Date
}

class LineLogger implements ServerLogger {
  constructor(
    private readonly sink: Sink,
    private readonly prefix: string,
  ) {}

  get level(): LogLevel {
    return this.sink.level
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] >= RANK[this.sink.level]
  }

  trace(msg: string, fields?: LogFields): void {
    this.log('trace', msg, fields)
  }
  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields)
  }
  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields)
  }
  warn(msg: string, fields?: LogFields): void {
    this.log('warn', msg, fields)
  }
  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields)
  }

  child(prefix: string): ServerLogger {
    return new LineLogger(this.sink, this.prefix === '' ? prefix : `${this.prefix} ${prefix}`)
  }

  private log(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    if (!this.enabled(level)) return
    const tag = this.sink.color ? `${COLOR[level]}[${TAG[level]}]${RESET}` : `[${TAG[level]}]`
    let line = `${timestamp(this.sink.now())} ${tag}`
    // Prefixes and messages may carry peer-supplied text (proxy names, error texts): escape control
    // characters so that a peer cannot forge log lines.
    if (this.prefix !== '') line += ` ${clean(this.prefix)}`
    line += ` ${clean(msg)}`
    if (fields !== undefined) line += formatFields(fields)
    try {
      this.sink.write(line)
    } catch {
      // A closed stdout (EPIPE) must not take the server down.
    }
  }
}

/** `2006-01-02 15:04:05.000` in local time, the shape frp's log lines have. */
function timestamp(d: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/g

function clean(s: string): string {
  return s.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}

/** Printable ASCII without spaces, quotes or `=`: written as is; everything else is JSON-quoted. */
const BARE = /^[\x21\x23-\x3c\x3e-\x7e]+$/

function formatValue(v: unknown): string {
  if (typeof v === 'string') return BARE.test(v) ? v : JSON.stringify(v)
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v)
  if (v instanceof Error) return JSON.stringify(v.message)
  try {
    return JSON.stringify(v) ?? String(v)
  } catch {
    return JSON.stringify(String(v))
  }
}

function formatFields(fields: LogFields): string {
  let out = ''
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue
    out += ` ${clean(k)}=${SECRET_KEY.test(k) ? '<redacted>' : formatValue(v)}`
  }
  return out
}

/**
 * A logger for a config's `log` section: `level`, `to` (`"console"` = stdout, else a file opened for
 * appending) and `disablePrintColor`. If the file cannot be written, lines go to stderr instead.
 */
export function loggerFromConfig(log: Pick<LogConfig, 'level' | 'to' | 'disablePrintColor'>): ServerLogger {
  if (log.to === 'console' || log.to === '') {
    return createLogger({ level: log.level, color: !log.disablePrintColor && process.stdout.isTTY === true })
  }
  let failed = false
  const stream = createWriteStream(log.to, { flags: 'a' })
  stream.on('error', (err) => {
    if (failed) return
    failed = true
    process.stderr.write(`wsfrps: cannot write the log file ${log.to} (${err.message}): logging to stderr\n`)
  })
  return createLogger({
    level: log.level,
    color: false,
    write: (line) => {
      if (failed) process.stderr.write(`${line}\n`)
      else stream.write(`${line}\n`)
    },
  })
}
