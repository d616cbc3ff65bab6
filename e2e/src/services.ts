/** Local services for end-to-end tests and benchmarks, all on 127.0.0.1 with an ephemeral port. */
import net from 'node:net'
import { once } from 'node:events'

export interface Service {
  port: number
  /** Connections accepted so far. */
  readonly accepted: number
  close(): Promise<void>
}

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return (server.address() as net.AddressInfo).port
}

function closer(server: net.Server, sockets: Set<net.Socket>): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    })
}

/** Echoes every byte; answers the client's FIN with its own after the echo (real half-close). */
export async function startEchoServer(): Promise<Service> {
  const sockets = new Set<net.Socket>()
  let accepted = 0
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    accepted++
    sockets.add(sock)
    sock.on('close', () => sockets.delete(sock))
    sock.on('error', () => {})
    sock.pipe(sock)
  })
  const port = await listen(server)
  return {
    port,
    get accepted() {
      return accepted
    },
    close: closer(server, sockets),
  }
}

/**
 * A service for bulk tests: the first byte a client sends picks the mode.
 *  'U' (upload): count what follows until EOF, then answer the count as decimal text and close.
 *  'D' (download): then an 8-byte big-endian length N; send N bytes, then close.
 */
export async function startBulkServer(): Promise<Service> {
  const sockets = new Set<net.Socket>()
  let accepted = 0
  const chunk = Buffer.alloc(64 * 1024, 0x5a)
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    accepted++
    sockets.add(sock)
    sock.on('close', () => sockets.delete(sock))
    sock.on('error', () => {})
    let mode = ''
    let header = Buffer.alloc(0)
    let count = 0
    sock.on('data', (d: Buffer) => {
      if (mode === 'U') {
        count += d.length
        return
      }
      header = Buffer.concat([header, d])
      if (!mode && header.length >= 1) mode = String.fromCharCode(header[0]!)
      if (mode === 'U') {
        count += header.length - 1
        return
      }
      if (mode === 'D' && header.length >= 9) {
        sock.removeAllListeners('data')
        let left = Number(header.readBigUInt64BE(1))
        const go = (): void => {
          while (left > 0) {
            const n = Math.min(left, chunk.length)
            left -= n
            if (!sock.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
              sock.once('drain', go)
              return
            }
          }
          sock.end()
        }
        go()
      }
    })
    sock.on('end', () => {
      if (mode === 'U') sock.end(String(count))
    })
  })
  const port = await listen(server)
  return {
    port,
    get accepted() {
      return accepted
    },
    close: closer(server, sockets),
  }
}
