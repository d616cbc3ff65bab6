/**
 * What this package needs from `isomorphic-ws`: an untyped default export (the WebSocket
 * constructor). Its own types re-export `@types/ws`, which references Node's types and would make
 * `Buffer`, `process` and friends compile in this browser package; tsconfig.json `paths` points
 * the import here instead. websocket-conn.ts narrows the value to its structural constructor type.
 */
declare const WebSocket: unknown
export default WebSocket
