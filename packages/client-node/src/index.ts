export {
  createClient,
  readyLine,
  type WsfrpClient,
  type CreateClientOptions,
  type ReconnectOptions,
  type ClientState,
  type ClientStatus,
  type ProxyState,
  type LoginInfo,
  type DisconnectInfo,
  type RetryInfo,
  type ClientEvents,
  type ClientEventName,
} from './client.js'
export { backoffDelay, backoffCeiling, BACKOFF_DEFAULTS, type BackoffOptions } from './backoff.js'
export { serverUrlFor, redactUrl, originFor } from './url.js'
export { createLogger, type ClientLogger, type LoggerOptions, type LogLevel } from './logger.js'
export { ConnectProxyAgent, type ConnectProxyAgentOptions } from './proxy-agent.js'
export { VERSION } from './version.js'
