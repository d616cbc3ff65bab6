// Handlers shared by the browser test pages (page mode and service-worker mode). They run in the
// page; the Node test drives them through wsfrps's vhost and reads `window.t` with page.evaluate.

/** Test state on `window.t`: what the handlers saw, and hooks the test calls. */
export function makeState(mode) {
  const waiting = []
  return {
    mode,
    status: 'connecting',
    proxies: {},
    requests: 0,
    uploads: [],
    errors: [],
    /** Releases the second chunk of the oldest /stream response still waiting; false if none waits. */
    sendChunk2() {
      const release = waiting.shift()
      if (release === undefined) return false
      release()
      return true
    },
    /** How many /stream responses wait for their second chunk. */
    get streamsWaiting() {
      return waiting.length
    },
    _waitChunk2() {
      return new Promise((resolve) => waiting.push(resolve))
    },
  }
}

const enc = new TextEncoder()

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('')
}

/** The http handler: /hello, /headers, /stream, /upload, /big?mib=N, /tiny. */
export function makeHttpHandler(t) {
  return async (request, info) => {
    t.requests++
    const url = new URL(request.url)
    switch (url.pathname) {
      case '/hello':
        return new Response(`hello from ${t.mode} mode: ${url.pathname}${url.search}`, { headers: { 'X-Mode': t.mode } })
      case '/headers':
        return Response.json({
          host: request.headers.get('host'),
          cookie: request.headers.get('cookie'),
          forwardedFor: request.headers.get('x-forwarded-for'),
          proxyName: info.proxyName,
          rawHost: info.rawHeaders.find(([n]) => n.toLowerCase() === 'host')?.[1] ?? null,
        })
      case '/stream': {
        // Chunk 1 at once; chunk 2 only when the test calls t.sendChunk2() (after it has seen chunk 1).
        const body = new ReadableStream({
          async start(c) {
            c.enqueue(enc.encode('chunk-1\n'))
            await t._waitChunk2()
            c.enqueue(enc.encode('chunk-2\n'))
            c.close()
          },
        })
        return new Response(body, { headers: { 'Content-Type': 'text/plain' } })
      }
      case '/upload': {
        const buf = await request.arrayBuffer()
        const sha256 = hex(await crypto.subtle.digest('SHA-256', buf))
        t.uploads.push({ length: buf.byteLength, sha256 })
        return Response.json({ length: buf.byteLength, sha256 })
      }
      case '/big': {
        // N MiB of a byte pattern, in 64 KiB chunks, pulled as the tunnel takes them.
        const total = Number(url.searchParams.get('mib') ?? '1') * 1024 * 1024
        const chunk = new Uint8Array(64 * 1024)
        for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31 + 7) & 255
        let sent = 0
        const body = new ReadableStream({
          pull(c) {
            const n = Math.min(chunk.length, total - sent)
            c.enqueue(n === chunk.length ? chunk.slice() : chunk.slice(0, n))
            sent += n
            if (sent >= total) c.close()
          },
        })
        return new Response(body, { headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(total) } })
      }
      case '/tiny':
        return new Response('ok\n', { headers: { 'Content-Type': 'text/plain' } })
      default:
        return new Response('not found\n', { status: 404 })
    }
  }
}

/** The tcp stream handler: echoes every byte back, half-closes when the client does. */
export function echoHandler({ readable, writable }) {
  return readable.pipeTo(writable)
}
