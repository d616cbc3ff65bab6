export { webCrypto } from './web-crypto.js'
export {
  connect,
  websocketURL,
  StatusEvent,
  ProxyStatusEvent,
  type ConnectOptions,
  type ConnectionStatus,
  type HttpProxy,
  type TcpProxy,
  type WebProxy,
  type ReconnectOptions,
  type WsfrpClient,
} from './client.js'
export { handlerTarget, serveHttp, type FetchHandler, type HandlerInfo, type HandlerTargetOptions } from './handler-target.js'
export { streamTarget, type StreamConnection, type StreamHandler, type StreamTargetOptions } from './stream-target.js'
export {
  dialWebSocket,
  websocketConn,
  defaultWebSocket,
  type DialWebSocketOptions,
  type WebSocketConnOptions,
  type WebSocketConstructor,
  type WebSocketLike,
} from './websocket-conn.js'
