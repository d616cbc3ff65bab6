export type { Conn, ConnSink } from './conn.js'
export { WsfrpError, isWsfrpError, type ErrorCode } from './errors.js'
export { noopLogger, type Logger, type LogFields } from './log.js'
export { concatBytes, toHex, fromHex } from './bytes/concat.js'
