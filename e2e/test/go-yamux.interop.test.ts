/**
 * Wire interop of our TypeScript yamux (@wsfrp/core) with Go hashicorp/yamux, the implementation frp
 * uses, over plain TCP and over a frps-style WebSocket at /~!frp that sends yamux bytes in TEXT frames
 * (frp ≤ 0.69), with Go windows of 256 KiB (yamux default, frp 0.44) and 6 MiB (frp ≥ 0.50).
 *
 * The Go peer (e2e/go/yamux-peer, protocol in e2e/README.md) is a yamux server; we are the client
 * (odd stream ids, like frpc). Every check asserts on both sides: what TypeScript saw, and the event
 * line the Go peer printed.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { YamuxSession, isWsfrpError, type Conn, type ConnSink, type YamuxOptions, type YamuxStream } from '@wsfrp/core'
import { connectTcp, dialWs } from '@wsfrp/node'
import { startGoPeer, type GoPeer } from '../src/go-peer.js'

const KiB = 1024
const MiB = 1024 * KiB
const BIG = 64 * MiB
const CHUNK = 64 * KiB

type Transport = 'tcp' | 'ws' | 'ws-binary'

// --- byte pattern shared with the Go peer: byte i of a stream's payload is (i*31+7) & 255 ----------

const PATTERN = (() => {
  const b = new Uint8Array(CHUNK + 256)
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + 7) & 255
  return b
})()

/** `len` (≤ 64 KiB) pattern bytes starting at stream offset `offset`. Never mutated by anyone. */
function patternAt(offset: number, len: number): Uint8Array {
  const start = offset % 256
  return PATTERN.subarray(start, start + len)
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i
  return a.length === b.length ? -1 : n
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0))
  let off = 0
  for (const c of chunks) {
    out.set(c, off)
    off += c.length
  }
  return out
}

// --- a sink that records what a stream delivers and lets the test await conditions on it ------------

interface ProbeOptions {
  /** Keep the received bytes (small payloads and reply lines). */
  keep?: boolean
  /** Check every received byte against the pattern, recording the first mismatching offset. */
  pattern?: boolean
}

class Probe implements ConnSink {
  received = 0
  /** First offset whose byte broke the pattern (pattern mode), -1 while none did. */
  mismatch = -1
  drains = 0
  endSeen = false
  isClosed = false
  closeErr: Error | undefined
  readonly chunks: Uint8Array[] = []
  /** Resolves on the peer's FIN; rejects when the stream closes without one. */
  readonly ended: Promise<void>
  /** Resolves with the close error (undefined for a clean close) once the stream is finished. */
  readonly closed: Promise<Error | undefined>
  #resolveEnded!: () => void
  #rejectEnded!: (err: Error) => void
  #resolveClosed!: (err: Error | undefined) => void
  #waiters = new Set<{ ready: () => boolean; resolve: () => void; reject: (e: Error) => void; what: string }>()

  constructor(
    readonly label: string,
    private readonly opts: ProbeOptions = {},
  ) {
    this.ended = new Promise((res, rej) => {
      this.#resolveEnded = res
      this.#rejectEnded = rej
    })
    // Tests that never await `ended` must not crash the runner with an unhandled rejection.
    this.ended.catch(() => {})
    this.closed = new Promise((res) => (this.#resolveClosed = res))
  }

  onData(chunk: Uint8Array): void {
    if (this.opts.pattern && this.mismatch < 0) {
      const start = this.received % 256
      for (let i = 0; i < chunk.length; i++) {
        if (chunk[i] !== PATTERN[start + (i % 256)]) {
          this.mismatch = this.received + i
          break
        }
      }
    }
    if (this.opts.keep) this.chunks.push(chunk)
    this.received += chunk.length
    this.#wake()
  }

  onDrain(): void {
    this.drains++
    this.#wake()
  }

  onEnd(): void {
    this.endSeen = true
    this.#resolveEnded()
    this.#wake()
  }

  onClose(err?: Error): void {
    this.isClosed = true
    this.closeErr = err
    if (!this.endSeen) this.#rejectEnded(new Error(`${this.label}: closed before FIN (${err?.message ?? 'no error'})`))
    this.#resolveClosed(err)
    this.#wake()
  }

  bytes(): Uint8Array {
    return concat(this.chunks)
  }

  text(): string {
    return new TextDecoder().decode(this.bytes())
  }

  /** Resolves once `ready()` holds; rejects if the stream closes first. */
  until(ready: () => boolean, what: string): Promise<void> {
    if (ready()) return Promise.resolve()
    if (this.isClosed) return Promise.reject(this.#closedError(what))
    return new Promise((resolve, reject) => this.#waiters.add({ ready, resolve, reject, what }))
  }

  /** The first reply line (without its newline). */
  async line(): Promise<string> {
    await this.until(() => this.text().includes('\n'), 'a reply line')
    return this.text().split('\n')[0]!
  }

  #closedError(what: string): Error {
    return new Error(
      `${this.label}: stream closed (${this.closeErr?.message ?? 'no error'}) while waiting for ${what}; ` +
        `received ${this.received} bytes, FIN ${this.endSeen ? 'seen' : 'not seen'}`,
    )
  }

  #wake(): void {
    for (const w of this.#waiters) {
      if (w.ready()) {
        this.#waiters.delete(w)
        w.resolve()
      } else if (this.isClosed) {
        this.#waiters.delete(w)
        w.reject(this.#closedError(w.what))
      }
    }
  }
}

/** Writes `total` bytes produced by `chunkAt(offset, len)`, honouring write() backpressure. */
async function writeAll(
  conn: Conn,
  probe: Probe,
  total: number,
  chunkAt: (offset: number, len: number) => Uint8Array,
): Promise<void> {
  let off = 0
  while (off < total) {
    const len = Math.min(CHUNK, total - off)
    const drainsBefore = probe.drains
    const more = conn.write(chunkAt(off, len))
    off += len
    if (!more) await probe.until(() => probe.drains > drainsBefore, `drain after ${off} bytes written`)
  }
}

/** Opens a stream, installs a probe and sends the Go peer's command line. */
function command(session: YamuxSession, line: string, opts: ProbeOptions = { keep: true }): { s: YamuxStream; p: Probe } {
  const s = session.open()
  const p = new Probe(`stream ${s.id} (${line})`, opts)
  s.start(p)
  s.write(enc(`${line}\n`))
  return { s, p }
}

/** Round-trips a few bytes through Go's echo mode: proves the session is still healthy. */
async function echoSmall(session: YamuxSession, peer: GoPeer, since: number): Promise<void> {
  const payload = enc('still alive')
  const { s, p } = command(session, 'E')
  s.write(payload)
  s.end()
  await p.ended
  assert.equal(p.text(), 'still alive')
  await peer.waitForLine(new RegExp(`^E ${s.id} n=${payload.length}$`), { since })
}

/** Echoes a Go-opened stream back, answering Go's FIN with ours. */
class EchoBack implements ConnSink {
  received = 0
  endSeen = false
  readonly closed: Promise<Error | undefined>
  #resolveClosed!: (err: Error | undefined) => void
  constructor(readonly stream: YamuxStream) {
    this.closed = new Promise((res) => (this.#resolveClosed = res))
  }
  onData(chunk: Uint8Array): void {
    this.received += chunk.length
    // Stop reading (and so stop crediting Go's window) while our echo is backed up.
    if (!this.stream.write(chunk)) this.stream.pause()
  }
  onDrain(): void {
    this.stream.resume()
  }
  onEnd(): void {
    this.endSeen = true
    this.stream.end()
  }
  onClose(err?: Error): void {
    this.#resolveClosed(err)
  }
}

// --- matrix ---------------------------------------------------------------------------------------

async function dial(peer: GoPeer, transport: Transport): Promise<Conn> {
  if (transport === 'tcp') return connectTcp(peer.host, peer.port)
  // x/net/websocket (as in frps) answers 403 without an Origin header.
  return dialWs(peer.wsUrl, { origin: `http://${peer.addr}` })
}

interface Ctx {
  session: YamuxSession
  peer: GoPeer
  /** Peer line index at the start of the test: `waitForLine(…, { since })` sees only this test's lines. */
  since: number
  /** Streams Go opened towards us, echoed back by {@link EchoBack}. */
  accepted: EchoBack[]
}

// Without Go the suite is skipped loudly on a developer machine (scripts/install-test-deps.sh
// installs it) and fails in CI (CI=true), where .ci/run installs it and a skip would hide a gap.
const goMissing = spawnSync('go', ['version']).error !== undefined
if (goMissing) {
  const msg = 'Go toolchain missing: run `bash scripts/install-test-deps.sh` (golang-go golang-github-hashicorp-yamux-dev golang-golang-x-net-dev)'
  if (process.env.CI) throw new Error(`${msg}; CI must run the interop suite`)
  console.warn(`SKIPPING Go interop tests: ${msg}`)
}

function matrix(transport: Transport, window: number, which: 'all' | 'smoke'): void {
  describe(`Go yamux interop over ${transport}, Go window ${window / KiB} KiB`, { timeout: 300_000, skip: goMissing && 'Go toolchain missing' }, () => {
    let peer: GoPeer | undefined

    // Generous: the first start may have to compile the Go peer.
    before(
      async () => {
        peer = await startGoPeer({
          transport: transport === 'tcp' ? 'tcp' : 'ws',
          binary: transport === 'ws-binary',
          window,
        })
      },
      { timeout: 180_000 },
    )
    after(
      async () => {
        await peer?.stop()
      },
      { timeout: 10_000 },
    )

    /**
     * Runs `body` on a fresh session (so a GoAway or reset cannot leak into the next test), then
     * closes it, requires Go to have logged no yamux error meanwhile and to see the session end.
     */
    async function withSession(body: (ctx: Ctx) => Promise<void>, extra: Partial<YamuxOptions> = {}): Promise<void> {
      const p = peer!
      const since = p.lineCount
      const accepted: EchoBack[] = []
      const conn = await dial(p, transport)
      const session = new YamuxSession(conn, {
        client: true,
        // frp configures both ends alike; keep-alive off so the only pings are the tests' own.
        maxStreamWindow: window,
        keepAliveInterval: 0,
        onStream: (s) => {
          const echo = new EchoBack(s)
          accepted.push(echo)
          s.start(echo)
        },
        ...extra,
      })
      try {
        await p.waitForLine(/^SESSION open /, { since })
        await body({ session, peer: p, since, accepted })
        const goErrors = p.linesMatching(/^YAMUX \[ERR\]/, since)
        assert.deepEqual(goErrors, [], 'Go yamux logged errors during the test')
      } catch (err) {
        // The Go side's view is the other half of the evidence; the original error stays as cause.
        const goSide = p.lines.slice(since).slice(-60).map((l) => `  go> ${l}`).join('\n')
        const msg = err instanceof Error ? err.message : String(err)
        throw new Error(`${msg}\n--- Go peer output during this test ---\n${goSide}`, { cause: err })
      } finally {
        session.close()
      }
      assert.equal(await session.closed, undefined, 'a locally closed session ends without an error')
      await p.waitForLine(/^SESSION closed /, { since })
    }

    test('8 concurrent echo streams × 1 MiB with half-close', { timeout: 60_000 }, () =>
      withSession(async ({ session, peer, since }) => {
        await Promise.all(
          Array.from({ length: 8 }, async (_, i) => {
            // Random, distinct payloads: a byte delivered on the wrong stream cannot go unnoticed.
            const data = new Uint8Array(randomBytes(MiB))
            const { s, p } = command(session, 'E')
            await writeAll(s, p, data.length, (off, len) => data.subarray(off, off + len))
            s.end()
            await p.ended
            const got = p.bytes()
            assert.equal(got.length, data.length, `stream #${i} (id ${s.id}) echo length`)
            assert.equal(firstDiff(got, data), -1, `stream #${i} (id ${s.id}) echo content`)
            assert.equal(await p.closed, undefined, `stream ${s.id} closes cleanly after FIN both ways`)
            await peer.waitForLine(new RegExp(`^E ${s.id} n=${MiB}$`), { since })
          }),
        )
      }),
    )

    test('upload 64 MiB: Go counts and checks the pattern', { timeout: 120_000 }, () =>
      withSession(async ({ session, peer, since }) => {
        const { s, p } = command(session, 'S')
        await writeAll(s, p, BIG, patternAt)
        s.end()
        await p.ended
        assert.equal(p.text(), `${BIG} -1\n`, 'Go reply "<count> <first mismatch>"')
        await peer.waitForLine(new RegExp(`^S ${s.id} n=${BIG} mismatch=-1$`), { since })
        assert.equal(await p.closed, undefined)
      }),
    )

    test('download 64 MiB: pattern checked byte by byte', { timeout: 120_000 }, () =>
      withSession(async ({ session, peer, since }) => {
        const { s, p } = command(session, `G ${BIG}`, { pattern: true })
        s.end()
        await p.ended
        assert.equal(p.received, BIG)
        assert.equal(p.mismatch, -1, 'first byte off the pattern')
        await peer.waitForLine(new RegExp(`^G ${s.id} n=${BIG}$`), { since })
        assert.equal(await p.closed, undefined)
      }),
    )

    if (which === 'smoke') return

    test('Go-opened streams are accepted, echoed, and FIN is answered with FIN', { timeout: 60_000 }, () =>
      withSession(async ({ session, peer, since, accepted }) => {
        // n above 256 KiB so the echo needs window updates in both directions.
        const k = 4
        const n = MiB + 3
        const { s, p } = command(session, `P ${k} ${n}`)
        s.end()
        await p.ended
        assert.equal(p.text(), `OK ${k} ${n}\n`, 'Go verified every echo and saw our FIN after its own')
        await peer.waitForLine(new RegExp(`^OK P ${k} ${n}$`), { since })
        assert.equal(accepted.length, k)
        for (const e of accepted) {
          assert.equal(e.stream.id % 2, 0, 'server-opened stream ids are even')
          assert.equal(e.received, n)
          assert.ok(e.endSeen, `stream ${e.stream.id}: Go's FIN surfaced as onEnd`)
          assert.equal(await e.closed, undefined, `stream ${e.stream.id} closes cleanly`)
        }
      }),
    )

    test('ping TypeScript → Go', { timeout: 30_000 }, () =>
      withSession(async ({ session, peer, since }) => {
        const rtt = await session.ping()
        assert.equal(typeof rtt, 'number')
        assert.ok(Number.isFinite(rtt) && rtt >= 0 && rtt < 10_000, `rtt ${rtt} ms`)
        // Go's wire tap saw our Ping SYN (keep-alive is off, so it is ours).
        await peer.waitForLine(/^RX PING \d+$/, { since })
      }),
    )

    test('ping Go → TypeScript', { timeout: 30_000 }, () =>
      withSession(async ({ session, peer, since }) => {
        const { s, p } = command(session, 'Z')
        s.end()
        const line = await p.line()
        assert.match(line, /^RTT \d+$/, 'Go got our Ping ACK')
        await peer.waitForLine(/^PINGED rtt=/, { since })
        await p.ended
      }),
    )

    test('TypeScript resets a stream: Go Read fails with "connection reset"', { timeout: 30_000 }, () =>
      withSession(async ({ session, peer, since }) => {
        const { s, p } = command(session, 'R')
        s.write(patternAt(0, 1000))
        // Reset only once Go is blocked reading: an RST that overtakes the command line would leave
        // Go unable to tell which mode the stream was meant for.
        await peer.waitForLine(new RegExp(`^R ${s.id} ready$`), { since })
        s.reset()
        await peer.waitForLine(new RegExp(`^RX RST ${s.id}$`), { since })
        await peer.waitForLine(new RegExp(`^R ${s.id} n=\\d+ err=connection reset$`), { since })
        await p.closed
        assert.ok(p.isClosed, 'the reset stream is closed locally')
        assert.ok(!p.endSeen, 'no FIN came from Go')
        await echoSmall(session, peer, since)
      }),
    )

    test('Go GoAway: new opens refused with ERR_MUX_GO_AWAY, open stream keeps working', { timeout: 60_000 }, () =>
      withSession(async ({ session, peer, since }) => {
        const head = enc('before GoAway;')
        const { s: s1, p: p1 } = command(session, 'E')
        s1.write(head)
        await p1.until(() => p1.received >= head.length, 'echo of the first bytes')

        const { s: s2, p: p2 } = command(session, 'A')
        s2.end()
        await p2.ended
        // Go writes this reply only after its GoAway frame went out, so the GoAway is processed.
        assert.equal(p2.text(), 'GOAWAY\n')
        await peer.waitForLine(/^GOAWAY sent$/, { since })

        assert.throws(
          () => session.open(),
          (err: unknown) => isWsfrpError(err, 'ERR_MUX_GO_AWAY'),
          'open() after the peer GoAway',
        )

        // The stream opened before the GoAway still carries data both ways (more than one window).
        const data = new Uint8Array(randomBytes(MiB))
        await writeAll(s1, p1, data.length, (off, len) => data.subarray(off, off + len))
        s1.end()
        await p1.ended
        const got = p1.bytes()
        assert.equal(got.length, head.length + data.length)
        assert.equal(firstDiff(got.subarray(0, head.length), head), -1)
        assert.equal(firstDiff(got.subarray(head.length), data), -1)
        assert.equal(await p1.closed, undefined)
        await peer.waitForLine(new RegExp(`^E ${s1.id} n=${head.length + data.length}$`), { since })

        // The session itself stays up.
        const rtt = await session.ping()
        assert.ok(rtt >= 0)
      }),
    )

    test('TypeScript GoAway: Go can no longer open streams towards us', { timeout: 30_000 }, () =>
      withSession(async ({ session, peer, since, accepted }) => {
        // Open the command stream first: after our own GoAway we refuse new streams ourselves.
        const s = session.open()
        const p = new Probe(`stream ${s.id} (P after our GoAway)`, { keep: true })
        s.start(p)
        session.goAway()
        await peer.waitForLine(/^RX GOAWAY 0$/, { since })
        s.write(enc('P 1 1000\n'))
        s.end()
        await p.ended
        assert.match(p.text(), /^FAIL open #0: remote end is not accepting connections\n$/)
        assert.equal(accepted.length, 0)
      }),
    )

    test('a paused download holds at its window while another stream completes', { timeout: 60_000 }, () =>
      withSession(async ({ session, peer, since }) => {
        const stalledSize = 16 * MiB
        const { s: s1, p: p1 } = command(session, `G ${stalledSize}`, { pattern: true })
        s1.pause()
        s1.end()
        const { s: s2, p: p2 } = command(session, `G ${8 * MiB}`, { pattern: true })
        s2.end()
        await p2.ended
        assert.equal(p2.received, 8 * MiB)
        assert.equal(p2.mismatch, -1)
        await peer.waitForLine(new RegExp(`^G ${s2.id} n=${8 * MiB}$`), { since })

        // The paused stream got nothing delivered, and what it buffers is bounded by its window.
        assert.equal(p1.received, 0, 'no onData while paused')
        const buffered = session.stats().receiveBufferedBytes
        assert.ok(buffered <= window, `paused stream buffers ${buffered} bytes, window ${window}`)
        assert.deepEqual(peer.linesMatching(new RegExp(`^G ${s1.id} `), since), [], 'Go cannot finish while we hold the window')

        s1.resume()
        await p1.ended
        assert.equal(p1.received, stalledSize)
        assert.equal(p1.mismatch, -1)
        await peer.waitForLine(new RegExp(`^G ${s1.id} n=${stalledSize}$`), { since })
      }),
    )

    test('one write larger than the Go window is split into frames Go accepts', { timeout: 60_000 }, () =>
      withSession(async ({ session, peer, since }) => {
        const size = 3 * MiB + 5
        const big = new Uint8Array(size)
        for (let i = 0; i < size; i++) big[i] = (i * 31 + 7) & 255
        const { s, p } = command(session, 'S')
        s.write(big)
        s.end()
        await p.ended
        assert.equal(p.text(), `${size} -1\n`)
        await peer.waitForLine(new RegExp(`^S ${s.id} n=${size} mismatch=-1$`), { since })
      }),
    )

    test('200 concurrent short echo streams', { timeout: 60_000 }, () =>
      withSession(async ({ session, peer, since }) => {
        const ids = new Set<number>()
        await Promise.all(
          Array.from({ length: 200 }, async (_, i) => {
            const data = new Uint8Array(randomBytes(1000 + i))
            const { s, p } = command(session, 'E')
            ids.add(s.id)
            s.write(data)
            s.end()
            await p.ended
            assert.equal(firstDiff(p.bytes(), data), -1, `stream ${s.id} echo`)
            assert.equal(await p.closed, undefined)
            // Go prints its line after its FIN, so it may trail our end event.
            await peer.waitForLine(new RegExp(`^E ${s.id} n=${data.length}$`), { since })
          }),
        )
        assert.equal(ids.size, 200)
        for (const id of ids) assert.ok(id % 2 === 1, `client stream id ${id} is odd`)
        assert.equal(session.stats().streams, 0, 'every finished stream is forgotten')
      }),
    )

    test('TypeScript keep-alive pings are answered by Go', { timeout: 30_000 }, () =>
      withSession(
        async ({ session, peer, since }) => {
          let from = since
          for (let i = 0; i < 3; i++) {
            await peer.waitForLine(/^RX PING \d+$/, { since: from })
            from = peer.lines.findIndex((l, idx) => idx >= from && /^RX PING \d+$/.test(l)) + 1
          }
          assert.ok(session.rtt >= 0, `rtt measured by keep-alive: ${session.rtt}`)
          await echoSmall(session, peer, since)
        },
        { keepAliveInterval: 50 },
      ),
    )
  })
}

for (const transport of ['tcp', 'ws'] as const) {
  for (const window of [256 * KiB, 6 * MiB]) matrix(transport, window, 'all')
}
// frp ≥ 0.70 switched its WebSocket to binary frames; one smoke pass covers that framing too.
matrix('ws-binary', 6 * MiB, 'smoke')
