export {
  socketConn,
  connectTcp,
  acceptTcp,
  listenTcp,
  type SocketConnOptions,
  type ConnectTcpOptions,
  type ListenTcpOptions,
  type TcpListener,
} from './socket-conn.js'
export {
  wsConn,
  dialWs,
  createWsServer,
  acceptWs,
  type WsConn,
  type WsConnOptions,
  type DialWsOptions,
  type WsServerOptions,
} from './ws-conn.js'
export { nodeCrypto } from './node-crypto.js'
export { loadServerConfigFile, loadClientConfigFile, parseServerConfigText, parseClientConfigText, type ConfigEnv } from './config-file.js'
export { connDuplex, ConnDuplex, type ConnDuplexOptions } from './conn-duplex.js'
export { createLogger, loggerFromConfig, isLogLevel, type NodeLogger, type LoggerOptions } from './logger.js'
export { enableGcPacer, gcPaceFromEnv, noteReadBytes, DEFAULT_GC_PACE_BYTES } from './gc-pacer.js'
export { isLoopbackAddress } from './address.js'
