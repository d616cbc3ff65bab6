import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, type ConfigIssue } from '@wsfrp/core'
import { loadClientConfigFile, loadServerConfigFile, parseClientConfigText, parseServerConfigText } from '@wsfrp/node'

const T = { timeout: 5_000 }

function configError(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`)
    assert.equal(err.code, 'ERR_CONFIG')
    return err
  }
  assert.fail('the config was accepted')
}

/** `line: path: message` for each issue, the shape the assertions below compare. */
const where = (issues: readonly ConfigIssue[]): string[] =>
  issues.map((i) => `${i.line ?? '-'}${i.column === undefined ? '' : `:${i.column}`}: ${i.path === '' ? '' : `${i.path}: `}${i.message}`)

test('unknown keys get the line they are written on: top level, [table], dotted key, 2nd [[proxies]]', T, () => {
  const text = [
    '# wsfrpc', // 1
    'serverAddr = "example.com"', // 2
    'serverPrt = 7000', // 3
    'auth.tokn = "x"', // 4
    '', // 5
    '[transport]', // 6
    'poolCont = 2', // 7
    '', // 8
    '[[proxies]]', // 9
    'name = "ssh"', // 10
    'type = "tcp"', // 11
    'localPort = 22', // 12
    'remotPort = 6000', // 13
    '', // 14
    '[[proxies]]', // 15
    'name = "web"', // 16
    'type = "http"', // 17
    'localPort = 80', // 18
    'subdomain = "web"', // 19
    'bogus = true', // 20
    'transport.useEncryptio = true', // 21
  ].join('\n')
  const err = configError(() => parseClientConfigText(text, 'client.toml', {}))
  assert.deepEqual(where(err.issues), [
    '3: serverPrt: unknown key "serverPrt" (did you mean "serverPort"?)',
    '4: auth.tokn: unknown key "tokn" (did you mean "token"?)',
    '7: transport.poolCont: unknown key "poolCont" (did you mean "poolCount"?)',
    '13: proxies[0].remotPort: unknown key "remotPort" (did you mean "remotePort"?)',
    '20: proxies[1].bogus: unknown key "bogus"',
    '21: proxies[1].transport.useEncryptio: unknown key "useEncryptio" (did you mean "useEncryption"?)',
  ])
  assert.ok(err.issues.every((i) => i.file === 'client.toml'))
  assert.match(err.message, /^invalid client config \(6 problems\):\n {2}client\.toml:3: serverPrt: unknown key "serverPrt"/)
  assert.match(err.message, /\n {2}client\.toml:20: proxies\[1\]\.bogus: unknown key "bogus"/)
})

test('keys in an [auth] table, in [proxies.x] sub-tables and in inline tables get their own lines', T, () => {
  const text = [
    '[auth]', // 1
    'method = "token"', // 2
    'tokne = "x"', // 3
    '[[proxies]]', // 4
    'name = "a"', // 5
    'type = "tcp"', // 6
    'localPort = 1', // 7
    '[[proxies]]', // 8
    'name = "b"', // 9
    'type = "tcp"', // 10
    'localPort = 2', // 11
    '[proxies.transport]', // 12
    'useCompression = "yes"', // 13
    '[proxies.loadBalancer]', // 14
    'grup = "g"', // 15
    '[log]', // 16
    'level = "loud"', // 17
    '[metadatas]', // 18
    'x = { y = 1 }', // 19
  ].join('\n')
  const err = configError(() => parseClientConfigText(text, 'c.toml', {}))
  assert.deepEqual(where(err.issues), [
    '3: auth.tokne: unknown key "tokne" (did you mean "token"?)',
    '13: proxies[1].transport.useCompression: must be true or false, got "yes"',
    '15: proxies[1].loadBalancer.grup: unknown key "grup" (did you mean "group"?)',
    '17: log.level: must be "trace", "debug", "info", "warn" or "error", got "loud"',
    '19: metadatas.x: must be a string, got a table',
  ])
})

test('a missing required key points at its [[proxies]] header', T, () => {
  const text = ['[[proxies]]', 'name = "a"', 'type = "tcp"', 'localPort = 1', '', '[[proxies]]', 'name = "b"', 'type = "tcp"'].join('\n')
  const err = configError(() => parseClientConfigText(text, 'c.toml', {}))
  assert.deepEqual(where(err.issues), ['6: proxies[1].localPort: is required: an integer from 1 to 65535'])
})

test('array elements and inline-table entries spread over lines get their own line', T, () => {
  const text = [
    'allowPorts = [', // 1
    '  { start = 2000, end = 3000 },', // 2
    '  { single = 70000 },', // 3
    '  # a comment inside the array', // 4
    '  { start = 5,', // 5
    '    end = 1 },', // 6
    ']', // 7
    'transport = { maxPoolCount = -1,', // 8
    '  wsPaths = ["/ok", "bad"] }', // 9
  ].join('\n')
  const err = configError(() => parseServerConfigText(text, 's.toml', {}))
  assert.deepEqual(where(err.issues), [
    '3: allowPorts[1].single: must be an integer from 1 to 65535, got 70000',
    '5: allowPorts[2]: start (5) must not be greater than end (1)',
    '8: transport.maxPoolCount: must be an integer >= 0, got -1',
    '9: transport.wsPaths[1]: must start with "/", got "bad"',
  ])
})

test('multi-line strings do not confuse the line finder', T, () => {
  const text = [
    'subDomainHost = """', // 1
    '[[proxies]]', // 2
    'bindPort = 1', // 3
    '"""', // 4
    "webServer.user = '''", // 5
    "x = 1'''", // 6
    'bindprt = 7000', // 7
  ].join('\n')
  const err = configError(() => parseServerConfigText(text, 's.toml', {}))
  assert.deepEqual(where(err.issues), [
    '7: bindprt: unknown key "bindprt" (did you mean "bindPort"?)',
    // (TOML drops the newline right after the opening quotes.)
    '1: subDomainHost: must be a host name or IP address, got "[[proxies]]\\nbindPort = 1\\n"',
  ].sort((a, b) => parseInt(a) - parseInt(b)))
})

test('quoted keys are matched too', T, () => {
  const text = ['[metadatas]', '"a.b" = 1', "'c d' = 'ok'"].join('\n')
  const err = configError(() => parseClientConfigText(text, 'c.toml', {}))
  assert.deepEqual(where(err.issues), ['2: metadatas."a.b": must be a string, got 1'])
})

test('legacy snake_case keys get a hint and a line; an INI file that is not TOML is named as such', T, () => {
  const toml = ['serverAddr = "x"', 'server_port = 7000', '[[proxies]]', 'name = "a"', 'type = "tcp"', 'local_port = 22'].join('\n')
  const err = configError(() => parseClientConfigText(toml, 'c.toml', {}))
  assert.deepEqual(where(err.issues), [
    '2: server_port: unknown key "server_port": this is frp\'s legacy INI name; the frp >= 0.52 TOML name is "serverPort"',
    '3: proxies[0].localPort: is required: an integer from 1 to 65535',
    '6: proxies[0].local_port: unknown key "local_port": this is frp\'s legacy INI name; the frp >= 0.52 TOML name is "localPort"',
  ])
  const ini = ['[common]', 'server_addr = 1.2.3.4', 'server_port = 7000'].join('\n')
  const e2 = configError(() => parseClientConfigText(ini, 'frpc.ini', {}))
  assert.equal(e2.issues.length, 1)
  assert.equal(e2.issues[0]?.line, 2)
  assert.match(e2.message, /^invalid client config: frpc\.ini:2:\d+: TOML syntax error: .*legacy INI format/)
})

test('TOML syntax errors carry file:line:column', T, () => {
  const err = configError(() => parseServerConfigText('bindPort = 7000\nbindAddr = = "x"\n', 'server.toml', {}))
  assert.equal(err.issues.length, 1)
  assert.equal(err.issues[0]?.line, 2)
  assert.equal(err.issues[0]?.column, 12)
  assert.match(err.message, /^invalid server config: server\.toml:2:12: TOML syntax error: /)
  assert.ok(err.cause !== undefined, 'the parser error is kept as the cause')
})

test('{{ .Envs.NAME }} is substituted before parsing, with or without spaces', T, () => {
  const text = [
    'bindPort = {{ .Envs.PORT }}',
    'auth.token = "{{.Envs.TOKEN}}"',
    'subDomainHost = "{{   .Envs.DOMAIN   }}"',
    'webServer.user = "{{ .Envs.EMPTY }}"',
  ].join('\n')
  const cfg = parseServerConfigText(text, 's.toml', { PORT: '8443', TOKEN: 't0k', DOMAIN: 'tunnel.example.com', EMPTY: '' })
  assert.equal(cfg.bindPort, 8443)
  assert.equal(cfg.auth.token, 't0k')
  assert.equal(cfg.subDomainHost, 'tunnel.example.com')
  assert.equal(cfg.webServer.user, '', 'a variable set to "" renders as ""')
})

test('an unset variable is an error with line and column (frp would insert "<no value>")', T, () => {
  const text = ['bindPort = 7000', 'auth.token = "{{ .Envs.FRP_TOKEN }}"', 'webServer.password = "{{ .Envs.PW }}"'].join('\n')
  const err = configError(() => parseServerConfigText(text, 'server.toml', { PW: 'x' }))
  assert.deepEqual(where(err.issues), [
    '2:15: environment variable FRP_TOKEN is not set (frp would insert "<no value>"); set it, even to an empty string',
  ])
  assert.match(err.message, /^invalid server config: server\.toml:2:15: environment variable FRP_TOKEN is not set/)
  // An inherited property of the env object is not a variable.
  configError(() => parseServerConfigText('auth.token = "{{ .Envs.toString }}"', 's.toml', {}))
})

test('references inside TOML comments never fail, other template actions are refused', T, () => {
  const ok = parseServerConfigText(
    ['# auth.token = "{{ .Envs.OLD_TOKEN }}"', 'bindPort = 7000 # {{ .Envs.NOPE }}', 'log.to = "/var/log/a#b.log{{/* note */}}"'].join('\n'),
    's.toml',
    {},
  )
  assert.equal(ok.bindPort, 7000)
  assert.equal(ok.log.to, '/var/log/a#b.log')
  // Inside a string, "#" is not a comment: the reference counts.
  const inString = configError(() => parseServerConfigText('log.to = "#{{ .Envs.NOPE }}"', 's.toml', {}))
  assert.match(inString.message, /environment variable NOPE is not set/)

  const err = configError(() =>
    parseServerConfigText(['a = "{{ index .Envs "X" }}"', 'b = "{{- .Envs.X }}"', 'c = "{{ .Envs.X"'].join('\n'), 's.toml', { X: '1' }),
  )
  assert.deepEqual(where(err.issues), [
    '1:6: unsupported template action {{ index .Envs "X" }}: only {{ .Envs.NAME }} is supported',
    '2:6: unsupported template action {{- .Envs.X }}: only {{ .Envs.NAME }} is supported',
    '3: unclosed "{{": a template action must end with "}}" on the same line',
  ])
})

test('a value with newlines keeps later line numbers true to the file', T, () => {
  const text = ['subDomainHost = """{{ .Envs.MULTI }}"""', 'bogus = 1'].join('\n')
  const err = configError(() => parseServerConfigText(text, 's.toml', { MULTI: 'a\nb\nc' }))
  assert.deepEqual(
    err.issues.map((i) => [i.path, i.line]),
    [
      ['bogus', 2],
      ['subDomainHost', 1],
    ].sort((a, b) => (a[1] as number) - (b[1] as number)),
  )
})

test('JSON configs are accepted (by extension or by a leading "{"), without key line numbers', T, () => {
  const json = JSON.stringify({ serverAddr: 'example.com', auth: { token: '{{ .Envs.T }}' }, proxies: [{ name: 'a', type: 'tcp', localPort: 22 }] })
  const cfg = parseClientConfigText(json, 'client.json', { T: 'secret' })
  assert.equal(cfg.serverAddr, 'example.com')
  assert.equal(cfg.auth.token, 'secret')
  assert.equal(cfg.proxies.length, 1)
  assert.equal(parseClientConfigText(`\n  ${json}`, 'client.conf', { T: 'x' }).auth.token, 'x')

  const err = configError(() => parseServerConfigText('{\n  "bindPort": 7000,\n  "bindAdr": "x"\n}', 'server.json', {}))
  assert.deepEqual(where(err.issues), ['-: bindAdr: unknown key "bindAdr" (did you mean "bindAddr"?)'])
  assert.match(err.message, /^invalid server config: server\.json: bindAdr: /)

  const syntax = configError(() => parseServerConfigText('{\n  "bindPort": 7000,\n}', 'server.json', {}))
  assert.equal(syntax.issues[0]?.line, 3)
  assert.match(syntax.message, /server\.json:3:1: JSON syntax error: /)
})

test('YAML is refused with a clear message; a UTF-8 BOM is ignored', T, () => {
  const err = configError(() => parseServerConfigText('bindPort: 7000', 'frps.yaml', {}))
  assert.match(err.message, /YAML config files are not supported/)
  assert.equal(parseServerConfigText('\uFEFFbindPort = 7001', 's.toml', {}).bindPort, 7001)
})

test('a TOML file that starts with a template action is not mistaken for JSON', T, () => {
  assert.equal(parseServerConfigText('{{ .Envs.LINE }}\nbindPort = 7002', 'frps.conf', { LINE: 'bindAddr = "127.0.0.1"' }).bindAddr, '127.0.0.1')
})

test('an empty file gives the defaults', T, () => {
  assert.equal(parseServerConfigText('', 's.toml', {}).bindPort, 7000)
  assert.deepEqual(parseClientConfigText('# nothing\n', 'c.toml', {}).proxies, [])
})

test('load*ConfigFile read files, use the given env, and report unreadable files as ERR_CONFIG', T, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wsfrp-config-'))
  try {
    const s = join(dir, 'server.toml')
    await writeFile(s, 'bindPort = {{ .Envs.P }}\n')
    assert.equal((await loadServerConfigFile(s, { P: '7100' })).bindPort, 7100)
    const c = join(dir, 'client.json')
    await writeFile(c, '{"serverPort": 7100}')
    assert.equal((await loadClientConfigFile(c, {})).serverPort, 7100)
    const bad = join(dir, 'bad.toml')
    await writeFile(bad, 'bindPort = 7000\nbind_addr = "x"\n')
    await assert.rejects(loadServerConfigFile(bad, {}), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.equal(err.issues[0]?.file, bad)
      assert.equal(err.issues[0]?.line, 2)
      return true
    })
    await assert.rejects(loadClientConfigFile(join(dir, 'missing.toml'), {}), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.match(err.message, /missing\.toml: cannot read the config file \(ENOENT\)/)
      return true
    })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
