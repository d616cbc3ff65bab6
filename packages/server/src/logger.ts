// The logger is shared with wsfrpc and lives in @wsfrp/node; these names stay for existing imports.
export { createLogger, loggerFromConfig, isLogLevel, type NodeLogger as ServerLogger, type LoggerOptions } from '@wsfrp/node'
export type { LogLevel } from '@wsfrp/core'
