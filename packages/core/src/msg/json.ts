/**
 * JSON bodies the way Go's encoding/json writes and reads frp's structs (golib `msg/json/pack.go`
 * calls `json.Marshal` / `json.Unmarshal`).
 *
 * Writing: struct field order, `omitempty` (zero values left out), map keys sorted, `<` `>` `&`
 * U+2028 U+2029 escaped as `\u003c` … (Go's default HTML-safe escaping), no whitespace.
 * Reading: unknown keys ignored, exact key match preferred and a case-insensitive one accepted,
 * `null` leaves a field unset, and a value of the wrong JSON type is an error (Go's
 * `UnmarshalTypeError`, on which golib fails the read and frp drops the connection).
 */
import { WsfrpError } from '../errors.js'
import type { FieldKind, Schema } from './schema.js'

/** Go int64 bounds. Larger JSON integers fail in Go with an overflow error. */
const INT64_LIMIT = 2 ** 63

/** A field value of the wrong type; `what` is what was expected. */
function invalid(path: string, what: string): WsfrpError {
  return new WsfrpError('ERR_MSG_PROTOCOL', `frp message field ${path}: expected ${what}`)
}

const HTML_UNSAFE = /[<>&\u2028\u2029]/g

/** A JSON string literal escaped like Go's encoding/json with HTML escaping on (its default). */
export function goQuote(s: string): string {
  // JSON.stringify already escapes `"`, `\` and control characters exactly as Go >= 1.22 does;
  // Go additionally escapes these five for HTML safety.
  return JSON.stringify(s).replace(HTML_UNSAFE, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
}

/** Orders strings by their UTF-8 bytes (= by code point), as Go sorts map keys. */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    // Surrogates (0xD800–0xDFFF) encode code points above 0xFFFF, which sort after every BMP
    // character, while UTF-16 order would put them before 0xE000–0xFFFF.
    const xs = x >= 0xd800 && x <= 0xdfff
    const ys = y >= 0xd800 && y <= 0xdfff
    if (xs !== ys) return xs ? 1 : -1
    return x - y
  }
  return a.length - b.length
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Checks one field value against its kind, both ways in one place so that reading and writing
 * agree on what is valid: with `enc` it returns the value as JSON text, else the value as read
 * (JSON null inside maps and lists becomes Go's zero value there; in writing it is an error).
 */
function convert(kind: FieldKind, v: unknown, path: string, enc: boolean): unknown {
  switch (kind) {
    case 's':
      if (typeof v !== 'string') throw invalid(path, 'a string')
      return enc ? goQuote(v) : v
    case 'b':
      if (typeof v !== 'boolean') throw invalid(path, 'a boolean')
      return enc ? String(v) : v
    case 'i':
      // Writing only sends what a double holds exactly; reading takes what fits Go's int64.
      if (typeof v !== 'number' || !(enc ? Number.isSafeInteger(v) : Number.isInteger(v) && Math.abs(v) < INT64_LIMIT)) {
        throw invalid(path, enc ? 'a safe integer' : 'an int64')
      }
      return enc ? String(v) : v
    case 'u':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff) throw invalid(path, 'an integer 0…65535')
      return enc ? String(v) : v
    case 'm': {
      if (!isPlainObject(v)) throw invalid(path, 'an object of strings')
      const out: Record<string, string> = {}
      const parts: string[] = []
      for (const k of enc ? Object.keys(v).sort(compareCodePoints) : Object.keys(v)) {
        const x = v[k]
        if (typeof x !== 'string' && (enc || x !== null)) throw invalid(`${path}.${k}`, 'a string')
        if (enc) parts.push(goQuote(k) + ':' + goQuote(x as string))
        // defineProperty: a key named "__proto__" must become data, not a prototype change.
        else Object.defineProperty(out, k, { value: x ?? '', enumerable: true, writable: true, configurable: true })
      }
      return enc ? '{' + parts.join(',') + '}' : out
    }
    case 'a':
    default: {
      if (typeof kind === 'object' && '_object' in kind) {
        if (!isPlainObject(v)) throw invalid(path, 'an object')
        return (enc ? encodeObject : decodeObject)(kind._object, v, path)
      }
      if (!Array.isArray(v)) throw invalid(path, kind === 'a' ? 'an array of strings' : 'an array of objects')
      const items = v.map((x: unknown, i): unknown => {
        const p = `${path}[${i}]`
        if (kind === 'a') {
          if (typeof x !== 'string' && (enc || x !== null)) throw invalid(p, 'a string')
          return enc ? goQuote(x as string) : (x ?? '')
        }
        if (x === null && !enc) return {}
        if (!isPlainObject(x)) throw invalid(p, 'an object')
        return (enc ? encodeObject : decodeObject)(kind._array, x, p)
      })
      return enc ? '[' + items.join(',') + ']' : items
    }
  }
}

/** Encodes `obj` as a JSON object with the schema's fields in order; other properties are ignored. */
export function encodeObject(schema: Schema, obj: Readonly<Record<string, unknown>>, path: string): string {
  const always = schema._always
  let out = ''
  for (const { _name: name, _kind: kind } of schema._fields) {
    let v = obj[name]
    if (v === undefined || v === null) {
      if (!always) continue
      v = kind === 's' ? '' : kind === 'b' ? false : 0
    }
    const text = convert(kind, v, `${path}.${name}`, true) as string
    // omitempty leaves out zero values: "", false, 0, empty maps and slices. Go never omits a
    // struct-valued field; we only write one when the caller set it, so a 0.44-era Login stays
    // byte-identical to frpc 0.44's (wire doc §14).
    if (!always && (text === '""' || text === 'false' || text === '0' || text === '[]' || (text === '{}' && kind === 'm'))) continue
    out += `,"${name}":${text}`
  }
  return '{' + out.slice(1) + '}'
}

/** Picks the schema's fields out of a parsed JSON object, checking their JSON types. */
export function decodeObject(schema: Schema, raw: Readonly<Record<string, unknown>>, path: string): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(raw)) {
    // Unknown fields are ignored, as in Go.
    const field = schema._byName.get(key) ?? schema._byLowerName.get(key.toLowerCase())
    const value = raw[key]
    // Go leaves a field untouched on JSON null; an earlier duplicate key keeps its value.
    if (field !== undefined && value !== null) out[field._name] = convert(field._kind, value, `${path}.${field._name}`, false)
  }
  return out
}

/** `JSON.parse` that only ever fails with a typed error. */
export function parseJsonObject(text: string, what: string): Record<string, unknown> {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new WsfrpError('ERR_MSG_PROTOCOL', `${what}: body is not valid JSON`, { cause: err })
  }
  if (!isPlainObject(parsed)) throw new WsfrpError('ERR_MSG_PROTOCOL', `${what}: body is not a JSON object`)
  return parsed
}
