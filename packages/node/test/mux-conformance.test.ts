// The Conn conformance suite run against yamux streams over real loopback TCP and a real WebSocket.
import { WebSocketServer } from 'ws'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { YamuxSession, type Conn, type YamuxStream } from '@wsfrp/core'
import { connectTcp, dialWs, listenTcp, wsConn } from '@wsfrp/node'
import { connSuite, type ConnPair } from '../../core/test/support/conn-suite.js'

async function overTransport(a: Conn, b: Conn, cleanup: () => Promise<void> | void): Promise<ConnPair> {
  let accepted!: (s: YamuxStream) => void
  const got = new Promise<YamuxStream>((r) => (accepted = r))
  const server = new YamuxSession(b, { client: false, keepAliveInterval: 0, onStream: (s) => accepted(s) })
  const client = new YamuxSession(a, { client: true, keepAliveInterval: 0 })
  const s = client.open()
  return {
    a: s,
    b: await got,
    cleanup: async () => {
      client.close()
      server.close()
      await cleanup()
    },
  }
}

connSuite('yamux stream over loopback TCP', async () => {
  let accepted!: (c: Conn) => void
  const got = new Promise<Conn>((r) => (accepted = r))
  const listener = await listenTcp((c) => accepted(c))
  const a = await connectTcp(listener.host, listener.port)
  return overTransport(a, await got, () => listener.close())
})

connSuite('yamux stream over a ws WebSocket', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, skipUTF8Validation: true })
  await once(wss, 'listening')
  const accepted = once(wss, 'connection')
  const a = await dialWs(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/~!frp`)
  const [ws] = (await accepted) as [import('ws').WebSocket]
  return overTransport(a, wsConn(ws), () => new Promise<void>((r) => wss.close(() => r())))
})
