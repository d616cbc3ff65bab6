/**
 * Entry of `dist-bundle/wsfrp-sw.js` (an IIFE that defines `self.wsfrp`): the whole client API,
 * plus {@link serveServiceWorker} for service-worker mode.
 */
export * from '../index.js'
export { serveServiceWorker, type ServeServiceWorkerOptions, type ServiceWorkerHost, type ServiceWorkerScope, type PublishedHandler } from './worker.js'
