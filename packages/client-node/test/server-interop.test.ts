/**
 * The client against our real server (@wsfrp/server), in process: login, a tcp proxy on remote
 * port 0, bytes through it, and what the client does when the server shuts down.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { noopLogger, validateClientConfig } from '@wsfrp/core'
import { createServer } from '@wsfrp/server'
import { createClient, createLogger, type ClientEventName, type ClientEvents, type WsfrpClient } from '@wsfrp/client-node'
import { echoThrough, startEcho } from './support/frps.js'

const T = { timeout: 20_000 }
const TOKEN = 'interop-token'

function next<E extends ClientEventName>(c: WsfrpClient, event: E, pred: (...a: ClientEvents[E]) => boolean = () => true): Promise<ClientEvents[E]> {
  return new Promise((resolve) => {
    const l = (...a: ClientEvents[E]): void => {
      if (!pred(...a)) return
      c.off(event, l)
      resolve(a)
    }
    c.on(event, l)
  })
}

test('wsfrps in process: a tcp proxy on remote port 0 echoes through; a server shutdown is a disconnect, not a crash', T, async () => {
  const server = createServer({ bindAddr: '127.0.0.1', bindPort: 0, proxyBindAddr: '127.0.0.1', auth: { token: TOKEN } }, { logger: noopLogger })
  await server.listen()
  const echo = await startEcho()
  const lines: string[] = []
  const client = createClient(
    validateClientConfig({
      serverURL: server.url(),
      auth: { token: TOKEN },
      proxies: [{ name: 'echo', type: 'tcp', localPort: echo.port, remotePort: 0 }],
    }),
    { logger: createLogger({ level: 'debug', write: (l) => lines.push(l) }), reconnect: { initialDelayMs: 10, maxDelayMs: 40, random: () => 0.5 } },
  )
  let serverClosed = false
  try {
    const running = next(client, 'proxy', (p) => p.status === 'running')
    await client.start()
    const [p] = await running
    assert.ok(p.remotePort !== undefined && p.remotePort > 0, JSON.stringify(p))
    const payload = 'y'.repeat(200_000)
    assert.equal(await echoThrough(p.remotePort, payload), payload)
    assert.equal(await echoThrough(p.remotePort, 'second'), 'second')

    const disconnected = next(client, 'disconnect')
    const retried = next(client, 'retry', (r) => r.phase !== 'session')
    await server.close()
    serverClosed = true
    const [d] = await disconnected
    assert.ok(d.error instanceof Error)
    assert.equal(client.status().proxies[0]!.status, 'pending')
    // The port is gone: the next attempts fail and are retried.
    await retried
    assert.notEqual(client.status().state, 'stopped')
  } finally {
    await client.stop()
    if (!serverClosed) await server.close()
    await echo.close()
  }
})
