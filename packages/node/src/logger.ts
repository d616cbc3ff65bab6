/**
 * The logger of wsfrps and wsfrpc: one line per event, `time [L] [prefix]… message key=value…`,
 * filtered by level, in the shape of frp's log lines. It implements core's `Logger`, so the
 * protocol code logs through it with the context prefixes the programs add (`[remote address]`,
 * `[run id]`, `[proxy]`).
 */
import { closeSync, openSync, writeSync } from 'node:fs'
import type { LogConfig, LogFields, LogLevel, Logger } from '@wsfrp/core'

export type { LogLevel }

const RANK: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 }
const TAG: Record<LogLevel, string> = { trace: 'T', debug: 'D', info: 'I', warn: 'W', error: 'E' }
const COLOR: Record<LogLevel, string> = { trace: '\x1b[90m', debug: '\x1b[36m', info: '\x1b[32m', warn: '\x1b[33m', error: '\x1b[31m' }
const RESET = '\x1b[0m'

/** Field names whose values are never written, whatever a caller passed (defence in depth). */
const SECRET_KEY = /token|password|passwd|pwd|secret|privilege_?key|authorization|group_?key/i

/** A core `Logger` with a `trace` level and a level check. */
export interface NodeLogger extends Logger {
  trace(msg: string, fields?: LogFields): void
  child(prefix: string): NodeLogger
  /** True when a line at `level` would be written. */
  enabled(level: LogLevel): boolean
  /** Releases a log file, if one was opened. Later lines are dropped. */
  close(): void
  /** The threshold. */
  readonly level: LogLevel
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Lowest level written. Default `"info"`. */
  level?: LogLevel
  /**
   * `"console"` (default): lines go to stdout, like frpc's. Anything else is a file path, opened for
   * appending (created when missing).
   */
  to?: string
  /** Where each finished line goes, without its newline; overrides `to` (tests). */
  write?: (line: string) => void
  /** ANSI colour on the level tag. Default: true on a console that is a TTY. */
  color?: boolean
  /** Clock for the time stamp (tests). Default `() => new Date()`. */
  now?: () => Date
}

interface Sink {
  level: LogLevel
  write: (line: string) => void
  color: boolean
  now: () => Date
  close: () => void
}

/**
 * Creates a logger. Writes are synchronous (stdout on a pipe or file is synchronous in Node, and a
 * log file is written with `writeSync`), so nothing is lost when the CLI exits right after a line.
 *
 * @throws Error when the log file cannot be opened (the message names the file).
 */
export function createLogger(opts: LoggerOptions = {}): NodeLogger {
  const to = opts.to ?? 'console'
  let write = opts.write
  let close = (): void => {}
  if (write === undefined) {
    if (to === 'console') {
      write = (line) => process.stdout.write(`${line}\n`)
    } else {
      let fd: number | undefined
      try {
        fd = openSync(to, 'a')
      } catch (err) {
        throw new Error(`cannot open log file ${to}: ${(err as Error).message}`)
      }
      write = (line) => {
        if (fd !== undefined) writeSync(fd, `${line}\n`)
      }
      close = () => {
        if (fd === undefined) return
        const f = fd
        fd = undefined
        closeSync(f)
      }
    }
  }
  const sink: Sink = {
    level: opts.level ?? 'info',
    write,
    color: opts.color ?? (opts.write === undefined && to === 'console' && process.stdout.isTTY === true),
    now: opts.now ?? (() => new Date()),
    close,
  }
  return new LineLogger(sink, '')
}

class LineLogger implements NodeLogger {
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
  child(prefix: string): NodeLogger {
    return new LineLogger(this.sink, this.prefix === '' ? prefix : `${this.prefix} ${prefix}`)
  }
  close(): void {
    this.sink.close()
  }

  private log(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    if (!this.enabled(level)) return
    const tag = this.sink.color ? `${COLOR[level]}[${TAG[level]}]${RESET}` : `[${TAG[level]}]`
    let line = `${timestamp(this.sink.now())} ${tag}`
    // Prefixes and messages carry server-supplied text (proxy names, error texts): escape control
    // characters so that a server cannot forge log lines.
    if (this.prefix !== '') line += ` ${clean(this.prefix)}`
    line += ` ${clean(msg)}`
    if (fields !== undefined) line += formatFields(fields)
    try {
      this.sink.write(line)
    } catch {
      // A closed stdout (EPIPE) or a full disk must not take the program down.
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

function formatFields(fields: LogFields): string {
  let out = ''
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue
    out += ` ${clean(k)}=${SECRET_KEY.test(k) ? '<redacted>' : formatValue(v)}`
  }
  return out
}

function formatValue(v: unknown): string {
  if (v instanceof Error) return quote(v.message)
  if (typeof v === 'string') return quote(v)
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' || v === null) return String(v)
  try {
    return clean(JSON.stringify(v) ?? String(v))
  } catch {
    return '[unprintable]'
  }
}

/** Bare when it is one plain word, else JSON-quoted (which also escapes control characters). */
function quote(s: string): string {
  return s !== '' && /^[^\s"=\\\u0000-\u001f\u007f]+$/.test(s) ? s : JSON.stringify(s)
}

/** Parses a `--log-level` value. */
export function isLogLevel(s: string): s is LogLevel {
  return Object.prototype.hasOwnProperty.call(RANK, s)
}

/**
 * A logger for a config's `log` section: `level`, `to` (`"console"` = stdout, else a file opened
 * for appending) and `disablePrintColor`.
 *
 * @throws Error when the log file cannot be opened (the message names the file).
 */
export function loggerFromConfig(log: Pick<LogConfig, 'level' | 'to' | 'disablePrintColor'>): NodeLogger {
  const to = log.to === '' ? 'console' : log.to
  return createLogger({ level: log.level, to, color: !log.disablePrintColor && to === 'console' && process.stdout.isTTY === true })
}
