// The Conn conformance suite run against yamux streams over in-memory transports.
import { YamuxSession, type Conn, type YamuxStream } from '@wsfrp/core'
import { memoryPair, type MemoryPairOptions } from '@wsfrp/core/testing'
import { connSuite, type ConnPair } from './support/conn-suite.js'

function streamPair(transport?: MemoryPairOptions): () => Promise<ConnPair> {
  return async () => {
    const { a, b } = memoryPair(transport)
    let accepted!: (s: YamuxStream) => void
    const got = new Promise<YamuxStream>((r) => (accepted = r))
    const server = new YamuxSession(b, { client: false, keepAliveInterval: 0, onStream: (s) => accepted(s) })
    const client = new YamuxSession(a, { client: true, keepAliveInterval: 0 })
    const s: Conn = client.open()
    return {
      a: s,
      b: await got,
      cleanup: () => {
        client.close()
        server.close()
      },
    }
  }
}

connSuite('yamux stream over memoryPair', streamPair())
connSuite('yamux stream over memoryPair split into 5-byte pieces', streamPair({ split: 5 }))
connSuite('yamux stream over a transport that cannot pause', streamPair({ canPause: false }))
