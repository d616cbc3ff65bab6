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
export { planReload, type ReloadResult } from './reload.js'
export { backoffDelay, backoffCeiling, BACKOFF_DEFAULTS, type BackoffOptions } from './backoff.js'
export { serverUrlFor, redactUrl, originFor } from './url.js'
export { createLogger, type ClientLogger, type LoggerOptions, type LogLevel } from './logger.js'
export {
  ConnectProxyAgent,
  basicProxyAuth,
  parseProxyUrl,
  proxyLabel,
  proxyFromEnv,
  noProxyMatch,
  PROXY_SCHEMES,
  type ConnectProxyAgentOptions,
  type ProxyAuthHook,
  type ProxyAuthChallenge,
  type EnvProxy,
  type EnvBypass,
} from './proxy-agent.js'
export { VERSION } from './version.js'
export {
  startAdminServer,
  callAdmin,
  adminStatus,
  adminURL,
  ADMIN_MAX_BODY,
  type AdminServer,
  type AdminServerOptions,
  type AdminStatus,
  type AdminProxyStatus,
  type ReloadOutcome,
} from './admin.js'
