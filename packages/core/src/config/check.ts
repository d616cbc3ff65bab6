/**
 * Small building blocks shared by the server and client validators. Every reader records a problem
 * in the context and returns the default instead of throwing, so that one pass reports everything.
 */
import { joinConfigPath, type ConfigIssue } from './issues.js'

export type Table = Record<string, unknown>

/** Collects issues during one validation pass. */
export class Ctx {
  readonly issues: ConfigIssue[] = []
  add(path: string, message: string): void {
    this.issues.push({ path, message })
  }
}

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k)

/** True for `{}`-like objects (what TOML tables and JSON objects parse to), false for arrays, dates, class instances. */
export function isTable(v: unknown): v is Table {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const proto: unknown = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

/** Reads an own property only: a key named `constructor` or `__proto__` in a file must never reach the prototype. */
export function own(t: Table, key: string): unknown {
  return hasOwn(t, key) ? t[key] : undefined
}

/**
 * How a value is shown after "got" in a message. Secrets are described by type only, so that an
 * error message never carries a token.
 */
export function describeValue(v: unknown, secret = false): string {
  if (v === null) return 'null'
  if (typeof v === 'string') {
    if (secret) return 'a string'
    return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v)
  }
  if (typeof v === 'number') {
    if (secret) return 'a number'
    return Number.isNaN(v) ? 'nan' : String(v)
  }
  if (typeof v === 'boolean') return secret ? 'a boolean' : String(v)
  if (typeof v === 'bigint') return secret ? 'a number' : String(v)
  if (Array.isArray(v)) return 'an array'
  if (v instanceof Date) return 'a date'
  if (isTable(v)) return 'a table'
  return typeof v
}

/** Edit distance where swapping two neighbouring letters counts as one edit (a common typo). */
function editDistance(a: string, b: string): number {
  const d: number[][] = []
  for (let i = 0; i <= a.length; i++) {
    const row = new Array<number>(b.length + 1).fill(0)
    row[0] = i
    d.push(row)
  }
  const at = (i: number, j: number): number => (d[i] as number[])[j] as number
  for (let j = 0; j <= b.length; j++) (d[0] as number[])[j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1)
      ;(d[i] as number[])[j] = v
    }
  }
  return at(a.length, b.length)
}

/** The known key closest to `key` (case-insensitive), when it is close enough to be a typo. */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  const k = key.toLowerCase()
  let best: string | undefined
  let bestDist = Infinity
  for (const cand of known) {
    const d = editDistance(k, cand.toLowerCase())
    if (d < bestDist) {
      best = cand
      bestDist = d
    }
  }
  // Roughly one typo per four letters; short keys get at most one.
  const limit = Math.max(1, Math.floor(k.length / 4))
  return bestDist <= limit ? best : undefined
}

/**
 * Hints for keys that are not ours: frp's legacy INI names, and frp settings wsfrp does not
 * implement. Both maps are keyed by the path relative to the scope root (the top of the file, or
 * one `[[proxies]]` entry), e.g. `transport.tcpMux`.
 */
export interface KeyHints {
  /** INI name → the frp ≥ 0.52 name (relative path). An empty value means "no equivalent". */
  legacy: Readonly<Record<string, string>>
  /** frp ≥ 0.52 name → why wsfrp rejects it (empty: "not supported yet"). */
  unsupported: Readonly<Record<string, string>>
}

function snakeToCamel(s: string): string {
  return s.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase())
}

function unknownKeyMessage(key: string, rel: string, known: readonly string[], hints: KeyHints): string {
  const base = `unknown key "${key}"`
  if (hasOwn(hints.unsupported, rel)) {
    const why = hints.unsupported[rel] as string
    return `${base}: an frp setting that wsfrp does not support${why === '' ? ' yet' : ` (${why})`}`
  }
  const relParent = rel.includes('.') ? rel.slice(0, rel.lastIndexOf('.') + 1) : ''
  if (rel === 'common') return `${base}: this is frp's legacy INI [common] section; frp >= 0.52 TOML puts its keys at the top level`
  if (hasOwn(hints.legacy, key)) {
    return `${base}: this is frp's legacy INI name; the frp >= 0.52 TOML name is "${hints.legacy[key] as string}"`
  }
  // INI spread maps over prefixed keys; TOML nests them.
  if (key.startsWith('meta_') && key.length > 5) {
    return `${base}: this is frp's legacy INI metadata; the frp >= 0.52 TOML form is metadatas.${key.slice(5)}`
  }
  if (key.startsWith('header_') && key.length > 7) {
    return `${base}: this is frp's legacy INI header; the frp >= 0.52 TOML form is requestHeaders.set.${key.slice(7)}`
  }
  if (/^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$/.test(key)) {
    const camel = snakeToCamel(key).toLowerCase()
    const match = known.find((k) => k.toLowerCase() === camel)
    if (match !== undefined) return `${base}: this is frp's legacy INI name; the frp >= 0.52 TOML name is "${relParent}${match}"`
    return `${base}: looks like frp's legacy INI snake_case; frp >= 0.52 TOML keys are camelCase`
  }
  const near = closestKey(key, known)
  return near === undefined ? base : `${base} (did you mean "${near}"?)`
}

/**
 * Reads a table-valued key. Missing → `{}` (defaults apply). Not a table → an issue and `undefined`
 * (the caller then uses defaults without reporting every field again). Unknown keys are reported.
 */
export function readTable(
  ctx: Ctx,
  value: unknown,
  path: string,
  rel: string,
  known: readonly string[],
  hints: KeyHints,
): Table | undefined {
  if (value === undefined) return {}
  if (!isTable(value)) {
    ctx.add(path, `must be a table, got ${describeValue(value)}`)
    return undefined
  }
  reportUnknownKeys(ctx, value, path, rel, known, hints)
  return value
}

/**
 * `readTable` for the key `key` of `parent` (which may be undefined when the parent was invalid).
 * `parentRel` is the parent's path relative to the scope root, for the hint maps.
 */
export function readSubTable(
  ctx: Ctx,
  parent: Table | undefined,
  key: string,
  parentPath: string,
  parentRel: string,
  known: readonly string[],
  hints: KeyHints,
): Table | undefined {
  if (parent === undefined) return undefined
  const rel = parentRel === '' ? key : `${parentRel}.${key}`
  return readTable(ctx, own(parent, key), joinConfigPath(parentPath, key), rel, known, hints)
}

/** Reports every key of a table as unknown (used when the shape cannot be checked field by field). */
export function reportUnknownKeys(
  ctx: Ctx,
  t: Table,
  path: string,
  rel: string,
  known: readonly string[],
  hints: KeyHints,
  extra?: (key: string) => string | undefined,
): void {
  for (const key of Object.keys(t)) {
    if (known.includes(key)) continue
    const keyRel = rel === '' ? key : `${rel}.${key}`
    const special = extra?.(key)
    ctx.add(joinConfigPath(path, key), special ?? unknownKeyMessage(key, keyRel, known, hints))
  }
}

// ---- scalar readers: `t` may be undefined (the parent was not a table); then the default is returned.

export interface StringOpts {
  /** The value is a secret: messages describe its type, never its content. */
  secret?: boolean
  nonEmpty?: boolean
  /** Extra check on a string value; returns the problem ("must …") or undefined. */
  check?: (s: string) => string | undefined
}

export function readString(ctx: Ctx, t: Table | undefined, key: string, path: string, def: string, opts: StringOpts = {}): string {
  if (t === undefined) return def
  const v = own(t, key)
  const p = joinConfigPath(path, key)
  if (v === undefined) return def
  if (typeof v !== 'string') {
    ctx.add(p, `must be a string, got ${describeValue(v, opts.secret)}`)
    return def
  }
  if (opts.nonEmpty === true && v === '') {
    ctx.add(p, 'must not be empty')
    return def
  }
  const problem = opts.check?.(v)
  if (problem !== undefined) {
    ctx.add(p, `${problem}, got ${describeValue(v, opts.secret)}`)
    return def
  }
  return v
}

export interface IntOpts {
  min: number
  max?: number
  /** -1 is also accepted and means "disabled". */
  minusOneDisables?: boolean
  /** Unit shown in the message, e.g. "seconds". */
  unit?: string
}

export function describeInt(opts: IntOpts): string {
  const range = opts.max === undefined ? `an integer >= ${opts.min}` : `an integer from ${opts.min} to ${opts.max}`
  const unit = opts.unit === undefined ? '' : ` (${opts.unit})`
  return opts.minusOneDisables === true ? `-1 (disabled) or ${range}${unit}` : `${range}${unit}`
}

export function checkInt(v: unknown, opts: IntOpts): boolean {
  if (typeof v !== 'number' || !Number.isInteger(v)) return false
  if (opts.minusOneDisables === true && v === -1) return true
  return v >= opts.min && (opts.max === undefined || v <= opts.max)
}

export function readInt(ctx: Ctx, t: Table | undefined, key: string, path: string, def: number, opts: IntOpts): number {
  if (t === undefined) return def
  const v = own(t, key)
  if (v === undefined) return def
  if (!checkInt(v, opts)) {
    ctx.add(joinConfigPath(path, key), `must be ${describeInt(opts)}, got ${describeValue(v)}`)
    return def
  }
  return v as number
}

/** Like readInt, but the key must be present. Returns undefined when it is missing or invalid. */
export function requireInt(ctx: Ctx, t: Table | undefined, key: string, path: string, opts: IntOpts): number | undefined {
  if (t === undefined) return undefined
  const v = own(t, key)
  if (v === undefined) {
    ctx.add(joinConfigPath(path, key), `is required: ${describeInt(opts)}`)
    return undefined
  }
  if (!checkInt(v, opts)) {
    ctx.add(joinConfigPath(path, key), `must be ${describeInt(opts)}, got ${describeValue(v)}`)
    return undefined
  }
  return v as number
}

export function readBool(ctx: Ctx, t: Table | undefined, key: string, path: string, def: boolean): boolean {
  if (t === undefined) return def
  const v = own(t, key)
  if (v === undefined) return def
  if (typeof v !== 'boolean') {
    ctx.add(joinConfigPath(path, key), `must be true or false, got ${describeValue(v)}`)
    return def
  }
  return v
}

const quoteList = (xs: readonly string[]): string => {
  const q = xs.map((x) => `"${x}"`)
  return q.length <= 2 ? q.join(' or ') : `${q.slice(0, -1).join(', ')} or ${q[q.length - 1] as string}`
}

/**
 * Reads one of a fixed set of strings. `rejected` maps known-but-refused values to the reason given
 * instead of the generic "must be one of".
 */
export function readEnum<T extends string>(
  ctx: Ctx,
  t: Table | undefined,
  key: string,
  path: string,
  def: T,
  allowed: readonly T[],
  rejected: Readonly<Record<string, string>> = {},
): T {
  if (t === undefined) return def
  const v = own(t, key)
  if (v === undefined) return def
  const p = joinConfigPath(path, key)
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T
  if (typeof v === 'string' && hasOwn(rejected, v)) {
    ctx.add(p, rejected[v] as string)
    return def
  }
  ctx.add(p, `must be ${quoteList(allowed)}, got ${describeValue(v)}`)
  return def
}

export { quoteList }

/** Reads an array of strings; `check` validates each element (problem text or undefined). */
export function readStringArray(
  ctx: Ctx,
  t: Table | undefined,
  key: string,
  path: string,
  check?: (s: string) => string | undefined,
): string[] {
  if (t === undefined) return []
  const v = own(t, key)
  if (v === undefined) return []
  const p = joinConfigPath(path, key)
  if (!Array.isArray(v)) {
    ctx.add(p, `must be an array of strings, got ${describeValue(v)}`)
    return []
  }
  const out: string[] = []
  v.forEach((item: unknown, i) => {
    const ip = joinConfigPath(p, i)
    if (typeof item !== 'string') {
      ctx.add(ip, `must be a string, got ${describeValue(item)}`)
      return
    }
    const problem = check?.(item)
    if (problem !== undefined) {
      ctx.add(ip, `${problem}, got ${describeValue(item)}`)
      return
    }
    out.push(item)
  })
  return out
}

/** Reads a table of string values (frp's `map[string]string`, e.g. `metadatas`). */
export function readStringMap(
  ctx: Ctx,
  t: Table | undefined,
  key: string,
  path: string,
  checkKey?: (k: string) => string | undefined,
  checkValue?: (v: string) => string | undefined,
): Record<string, string> {
  const out: Record<string, string> = {}
  if (t === undefined) return out
  const v = own(t, key)
  if (v === undefined) return out
  const p = joinConfigPath(path, key)
  if (!isTable(v)) {
    ctx.add(p, `must be a table of strings, got ${describeValue(v)}`)
    return out
  }
  for (const k of Object.keys(v)) {
    const ip = joinConfigPath(p, k)
    const item = v[k]
    const keyProblem = checkKey?.(k)
    if (keyProblem !== undefined) {
      ctx.add(ip, keyProblem)
      continue
    }
    if (typeof item !== 'string') {
      ctx.add(ip, `must be a string, got ${describeValue(item)}`)
      continue
    }
    const problem = checkValue?.(item)
    if (problem !== undefined) {
      ctx.add(ip, `${problem}, got ${describeValue(item)}`)
      continue
    }
    // defineProperty: a key such as "__proto__" must stay a plain entry.
    Object.defineProperty(out, k, { value: item, enumerable: true, writable: true, configurable: true })
  }
  return out
}
