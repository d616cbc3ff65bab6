/**
 * The dashboard in real Chromium: a server with a logged-in client and a tcp proxy; the page shows the
 * client and the proxy with live traffic figures; a screenshot goes to .test-results/.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { validateClientConfig } from '@wsfrp/core'
import { createServer, type WsfrpServer } from '@wsfrp/server'
import { createClient, type WsfrpClient } from '@wsfrp/client-node'
import { ROOT } from '../../src/process.js'
import { startEchoServer, type Service } from '../../src/services.js'
import { chromiumMissing, launchChromium, pageLog } from '../../src/chromium.js'

const skip = chromiumMissing('browser dashboard')

describe('dashboard in Chromium', { skip, timeout: 90_000 }, () => {
  let browser: Browser | undefined
  let server: WsfrpServer | undefined
  let client: WsfrpClient | undefined
  let echo: Service | undefined
  let port = 0
  let remotePort = 0

  before(async () => {
    echo = await startEchoServer()
    server = createServer({ bindAddr: '127.0.0.1', bindPort: 0, auth: { token: 'dash-token' }, log: { level: 'warn' } })
    port = (await server.listen()).port
    client = createClient(
      validateClientConfig({
        serverAddr: '127.0.0.1',
        serverPort: port,
        auth: { token: 'dash-token' },
        log: { level: 'warn' },
        proxies: [{ name: 'echo-dash', type: 'tcp', localPort: echo.port, remotePort: 0 }],
      }),
    )
    const running = new Promise<{ port?: number; remote: string }>((resolve) => client!.on('proxy', (p) => p.status === 'running' && resolve(p)))
    await client.start()
    const p = await running
    remotePort = Number(p.remote.split(':').pop())
    // Some traffic through the proxy, so that the byte counters are not zero.
    const s = net.connect({ host: '127.0.0.1', port: remotePort })
    await once(s, 'connect')
    s.end(Buffer.alloc(64 * 1024, 7))
    for await (const _ of s) {
      /* drain the echo */
    }
    browser = await launchChromium()
  })
  after(async () => {
    await browser?.close()
    await client?.stop()
    await server?.close()
    await echo?.close()
  })

  test('the dashboard shows the client, the proxy and its traffic; screenshot', { timeout: 60_000 }, async () => {
    const page = await browser!.newPage({ viewport: { width: 1200, height: 800 } })
    const log = pageLog(page, 'dashboard')
    await page.goto(`http://127.0.0.1:${port}/_wsfrp/`)
    // The page marks itself ready after its first successful poll of the API.
    await page.waitForSelector('body[data-state="ready"]', { timeout: 20_000 }).catch((err: unknown) => {
      throw new Error(`dashboard never got ready: ${String(err)}\n${log.join('\n')}`)
    })
    await page.waitForFunction((name) => document.body.innerText.includes(name), 'echo-dash', { timeout: 20_000 })
    const text = await page.evaluate(() => document.body.innerText)
    assert.match(text, /echo-dash/)
    assert.match(text, new RegExp(String(remotePort)))
    assert.ok(!text.includes('dash-token'), 'no secret on the page')
    const dir = join(ROOT, '.test-results')
    mkdirSync(dir, { recursive: true })
    await page.screenshot({ path: join(dir, 'browser-dashboard.png'), fullPage: true })
    await page.close()
  })
})
