/**
 * Reads wsfrps/wsfrpc configuration files the way frp ≥ 0.52 does: `{{ .Envs.NAME }}` substitution
 * on the raw text first, then TOML (or JSON), then validation by the core. Every problem becomes a
 * ConfigError (`ERR_CONFIG`) whose issues carry the file name and, for TOML, the line of the key.
 */
import { readFile } from 'node:fs/promises'
import { extname } from 'node:path'
import { TomlError, parse as parseToml } from 'smol-toml'
import {
  ConfigError,
  joinConfigPath,
  validateClientConfig,
  validateServerConfig,
  type ClientConfig,
  type ConfigIssue,
  type ConfigKind,
  type ServerConfig,
} from '@wsfrp/core'

/** Environment used for `{{ .Envs.NAME }}`; `process.env` by default. */
export type ConfigEnv = Readonly<Record<string, string | undefined>>

type Format = 'toml' | 'json'

// ---------------------------------------------------------------------------------------------
// {{ .Envs.NAME }} substitution
//
// frp runs the whole file through Go's text/template with `.Envs` bound to the environment. We
// support the one form frp documents; anything else inside {{ }} is refused rather than silently
// left in the text, so a config never means something different here than in frp.
// ---------------------------------------------------------------------------------------------

const ACTION = /\{\{(.*?)\}\}/g
const ENV_REF = /^\s*\.Envs\.([A-Za-z_][A-Za-z0-9_]*)\s*$/
const TEMPLATE_COMMENT = /^\/\*.*\*\/$/

interface Rendered {
  text: string
  /** origLine[n - 1] = the line of the original file that rendered line n came from. */
  origLine: number[]
  issues: ConfigIssue[]
}

/** True when `offset` in a TOML line sits inside a `#` comment (best effort: single-line strings only). */
function inTomlComment(line: string, offset: number): boolean {
  let quote = ''
  for (let i = 0; i < offset; i++) {
    const c = line[i]
    if (quote !== '') {
      if (quote === '"' && c === '\\') i++
      else if (c === quote) quote = ''
    } else if (c === '"' || c === "'") quote = c
    else if (c === '#') return true
  }
  return false
}

function renderTemplate(text: string, env: ConfigEnv, format: Format | undefined): Rendered {
  const issues: ConfigIssue[] = []
  const origLine: number[] = []
  const lines = text.split('\n')
  const out = lines.map((line, idx) => {
    const lineNo = idx + 1
    const rendered = line.includes('{{')
      ? line.replace(ACTION, (whole: string, inner: string, offset: number) => {
          if (TEMPLATE_COMMENT.test(inner)) return ''
          const m = ENV_REF.exec(inner)
          if (m === null) {
            issues.push({
              path: '',
              line: lineNo,
              column: offset + 1,
              message: `unsupported template action ${whole}: only {{ .Envs.NAME }} is supported`,
            })
            return ''
          }
          const name = m[1] as string
          const value = Object.prototype.hasOwnProperty.call(env, name) ? env[name] : undefined
          if (value !== undefined) return value
          // A reference in a commented-out line must not stop the program; it renders as nothing.
          if (format !== 'json' && inTomlComment(line, offset)) return ''
          issues.push({
            path: '',
            line: lineNo,
            column: offset + 1,
            message: `environment variable ${name} is not set (frp would insert "<no value>"); set it, even to an empty string`,
          })
          return ''
        })
      : line
    if (line.replace(ACTION, '').includes('{{')) {
      issues.push({ path: '', line: lineNo, message: 'unclosed "{{": a template action must end with "}}" on the same line' })
    }
    // An environment value may contain newlines; keep mapping rendered lines back to this one.
    const n = rendered.split('\n').length
    for (let k = 0; k < n; k++) origLine.push(lineNo)
    return rendered
  })
  return { text: out.join('\n'), origLine, issues }
}

// ---------------------------------------------------------------------------------------------
// Where is a key written? A lenient scanner over TOML text that has already parsed successfully:
// it follows table headers, [[array]] entries, dotted keys, inline tables and arrays, and records
// the first line of every key path in the same notation as issue paths (`proxies[1].localPort`).
// ---------------------------------------------------------------------------------------------

function decodeBasicKey(raw: string): string {
  try {
    return JSON.parse(`"${raw}"`) as string
  } catch {
    return raw
  }
}

function scanTomlKeyLines(s: string): Map<string, number> {
  const found = new Map<string, number>()
  const record = (path: string, line: number): void => {
    if (path !== '' && !found.has(path)) found.set(path, line)
  }
  const arrayIndex = new Map<string, number>()
  let i = 0
  let line = 1
  let table = ''
  const peek = (o = 0): string => s[i + o] ?? ''

  const skipSpaces = (): void => {
    while (peek() === ' ' || peek() === '\t') i++
  }
  const skipToEol = (): void => {
    while (i < s.length && peek() !== '\n') i++
  }
  const skipBlank = (): void => {
    for (;;) {
      skipSpaces()
      if (peek() === '#') skipToEol()
      if (peek() === '\n') {
        line++
        i++
      } else if (peek() === '\r') i++
      else return
    }
  }
  const readQuoted = (): string => {
    const q = peek()
    if (s.startsWith(q.repeat(3), i)) {
      // Multi-line string: only its extent matters (it is a value, never a key).
      i += 3
      while (i < s.length && !s.startsWith(q.repeat(3), i)) {
        if (peek() === '\n') line++
        if (q === '"' && peek() === '\\') {
          i++
          if (peek() === '\n') line++
        }
        i++
      }
      i += 3
      while (peek() === q) i++
      return ''
    }
    i++
    const start = i
    while (i < s.length && peek() !== q && peek() !== '\n') i += q === '"' && peek() === '\\' ? 2 : 1
    const raw = s.slice(start, i)
    if (peek() === q) i++
    return q === '"' ? decodeBasicKey(raw) : raw
  }
  const readKey = (): string[] => {
    const segs: string[] = []
    for (;;) {
      skipSpaces()
      const c = peek()
      if (c === '"' || c === "'") segs.push(readQuoted())
      else {
        const start = i
        while (i < s.length && /[A-Za-z0-9_-]/.test(peek())) i++
        if (i === start) break
        segs.push(s.slice(start, i))
      }
      skipSpaces()
      if (peek() !== '.') break
      i++
    }
    return segs
  }
  const skipValue = (path: string): void => {
    const c = peek()
    if (c === '"' || c === "'") {
      readQuoted()
      return
    }
    if (c === '[') {
      i++
      for (let idx = 0; ; idx++) {
        skipBlank()
        if (i >= s.length) return
        if (peek() === ']') {
          i++
          return
        }
        const ep = joinConfigPath(path, idx)
        record(ep, line)
        skipValue(ep)
        skipBlank()
        if (peek() === ',') i++
        else {
          if (peek() === ']') i++
          return
        }
      }
    }
    if (c === '{') {
      i++
      for (;;) {
        skipBlank()
        if (i >= s.length) return
        if (peek() === '}') {
          i++
          return
        }
        const segs = readKey()
        if (segs.length === 0) return
        let kp = path
        for (const seg of segs) {
          kp = joinConfigPath(kp, seg)
          record(kp, line)
        }
        skipSpaces()
        if (peek() !== '=') return
        i++
        skipSpaces()
        skipValue(kp)
        skipBlank()
        if (peek() === ',') i++
        else {
          if (peek() === '}') i++
          return
        }
      }
    }
    while (i < s.length && !',]}#\n'.includes(peek())) i++
  }

  while (i < s.length) {
    skipBlank()
    if (i >= s.length) break
    const headerLine = line
    if (peek() === '[') {
      const isArray = peek(1) === '['
      i += isArray ? 2 : 1
      const segs = readKey()
      let p = ''
      segs.forEach((seg, k) => {
        p = joinConfigPath(p, seg)
        record(p, headerLine)
        if (isArray && k === segs.length - 1) {
          const n = (arrayIndex.get(p) ?? -1) + 1
          arrayIndex.set(p, n)
          p = joinConfigPath(p, n)
        } else {
          // A header below an array of tables extends its latest entry.
          const n = arrayIndex.get(p)
          if (n !== undefined) p = joinConfigPath(p, n)
        }
        record(p, headerLine)
      })
      table = p
      skipToEol()
      continue
    }
    const segs = readKey()
    if (segs.length > 0) {
      let kp = table
      for (const seg of segs) {
        kp = joinConfigPath(kp, seg)
        record(kp, headerLine)
      }
      skipSpaces()
      if (peek() === '=') {
        i++
        skipSpaces()
        skipValue(kp)
      }
    }
    skipToEol()
  }
  return found
}

/** Drops the last segment of an issue path: `a.b[2]` → `a.b` → `a` → ``. */
function parentPath(p: string): string {
  return p.replace(/(?:\[\d+\]|\.?(?:"(?:[^"\\]|\\.)*"|[A-Za-z0-9_-]+))$/, '')
}

function lineOf(lines: Map<string, number>, path: string): number | undefined {
  for (let p = path; p !== ''; ) {
    const l = lines.get(p)
    if (l !== undefined) return l
    const up = parentPath(p)
    if (up === p) return undefined
    p = up
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

function detectFormat(fileName: string, text: string): Format | 'yaml' {
  const ext = extname(fileName).toLowerCase()
  if (ext === '.json') return 'json'
  if (ext === '.yaml' || ext === '.yml') return 'yaml'
  if (ext === '.toml') return 'toml'
  // frp tries TOML first and falls back to JSON; a document that starts with "{" cannot be TOML.
  const head = text.trimStart()
  return head.startsWith('{') && !head.startsWith('{{') ? 'json' : 'toml'
}

function fail(kind: ConfigKind, file: string, issues: ConfigIssue[], cause?: unknown): never {
  throw new ConfigError(
    issues.map((i) => ({ ...i, file })),
    { kind, file, cause },
  )
}

function lineColAt(text: string, pos: number): { line: number; column: number } {
  const before = text.slice(0, pos)
  const line = before.split('\n').length
  return { line, column: pos - before.lastIndexOf('\n') }
}

function parseText<T>(kind: ConfigKind, text: string, fileName: string, env: ConfigEnv, validate: (raw: unknown) => T): T {
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text
  const format = detectFormat(fileName, source)
  if (format === 'yaml') {
    fail(kind, fileName, [{ path: '', message: 'YAML config files are not supported; use TOML (or JSON) with the frp >= 0.52 key names' }])
  }
  const r = renderTemplate(source, env, format)
  if (r.issues.length > 0) fail(kind, fileName, r.issues)
  const orig = (renderedLine: number): number => r.origLine[renderedLine - 1] ?? renderedLine

  let raw: unknown
  if (format === 'json') {
    try {
      raw = JSON.parse(r.text)
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err)
      const pos = /at position (\d+)/.exec(msg)
      const at = pos === null ? undefined : lineColAt(r.text, Number(pos[1]))
      const issue: ConfigIssue = { path: '', message: `JSON syntax error: ${msg.replace(/ in JSON at position \d+.*$/, '')}` }
      if (at !== undefined) {
        issue.line = orig(at.line)
        issue.column = at.column
      }
      fail(kind, fileName, [issue], err)
    }
  } else {
    try {
      raw = parseToml(r.text)
    } catch (err) {
      if (!(err instanceof TomlError)) throw err
      const first = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '')
      // Legacy frp INI files are not TOML (bare values such as `server_addr = 1.2.3.4`).
      const ini = /^\s*\[common\]\s*$/m.test(r.text)
        ? "; this looks like frp's legacy INI format, but wsfrp reads only the TOML/JSON format of frp >= 0.52"
        : ''
      fail(kind, fileName, [{ path: '', line: orig(err.line), column: err.column, message: `TOML syntax error: ${first}${ini}` }], err)
    }
  }

  try {
    return validate(raw)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    const lines = format === 'toml' ? scanTomlKeyLines(r.text) : undefined
    const issues = err.issues.map((i): ConfigIssue => {
      const l = lines === undefined || i.path === '' ? undefined : lineOf(lines, i.path)
      return l === undefined ? { ...i } : { ...i, line: orig(l) }
    })
    // Report in file order; issues without a line keep their relative order at the end.
    const order = issues.map((issue, idx) => ({ issue, idx }))
    order.sort((a, b) => (a.issue.line ?? Infinity) - (b.issue.line ?? Infinity) || a.idx - b.idx)
    fail(
      kind,
      fileName,
      order.map((o) => o.issue),
      err,
    )
  }
}

/**
 * Parses and validates a wsfrps config given as text. `fileName` is used in messages and picks the
 * format (`.json` → JSON, `.yaml` refused, otherwise TOML unless the text starts with `{`).
 *
 * @throws ConfigError (`ERR_CONFIG`) for unset `{{ .Envs.NAME }}` variables, syntax errors
 *   (file:line:column) and every validation problem (file:line of the key, for TOML).
 */
export function parseServerConfigText(text: string, fileName = 'server.toml', env: ConfigEnv = process.env): ServerConfig {
  return parseText('server', text, fileName, env, validateServerConfig)
}

/** Like {@link parseServerConfigText}, for wsfrpc. */
export function parseClientConfigText(text: string, fileName = 'client.toml', env: ConfigEnv = process.env): ClientConfig {
  return parseText('client', text, fileName, env, validateClientConfig)
}

async function readConfig(kind: ConfigKind, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as { code?: unknown }).code
    const why = typeof code === 'string' ? code : err instanceof Error ? err.message : String(err)
    fail(kind, path, [{ path: '', message: `cannot read the config file (${why})` }], err)
  }
}

/** Reads, renders, parses and validates a wsfrps config file (TOML or JSON). */
export async function loadServerConfigFile(path: string, env: ConfigEnv = process.env): Promise<ServerConfig> {
  return parseServerConfigText(await readConfig('server', path), path, env)
}

/** Reads, renders, parses and validates a wsfrpc config file (TOML or JSON). */
export async function loadClientConfigFile(path: string, env: ConfigEnv = process.env): Promise<ClientConfig> {
  return parseClientConfigText(await readConfig('client', path), path, env)
}
