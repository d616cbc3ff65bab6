/** Structured fields attached to a log line. Never put secrets here. */
export type LogFields = Record<string, unknown>

/**
 * Injected logger. Core code never writes to a console itself. `child(prefix)` gives frp-style
 * context prefixes such as `[runId] [proxy]`.
 */
export interface Logger {
  debug(msg: string, fields?: LogFields): void
  info(msg: string, fields?: LogFields): void
  warn(msg: string, fields?: LogFields): void
  error(msg: string, fields?: LogFields): void
  child(prefix: string): Logger
}

const noop = (): void => {}
export const noopLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => noopLogger,
}
