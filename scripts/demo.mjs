#!/usr/bin/env node
// npm run demo: a wsfrps server, a wsfrpc client and a small local echo service in one process,
// then a line that says what to try. Ctrl-C stops everything.
import net from 'node:net'
import { randomBytes } from 'node:crypto'
import { createServer } from '@wsfrp/server'
import { createClient } from '@wsfrp/client-node'
import { validateClientConfig } from '@wsfrp/core'

const token = randomBytes(12).toString('hex')

// 1. A local service that the tunnel will expose: it greets and echoes each line in upper case.
const service = net.createServer((sock) => {
  sock.write('hello from the demo service behind wsfrp — type a line\n')
  sock.setEncoding('utf8')
  sock.on('data', (d) => sock.write(d.toUpperCase()))
  sock.on('error', () => {})
})
await new Promise((r) => service.listen(0, '127.0.0.1', r))
const servicePort = service.address().port

// 2. The server, on a free port of 127.0.0.1.
const server = createServer({ bindAddr: '127.0.0.1', bindPort: Number(process.env.PORT ?? 0), auth: { token }, log: { level: 'warn' } })
const { port } = await server.listen()

// 3. The client: one tcp proxy from a server port to the service.
const client = createClient(
  validateClientConfig({
    serverAddr: '127.0.0.1',
    serverPort: port,
    auth: { token },
    log: { level: 'warn' },
    proxies: [{ name: 'demo', type: 'tcp', localIP: '127.0.0.1', localPort: servicePort, remotePort: 0 }],
  }),
)
const running = new Promise((resolve) => client.on('proxy', (p) => p.status === 'running' && resolve(p)))
await client.start()
const proxy = await running

console.log(`
wsfrp demo is running
  server    ws://127.0.0.1:${port}/~!frp    (landing page: http://127.0.0.1:${port}/)
  service   127.0.0.1:${servicePort}        (a local echo service)
  tunnel    ${proxy.remote}  ⇒  127.0.0.1:${servicePort}

Try:
  nc 127.0.0.1 ${proxy.remote.split(':').pop()}          # talk to the service through the tunnel
  curl http://127.0.0.1:${port}/healthz

Ctrl-C to stop.`)

const stop = async () => {
  await client.stop()
  await server.close()
  service.close()
  process.exit(0)
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
