/** Helpers for the dashboard, API and metrics tests: plain HTTP requests and a Prometheus text parser. */
import * as http from 'node:http'
import assert from 'node:assert/strict'

export interface HttpAnswer {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/** One HTTP/1.1 request to 127.0.0.1:port; resolves with the whole answer. */
export function request(port: number, path: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** GET that must answer 200 with JSON; resolves with the parsed body. */
export async function getJson<T = unknown>(port: number, path: string, headers?: Record<string, string>): Promise<T> {
  const r = await request(port, path, { headers })
  assert.equal(r.status, 200, `${path}: ${r.body}`)
  assert.match(String(r.headers['content-type']), /^application\/json/)
  return JSON.parse(r.body) as T
}

export function basic(user: string, password: string): Record<string, string> {
  return { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` }
}

/** A parsed Prometheus text exposition: samples by `name{label="v",…}` (labels sorted), and the TYPE of each family. */
export interface Exposition {
  samples: Map<string, number>
  types: Map<string, string>
}

/**
 * Parses the text format strictly enough to fail on malformed output: every non-comment line must be
 * `name{labels} value`, every sample's family must have a TYPE line.
 */
export function parseExposition(text: string): Exposition {
  const samples = new Map<string, number>()
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    if (line.startsWith('# HELP ')) continue
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line)
    if (t !== null) {
      types.set(t[1]!, t[2]!)
      continue
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    assert.ok(m !== null, `not a sample line: ${JSON.stringify(line)}`)
    const labels: string[] = []
    const labelText = m[2] ?? ''
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy
    let consumed = 0
    for (let l = re.exec(labelText); l !== null; l = re.exec(labelText)) {
      labels.push(`${l[1]}="${l[2]}"`)
      consumed = re.lastIndex
    }
    assert.equal(consumed, labelText.length, `malformed labels in ${JSON.stringify(line)}`)
    const value = Number(m[3])
    assert.ok(!Number.isNaN(value), `value of ${JSON.stringify(line)}`)
    assert.ok(types.has(m[1]!), `no TYPE line before ${m[1]}`)
    samples.set(`${m[1]}${labels.length > 0 ? `{${labels.sort().join(',')}}` : ''}`, value)
  }
  return { samples, types }
}

/** GETs a metrics page and parses it. */
export async function scrape(port: number, path = '/_wsfrp/metrics', headers?: Record<string, string>): Promise<Exposition> {
  const r = await request(port, path, { headers })
  assert.equal(r.status, 200, r.body)
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/)
  return parseExposition(r.body)
}
