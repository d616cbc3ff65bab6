/**
 * Every error wsfrp raises is a WsfrpError with a stable `code` (listed in docs/ERRORS.md).
 * `instanceof` works across duplicate copies of the package through a Symbol.for brand.
 */
const BRAND = Symbol.for('wsfrp.error')

export type ErrorCode =
  // yamux / mux layer
  | 'ERR_MUX_PROTOCOL'
  | 'ERR_MUX_SESSION_CLOSED'
  | 'ERR_MUX_GO_AWAY'
  | 'ERR_MUX_STREAM_RESET'
  | 'ERR_MUX_STREAM_LIMIT'
  | 'ERR_MUX_STREAMS_EXHAUSTED'
  | 'ERR_MUX_PING_TIMEOUT'
  // conn layer
  | 'ERR_CONN_CLOSED'
  | 'ERR_CONN_ABORTED'
  /** A transport could not be established: refused, DNS, TLS, or a WebSocket handshake that was not a 101. */
  | 'ERR_CONNECT'
  // frp message layer
  | 'ERR_MSG_PROTOCOL'
  | 'ERR_MSG_TOO_LARGE'
  // crypto layer (bad key/IV length, stream ended inside the peer's IV)
  | 'ERR_CRYPTO'
  // frp session layer
  | 'ERR_LOGIN_FAILED'
  | 'ERR_AUTH'
  | 'ERR_TIMEOUT'
  | 'ERR_CONFIG'
  | 'ERR_PROXY'
  /** A configured limit was reached (a user's maxConnections); the operation is refused, nothing else is affected. */
  | 'ERR_LIMIT'
  // HTTP/1.1 codec (handler targets): malformed or smuggling-prone input, a limit passed, an unsendable message
  | 'ERR_HTTP_PARSE'
  | 'ERR_HTTP_LIMIT'
  | 'ERR_HTTP_WRITE'

export class WsfrpError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'WsfrpError'
  }
  get [BRAND](): true {
    return true
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true
  }
}

/** True only for WsfrpError instances with the given code (a plain Error is never a match). */
export function isWsfrpError(err: unknown, code?: ErrorCode): err is WsfrpError {
  return err instanceof WsfrpError && (code === undefined || err.code === code)
}
