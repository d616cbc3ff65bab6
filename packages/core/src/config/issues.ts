import { WsfrpError, isWsfrpError } from '../errors.js'

/**
 * One problem found in a configuration.
 *
 * `path` is the dotted path of the key (`proxies[1].localPort`, `auth.token`); it is `''` for
 * problems that belong to no key (a TOML syntax error, an unset environment variable). `file` and
 * `line` (1-based) are filled in by file loaders when they can tell where the key is written.
 */
export interface ConfigIssue {
  path: string
  message: string
  file?: string
  line?: number
  /** 1-based column, for syntax errors. */
  column?: number
}

/** Which configuration a {@link ConfigError} is about. */
export type ConfigKind = 'server' | 'client'

/** Formats one issue as `file:line[:column]: path: message` (parts that are unknown are left out). */
export function formatConfigIssue(issue: ConfigIssue): string {
  let where = ''
  const col = issue.line !== undefined && issue.column !== undefined ? `:${issue.column}` : ''
  if (issue.file !== undefined) where = issue.line !== undefined ? `${issue.file}:${issue.line}${col}: ` : `${issue.file}: `
  else if (issue.line !== undefined) where = `line ${issue.line}${col}: `
  return `${where}${issue.path === '' ? '' : `${issue.path}: `}${issue.message}`
}

function headline(kind: ConfigKind | undefined, file: string | undefined): string {
  const what = kind === undefined ? 'config' : `${kind} config`
  return file === undefined ? `invalid ${what}` : `invalid ${what} ${file}`
}

/**
 * A configuration was rejected. It is a `WsfrpError` with code `ERR_CONFIG`; `issues` lists every
 * problem found (validation does not stop at the first one), and the message repeats them, one per
 * line, so that printing `err.message` is enough for a user.
 */
export class ConfigError extends WsfrpError {
  /** Every problem, in the order they were found. Never empty. */
  readonly issues: readonly ConfigIssue[]
  /** The file the issues are about, when a loader read one. */
  readonly file: string | undefined

  constructor(issues: readonly ConfigIssue[], options: { kind?: ConfigKind; file?: string; cause?: unknown } = {}) {
    const list = issues.length > 0 ? issues : [{ path: '', message: 'unknown problem' }]
    // Each line already names its file; repeating the file in the headline would only add noise.
    const head = headline(options.kind, list.some((i) => i.file !== undefined) ? undefined : options.file)
    const message =
      list.length === 1
        ? `${head}: ${formatConfigIssue(list[0] as ConfigIssue)}`
        : `${head} (${list.length} problems):\n${list.map((i) => `  ${formatConfigIssue(i)}`).join('\n')}`
    super('ERR_CONFIG', message, options.cause === undefined ? undefined : { cause: options.cause })
    this.issues = list
    this.file = options.file
  }

  // WsfrpError's brand check would make every WsfrpError pass `instanceof ConfigError`.
  static override [Symbol.hasInstance](value: unknown): boolean {
    return isWsfrpError(value, 'ERR_CONFIG') && Array.isArray((value as unknown as { issues?: unknown }).issues)
  }
}

const BARE_KEY = /^[A-Za-z0-9_-]+$/

/**
 * Appends a key to a dotted config path the way issue paths are written: bare keys as they are,
 * other keys quoted (`metadatas."a.b"`), array indexes in brackets (`proxies[2]`).
 */
export function joinConfigPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`
  const seg = BARE_KEY.test(key) ? key : JSON.stringify(key)
  return parent === '' ? seg : `${parent}.${seg}`
}
