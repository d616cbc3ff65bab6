export {
  VhostRouter,
  normalizeRouteKey,
  normalizeHost,
  candidateDomains,
  type RouteKey,
  type RouteGroup,
  type RouteMatch,
  type VhostRouterOptions,
} from './router.js'
export { HttpVhost, HttpProxy, VHOST_DEFAULTS, type HttpVhostOptions } from './http-proxy.js'
export { TrustedProxies, DEFAULT_TRUSTED_PROXIES, normalizeIp } from './trusted.js'
export { answerClientError, answerOnSocket, sendErrorPage, errorPageHtml, ERROR_HEADER, type VhostErrorCode } from './error-page.js'
export { refuseConnect, refuseUnsupportedUpgrade, refuseUnsupportedVersion, serveVhostOnly, upgradeInOrder, VHOST_ALLOWED_METHODS } from './listener.js'
