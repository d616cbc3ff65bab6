import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import * as http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { VERSION } from '@wsfrp/server'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const CLI = 'packages/server/src/cli.ts'
/** The parseable ready line the e2e tests wait for. */
const READY = /^wsfrps \S+ listening on (wss?):\/\/([^\s/]+):(\d+)\/~!frp \(/m

interface Run {
  child: ChildProcess
  stdout(): string
  stderr(): string
  /** Resolves with the first match of `re` in stdout (waits for output, no polling). */
  waitFor(re: RegExp): Promise<RegExpExecArray>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const child = spawn(process.execPath, ['--conditions=wsfrp-source', '--import', 'tsx', CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, PORT: '', WSFRP_TOKEN: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  const waiters: (() => void)[] = []
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    out += c
    for (const w of waiters.splice(0)) w()
  })
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      for (const w of waiters.splice(0)) w()
      resolve({ code, signal })
    }),
  )
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitFor(re) {
      for (;;) {
        const m = re.exec(out)
        if (m !== null) return m
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`wsfrps exited (${child.exitCode ?? child.signalCode}) before printing ${re}: stdout=${out} stderr=${err}`)
        }
        await new Promise<void>((resolve) => waiters.push(resolve))
      }
    },
  }
}

/** Stops a child this test started, by its PID, if it is still running. */
function stop(r: Run): void {
  if (r.child.exitCode === null && r.child.signalCode === null && r.child.pid !== undefined) {
    try {
      process.kill(r.child.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (body += c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      .on('error', reject)
  })
}

function tempFile(name: string, text: string): { path: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'wsfrps-cli-'))
  const path = join(dir, name)
  writeFileSync(path, text)
  return { path, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

test('wsfrps --help prints the usage and exits 0', { timeout: 30_000 }, async () => {
  const r = run(['--help'])
  try {
    const { code } = await r.exited
    assert.equal(code, 0)
    assert.match(r.stdout(), /Usage:/)
    assert.match(r.stdout(), /wsfrps verify -c FILE/)
    assert.match(r.stdout(), /--bind-port/)
  } finally {
    stop(r)
  }
})

test('wsfrps --version prints the package version', { timeout: 30_000 }, async () => {
  const r = run(['--version'])
  try {
    const { code } = await r.exited
    assert.equal(code, 0)
    assert.equal(r.stdout(), `${VERSION}\n`)
  } finally {
    stop(r)
  }
})

test('wsfrps with an unknown flag exits 2 with the usage', { timeout: 30_000 }, async () => {
  const r = run(['--no-such-flag'])
  try {
    const { code } = await r.exited
    assert.equal(code, 2)
    assert.match(r.stderr(), /no-such-flag/)
    assert.match(r.stderr(), /Usage:/)
  } finally {
    stop(r)
  }
})

test('wsfrps verify -c on a good file says the syntax is ok', { timeout: 30_000 }, async () => {
  const f = tempFile('server.toml', 'bindPort = 7000\nauth.token = "abc"\nallowPorts = [{ start = 2000, end = 3000 }]\n')
  const r = run(['verify', '-c', f.path])
  try {
    const { code } = await r.exited
    assert.equal(code, 0, r.stderr())
    assert.equal(r.stdout(), `the configuration file ${f.path} syntax is ok\n`)
  } finally {
    stop(r)
    f.cleanup()
  }
})

test('wsfrps verify -c on a bad file prints every problem with its line and exits 1', { timeout: 30_000 }, async () => {
  const f = tempFile('server.toml', 'bindPort = "x"\n[auth]\ntokn = "abc"\n')
  const r = run(['verify', '-c', f.path])
  try {
    const { code } = await r.exited
    assert.equal(code, 1)
    assert.equal(r.stdout(), '')
    assert.match(r.stderr(), new RegExp(`server\\.toml:1: bindPort: `))
    assert.match(r.stderr(), /server\.toml:3: auth\.tokn: unknown key "tokn" \(did you mean "token"\?\)/)
  } finally {
    stop(r)
    f.cleanup()
  }
})

test('wsfrps -c FILE serves, prints the ready line and stops on SIGTERM with exit 0', { timeout: 30_000 }, async () => {
  const f = tempFile('server.toml', 'bindAddr = "127.0.0.1"\nbindPort = 7000\nauth.token = "file-token-123"\n')
  // --bind-port overrides the file's port.
  const r = run(['-c', f.path, '--bind-port', '0'])
  try {
    const m = await r.waitFor(READY)
    assert.equal(m[1], 'ws')
    assert.equal(m[2], '127.0.0.1')
    const port = Number(m[3])
    assert.ok(port > 0 && port !== 7000)
    const h = await get(port, '/healthz')
    assert.equal(h.status, 200)
    assert.ok(!r.stdout().includes('file-token-123'), 'a configured token is never printed')
    process.kill(r.child.pid!, 'SIGTERM')
    const { code } = await r.exited
    assert.equal(code, 0, r.stderr())
  } finally {
    stop(r)
    f.cleanup()
  }
})

test('wsfrps without a config binds 127.0.0.1:$PORT and prints a generated token once', { timeout: 30_000 }, async () => {
  const r = run([], { PORT: '0' })
  try {
    const m = await r.waitFor(READY)
    assert.equal(m[2], '127.0.0.1')
    const port = Number(m[3])
    const t = await r.waitFor(/connect a client: wsfrpc tcp --server ws:\/\/127\.0\.0\.1:(\d+) --token ([0-9a-f]{32}) --local-port 22 --remote-port 6000/)
    assert.equal(Number(t[1]), port)
    const token = t[2]!
    assert.equal(r.stdout().split(token).length - 1, 2, 'the token appears only in the two start-up lines')
    const page = await get(port, '/')
    assert.ok(!page.body.includes(token))
    process.kill(r.child.pid!, 'SIGINT')
    const { code } = await r.exited
    assert.equal(code, 0, r.stderr())
  } finally {
    stop(r)
  }
})

test('wsfrps without a config takes the token from WSFRP_TOKEN and does not print it', { timeout: 30_000 }, async () => {
  const r = run(['--bind-port', '0'], { WSFRP_TOKEN: 'env-token-abcdef' })
  try {
    await r.waitFor(READY)
    assert.ok(!r.stdout().includes('env-token-abcdef'))
    assert.doesNotMatch(r.stdout(), /generated/)
    process.kill(r.child.pid!, 'SIGTERM')
    const { code } = await r.exited
    assert.equal(code, 0, r.stderr())
  } finally {
    stop(r)
  }
})

test('wsfrps -c FILE without bindPort takes $PORT (PaaS); a bindPort in the file wins', { timeout: 30_000 }, async () => {
  const noPort = tempFile('server.toml', 'bindAddr = "127.0.0.1"\nauth.token = "t"\n')
  const withPort = tempFile('server.toml', 'bindAddr = "127.0.0.1"\nbindPort = 0\nauth.token = "t"\n')
  // $PORT is a port we hold ourselves, so the first server must fail on it if it takes $PORT,
  // while the second (bindPort = 0 in the file) must ignore it and start.
  const holder = http.createServer()
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r))
  const held = (holder.address() as import('node:net').AddressInfo).port
  const a = run(['-c', noPort.path], { PORT: String(held) })
  const b = run(['-c', withPort.path], { PORT: String(held) })
  try {
    const { code } = await a.exited
    assert.equal(code, 1)
    assert.match(a.stderr(), new RegExp(`${held}.*(in use|EADDRINUSE)`))
    const m = await b.waitFor(READY)
    assert.notEqual(Number(m[3]), held)
  } finally {
    stop(a)
    stop(b)
    holder.close()
    noPort.cleanup()
    withPort.cleanup()
  }
})
