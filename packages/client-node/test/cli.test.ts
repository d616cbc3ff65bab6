import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { TOKEN_MISMATCH } from '@wsfrp/core'
import { echoThrough, startEcho, startFrps } from './support/frps.js'

// Each spawn compiles the sources with tsx: seconds apiece on a loaded machine.
const T = { timeout: 90_000 }
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

interface Run {
  child: ChildProcess
  stdout: string[]
  stderr: string[]
  /** Resolves with the first stdout/stderr line matching `re`; rejects if the process exits first. */
  waitFor(re: RegExp): Promise<RegExpMatchArray>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Runs the CLI from source; the child is killed by PID when the test ends (see `cleanup`). */
function cli(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const child = spawn(process.execPath, ['--conditions=wsfrp-source', '--import', 'tsx', 'packages/client-node/src/cli.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, WSFRP_TOKEN: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const stdout: string[] = []
  const stderr: string[] = []
  const waiters = new Set<() => void>()
  const collect = (stream: NodeJS.ReadableStream, into: string[]): void => {
    let buf = ''
    stream.setEncoding('utf8')
    stream.on('data', (d: string) => {
      buf += d
      let i: number
      while ((i = buf.indexOf('\n')) >= 0) {
        into.push(buf.slice(0, i))
        buf = buf.slice(i + 1)
      }
      for (const w of [...waiters]) w()
    })
  }
  collect(child.stdout!, stdout)
  collect(child.stderr!, stderr)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      // 'exit' may come before the last output: wait for the streams too.
      child.on('close', () => {
        resolve({ code, signal })
        for (const w of [...waiters]) w()
      })
    })
  })
  let done = false
  void exited.then(() => (done = true))
  return {
    child,
    stdout,
    stderr,
    exited,
    waitFor(re) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          for (const l of [...stdout, ...stderr]) {
            const m = re.exec(l)
            if (m !== null) {
              waiters.delete(check)
              resolve(m)
              return
            }
          }
          if (done) {
            waiters.delete(check)
            reject(new Error(`exited before printing ${re}:\n${[...stdout, ...stderr].join('\n')}`))
          }
        }
        waiters.add(check)
        check()
      })
    },
  }
}

/** Kills the child by its PID if it still runs. */
async function cleanup(r: Run): Promise<void> {
  if (r.child.exitCode === null && r.child.signalCode === null && r.child.pid !== undefined) {
    process.kill(r.child.pid, 'SIGKILL')
    await r.exited
  }
}

async function finished(args: string[], env?: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = cli(args, env)
  try {
    const { code } = await r.exited
    return { code, stdout: r.stdout.join('\n'), stderr: r.stderr.join('\n') }
  } finally {
    await cleanup(r)
  }
}

test('--help prints the usage and exits 0', T, async () => {
  const r = await finished(['--help'])
  assert.equal(r.code, 0)
  assert.match(r.stdout, /^wsfrpc \S+: frp-compatible/)
  assert.match(r.stdout, /wsfrpc verify -c client\.toml/)
  assert.match(r.stdout, /wsfrpc tcp {2}-s SERVER --local-port N/)
  assert.equal(r.stderr, '')
})

test('--version prints the package version', T, async () => {
  for (const r of await Promise.all(['--version', '-v'].map((flag) => finished([flag])))) {
    assert.equal(r.code, 0)
    assert.equal(r.stdout, `wsfrpc ${VERSION}`)
  }
})

test('verify: a good file is ok, a bad one lists each problem on its own line and exits 1', T, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wsfrpc-cli-'))
  try {
    const good = join(dir, 'good.toml')
    writeFileSync(good, 'serverURL = "ws://u:secret@example.com:7000/t"\nauth.token = "x"\n[[proxies]]\nname = "ssh"\ntype = "tcp"\nlocalPort = 22\n')
    const ok = await finished(['verify', '-c', good])
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(ok.stdout, `wsfrpc: the configuration file ${good} syntax is ok (1 proxy, server ws://example.com:7000/t)`)

    const bad = join(dir, 'bad.toml')
    writeFileSync(bad, 'serverPort = "x"\nauth.tokn = "y"\n')
    const no = await finished(['verify', '-c', bad])
    assert.equal(no.code, 1)
    assert.equal(no.stdout, '')
    const lines = no.stderr.split('\n')
    assert.match(lines[0]!, /^wsfrpc: invalid client config \(2 problems\):$/)
    assert.match(lines[1]!, /bad\.toml:1: serverPort: /)
    assert.match(lines[2]!, /bad\.toml:2: auth\.tokn: unknown key "tokn" \(did you mean "token"\?\)/)

    const missing = await finished(['verify', '-c', join(dir, 'nope.toml')])
    assert.equal(missing.code, 1)
    assert.equal(missing.stderr.split('\n').length, 1)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('command-line errors are one line on stderr: exit 2 when malformed, 1 when a value is invalid', T, async () => {
  const cases: [string[], number, RegExp][] = [
    [[], 2, /^wsfrpc: no configuration: use -c client\.toml/],
    [['--frobnicate'], 2, /^wsfrpc: Unknown option '--frobnicate' \(see wsfrpc --help\)$/],
    [['serve'], 2, /^wsfrpc: unknown command "serve"/],
    [['verify'], 2, /^wsfrpc: verify needs a configuration file/],
    [['-c', 'x.toml', '--local-port', '22'], 2, /^wsfrpc: --local-port is only for the quick modes/],
    [['tcp', '--local-port', '22'], 2, /^wsfrpc: tcp needs --server \(-s\)/],
    [['tcp', '-s', 'ws://127.0.0.1:7000', '--local-port', '22', '--log-level', 'loud'], 2, /^wsfrpc: --log-level must be/],
    [['tcp', '-s', 'ws://127.0.0.1:7000', '--local-port', 'ssh'], 1, /^wsfrpc: invalid arguments: --local-port: must be an integer from 1 to 65535, got "ssh"$/],
    [['http', '-s', '127.0.0.1', '--local-port', '80'], 1, /^wsfrpc: invalid arguments: http: an http proxy needs customDomains or subdomain$/],
  ]
  const results = await Promise.all(cases.map(([args]) => finished(args)))
  cases.forEach(([args, code, re], i) => {
    const r = results[i]!
    assert.equal(r.code, code, args.join(' '))
    assert.match(r.stderr, re, args.join(' '))
    assert.equal(r.stderr.split('\n').length, 1, r.stderr)
  })
})

test('quick mode: the ready line names the real remote port, bytes flow, SIGTERM closes cleanly with exit 0', T, async () => {
  const frps = await startFrps({ token: 'cli-token' })
  const echo = await startEcho()
  // The token comes from WSFRP_TOKEN when -t is not given.
  const r = cli(['tcp', '-s', `ws://127.0.0.1:${frps.port}`, '--local-port', String(echo.port), '--remote-port', '0', '-n', 'ssh'], { WSFRP_TOKEN: 'cli-token' })
  try {
    const m = await r.waitFor(/^\[ssh\] tcp proxy running: 127\.0\.0\.1:(\d+) ⇐ 127\.0\.0\.1:(\d+)$/)
    assert.equal(Number(m[1]), echo.port)
    const remotePort = Number(m[2])
    assert.equal(remotePort, frps.proxies.get('ssh'))
    assert.equal(await echoThrough(remotePort, 'through the cli'), 'through the cli')
    // Exactly one line for that event on the console.
    assert.equal([...r.stdout, ...r.stderr].filter((l) => l.includes('proxy running')).length, 1)
    process.kill(r.child.pid!, 'SIGTERM')
    const { code } = await r.exited
    assert.equal(code, 0)
    await frps.until(() => frps.closeCodes.length === 1)
    assert.deepEqual(frps.closeCodes, [1000])
    assert.ok(!r.stdout.join('\n').includes('cli-token'))
  } finally {
    await cleanup(r)
    await frps.close()
    await echo.close()
  }
})

test('quick mode: a wrong token exits 1 with the server message', T, async () => {
  const frps = await startFrps({ token: 'right' })
  try {
    const r = await finished(['tcp', '-s', `127.0.0.1:${frps.port}`, '-t', 'wrong', '--local-port', '22'])
    assert.equal(r.code, 1)
    assert.equal(r.stderr, `wsfrpc: login to ws://127.0.0.1:${frps.port}/~!frp failed: ${TOKEN_MISMATCH}`)
  } finally {
    await frps.close()
  }
})

test('-c FILE: runs the proxies of a config file', T, async () => {
  const frps = await startFrps({ token: 'file-token' })
  const echo = await startEcho()
  const dir = mkdtempSync(join(tmpdir(), 'wsfrpc-cli-'))
  const file = join(dir, 'client.toml')
  writeFileSync(
    file,
    [
      `serverAddr = "127.0.0.1"`,
      `serverPort = ${frps.port}`,
      `auth.token = "{{ .Envs.MY_TOKEN }}"`,
      `log.level = "warn"`,
      `[[proxies]]`,
      `name = "web"`,
      `type = "tcp"`,
      `localPort = ${echo.port}`,
    ].join('\n'),
  )
  const r = cli(['-c', file], { MY_TOKEN: 'file-token' })
  try {
    const m = await r.waitFor(/^\[web\] tcp proxy running: .* ⇐ 127\.0\.0\.1:(\d+)$/)
    assert.equal(await echoThrough(Number(m[1]), 'file'), 'file')
    // log.level = warn: nothing but the ready line.
    assert.deepEqual(r.stdout, [m[0]])
    process.kill(r.child.pid!, 'SIGINT')
    assert.equal((await r.exited).code, 0)
  } finally {
    await cleanup(r)
    await frps.close()
    await echo.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
