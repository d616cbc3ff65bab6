export {
  createServer,
  normalizeConfigInput,
  WsfrpServer,
  type CreateServerOptions,
  type ServerConfigInput,
  type ServerAddress,
  type ServerStats,
  type ServerEvents,
  type RequestHandler,
  type UpgradeHandler,
} from './server.js'
export { TcpProxyManager, type TcpProxyManagerOptions, type TcpProxyEvent } from './tcp-proxy.js'
export { ProxyRouter, type ProxyRouterOptions, type ProxyRecord } from './proxy-router.js'
export { createLogger, loggerFromConfig, type ServerLogger, type LoggerOptions, type LogLevel } from './logger.js'
export { renderLandingPage, escapeHtml, type LandingInfo } from './landing.js'
export { VERSION } from './version.js'
export {
  HttpVhost,
  HttpProxy,
  VHOST_DEFAULTS,
  VhostRouter,
  TrustedProxies,
  DEFAULT_TRUSTED_PROXIES,
  answerClientError,
  sendErrorPage,
  ERROR_HEADER,
  type HttpVhostOptions,
  type RouteKey,
  type RouteGroup,
  type RouteMatch,
  type VhostRouterOptions,
  type VhostErrorCode,
} from './vhost/index.js'
export { ServerMetrics, DailyCounter, proxyConf, HISTORY_DAYS, type ServerMetricsOptions, type ProxyStats, type ProxyConf, type TrafficTotals, type SessionTotals } from './metrics.js'
export { createMetricsRegistry, type MetricsSource } from './metrics-registry.js'
export { Dashboard, decideExposure, type DashboardOptions, type Exposure, type ExposureInput } from './dashboard/index.js'
export { serverInfo, type ServerInfo, type ProxyInfo, type ClientInfo } from './api.js'
export { Tenants, tenantOf, visibleTo, type TenantsOptions, type TenantUsage } from './tenants.js'
