/**
 * The demo's handler: what a visitor's browser tab publishes when they click "Try it in your
 * browser" on a wsfrps landing page. A page that counts its requests, and a clock streamed as
 * server-sent events (so that streaming through the tunnel is visible).
 */
import type { FetchHandler } from '../handler-target.js'

/** One served request, for the tab's own log. */
export interface DemoRequest {
  n: number
  method: string
  path: string
  from: string | undefined
}

export interface DemoAppOptions {
  /** Called for every request (the demo page lists them). */
  onRequest?: (r: DemoRequest) => void
  /** Interval of the SSE clock, in ms. Default 1,000. */
  clockIntervalMs?: number
  /** The SSE clock stops after this many ticks (the browser's EventSource then reconnects). Default 600. */
  clockTicks?: number
}

const PAGE = (count: number): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Served from a browser tab</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}b{font-variant-numeric:tabular-nums}</style>
</head>
<body>
<h1>Hello from a browser tab</h1>
<p id="what">This page was made by JavaScript running in somebody's browser tab, and reached you through a wsfrp tunnel.</p>
<p>Requests served by the tab so far: <b id="count">${count}</b></p>
<p>The tab's clock, streamed as server-sent events: <b id="clock">…</b></p>
<script>
const es = new EventSource('/clock')
es.onmessage = (e) => { document.getElementById('clock').textContent = e.data }
</script>
</body>
</html>
`

/** The demo handler: `/` (the page), `/clock` (SSE), `/count` (JSON). */
export function createDemoApp(opts: DemoAppOptions = {}): FetchHandler {
  let requests = 0
  const interval = opts.clockIntervalMs ?? 1000
  const maxTicks = opts.clockTicks ?? 600
  const enc = new TextEncoder()
  return (request, info) => {
    const url = new URL(request.url)
    const n = ++requests
    opts.onRequest?.({ n, method: request.method, path: url.pathname, from: info.remoteAddr })
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return new Response('only GET and HEAD here\n', { status: 405, headers: { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' } })
    }
    switch (url.pathname) {
      case '/':
        return new Response(PAGE(n), { headers: { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' } })
      case '/count':
        return Response.json({ requests: n }, { headers: { 'Cache-Control': 'no-store' } })
      case '/clock': {
        let timer: ReturnType<typeof setInterval> | undefined
        let ticks = 0
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            const tick = (): void => {
              c.enqueue(enc.encode(`data: ${new Date().toISOString().slice(11, 19)} UTC\n\n`))
              if (++ticks >= maxTicks) {
                clearInterval(timer)
                c.close()
              }
            }
            c.enqueue(enc.encode('retry: 2000\n\n'))
            tick()
            timer = setInterval(tick, interval)
          },
          cancel() {
            // The visitor closed the page: stop ticking.
            clearInterval(timer)
          },
        })
        return new Response(body, { headers: { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' } })
      }
      default:
        return new Response('not found\n', { status: 404, headers: { 'Content-Type': 'text/plain; charset=utf-8' } })
    }
  }
}
