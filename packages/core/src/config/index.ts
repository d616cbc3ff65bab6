export type {
  AuthConfig,
  AuthScope,
  AuthUser,
  LimitsConfig,
  ProxyTypeName,
  ServerAuthConfig,
  ClientConfig,
  ClientProtocol,
  ClientTransportConfig,
  HttpProxyConfig,
  LogConfig,
  LogLevel,
  PortRange,
  ProxyConfig,
  ProxyType,
  ServerConfig,
  ServerTransportConfig,
  TcpProxyConfig,
  WebServerConfig,
} from './types.js'
export { ConfigError, formatConfigIssue, joinConfigPath, type ConfigIssue, type ConfigKind } from './issues.js'
export { validateServerConfig, defaultServerConfig, serverWsPaths, isPortAllowed } from './server.js'
export { validateClientConfig, defaultClientConfig, resolveServerURL } from './client.js'
export { redactConfig, REDACTED } from './redact.js'
