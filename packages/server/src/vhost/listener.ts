/**
 * How an http.Server meets the vhost: the protocol edges that every public port refuses the same
 * way (CONNECT, anything but HTTP/1.x), and the wiring of the vhost-only listener that serves a
 * `vhostHTTPPort` other than `bindPort` (server.ts; the test bench uses it too).
 */
import type * as http from 'node:http'
import type { Duplex } from 'node:stream'
import { answerClientError, answerOnSocket, sendErrorPage } from './error-page.js'
import type { HttpVhost } from './http-proxy.js'

/**
 * `Allow` of the 405 answer to CONNECT (RFC 9110 §15.5.6 requires the field): the vhost forwards
 * every other method, these are the registered ones a browser or curl would use.
 */
export const VHOST_ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE'

/**
 * For the `'request'` and `'checkContinue'` events: answers 505 (`version-not-supported`) and
 * closes the connection when the request is not HTTP/1.x, and returns true; returns false and
 * touches nothing otherwise. Node's parser hands over `GET / HTTP/2.0` and HTTP/0.9 request lines
 * (`GET /`) as ordinary requests (measured on Node 20), and neither may reach a local service: the
 * work stream speaks HTTP/1.1, and a 0.9 exchange has no head to rewrite.
 */
export function refuseUnsupportedVersion(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  if (req.httpVersionMajor === 1) return false
  sendErrorPage(res, 505, 'version-not-supported', { Connection: 'close' })
  return true
}

/** {@link refuseUnsupportedVersion} for the `'upgrade'` event, answering on the raw socket. */
export function refuseUnsupportedUpgrade(req: http.IncomingMessage, socket: Duplex): boolean {
  if (req.httpVersionMajor === 1) return false
  answerOnSocket(socket, 505, 'version-not-supported')
  return true
}

/**
 * A `'connect'` listener: every CONNECT gets 405 (`method-not-allowed`) and the connection is
 * closed; nothing of it is forwarded. frps (pkg/util/vhost/http.go, connectHandler) writes the
 * CONNECT to a work connection of the routed proxy and joins the bytes; wsfrps does not, so that an
 * http proxy can never be used as a tunnel to wherever its local service can reach. Without a
 * listener Node would drop the socket without an answer.
 */
export function refuseConnect(_req: http.IncomingMessage, socket: Duplex): void {
  socket.on('error', () => {}) // the peer may be gone already; the answer is best effort
  afterPendingResponses(socket, () => answerOnSocket(socket, 405, 'method-not-allowed', { Allow: VHOST_ALLOWED_METHODS }))
}

/**
 * Runs `fn` once the responses to requests pipelined before this one are written. Node emits
 * `'connect'` as soon as it has parsed the CONNECT, while earlier responses on the same connection
 * may still be in flight; the socket's current response is `_httpMessage` (the one Node itself
 * reads in its clientError handling), and the next queued one is assigned to it when it finishes.
 */
function afterPendingResponses(socket: Duplex, fn: () => void): void {
  const current = (socket as Duplex & { _httpMessage?: http.ServerResponse | null })._httpMessage
  if (current === null || current === undefined || current.writableFinished || socket.destroyed) {
    fn()
    return
  }
  current.once('finish', () => setImmediate(() => afterPendingResponses(socket, fn)))
}

/**
 * For the `'upgrade'` event: runs `serve` once the responses to requests pipelined before the
 * upgrade on the same connection are written ({@link afterPendingResponses}). Node emits `'upgrade'` as soon as it has parsed the
 * head, with those responses still queued on the socket: answering at once would put the 101 (or
 * an error page) ahead of them, and no ServerResponse can even be assigned to the socket while one
 * is (ERR_HTTP_SOCKET_ASSIGNED, thrown from the event). A connection that is closing by then (a
 * `Connection: close` request before the upgrade, a reset) is not served.
 */
export function upgradeInOrder(socket: Duplex, serve: () => void): void {
  const waited = (socket as Duplex & { _httpMessage?: unknown })._httpMessage != null
  afterPendingResponses(socket, () => {
    if (socket.destroyed || socket.writableEnded) {
      socket.destroy()
      return
    }
    // The last of those responses armed Node's keep-alive timer on the socket; the upgraded
    // connection has its own lifetime (and Node no longer listens for that timeout).
    if (waited) (socket as Duplex & { setTimeout?: (ms: number) => unknown }).setTimeout?.(0)
    serve()
  })
}

/**
 * Makes `server` a vhost-only listener: requests, `Expect: 100-continue` requests and upgrades go
 * to `vhost`, anything without a route gets the 404 `no-route` page (no landing page, health
 * check, dashboard or WebSocket endpoint: those stay on `bindPort`), CONNECT gets 405, non-HTTP/1.x
 * gets 505, unparsable requests 400/431 ({@link answerClientError}).
 */
export function serveVhostOnly(server: http.Server, vhost: HttpVhost): void {
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (refuseUnsupportedVersion(req, res)) return
    if (!vhost.handleRequest(req, res)) vhost.respondNoRoute(req, res)
  })
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (refuseUnsupportedVersion(req, res)) return
    // Without a route the final answer goes out instead of a 100 (RFC 9110 §10.1.1); Node then
    // closes the connection, since the body may still follow.
    if (!vhost.handleCheckContinue(req, res)) vhost.respondNoRoute(req, res)
  })
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {}) // a reset before anyone took the socket must not be uncaught
    upgradeInOrder(socket, () => {
      if (refuseUnsupportedUpgrade(req, socket)) return
      if (!vhost.handleUpgrade(req, socket, head)) answerOnSocket(socket, 404, 'no-route')
    })
  })
  server.on('connect', refuseConnect)
  server.on('clientError', answerClientError)
}
