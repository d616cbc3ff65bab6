// The logger is shared with wsfrps and lives in @wsfrp/node; these names stay for existing imports.
export { createLogger, isLogLevel, type NodeLogger as ClientLogger, type LoggerOptions } from '@wsfrp/node'
export type { LogLevel } from '@wsfrp/core'
