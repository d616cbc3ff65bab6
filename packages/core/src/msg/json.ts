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
import type { FieldKind, FieldSpec, Schema } from './schema.js'

/** Go int64 bounds. Larger JSON integers fail in Go with an overflow error. */
const INT64_LIMIT = 2 ** 63

function invalid(path: string, what: string): WsfrpError {
  return new WsfrpError('ERR_MSG_PROTOCOL', `frp message field ${path}: ${what}`)
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

/** Encodes one value; `undefined` means "omit" (omitempty on a zero value). */
function encodeValue(field: FieldSpec, value: unknown, path: string): string | undefined {
  const kind = field.kind
  if (value === undefined || value === null) {
    if (!field.always) return undefined
    value = kind === 'string' ? '' : kind === 'bool' ? false : 0
  }
  switch (kind) {
    case 'string':
      if (typeof value !== 'string') throw invalid(path, 'expected a string')
      return value === '' && !field.always ? undefined : goQuote(value)
    case 'bool':
      if (typeof value !== 'boolean') throw invalid(path, 'expected a boolean')
      return value ? 'true' : field.always ? 'false' : undefined
    case 'int':
    case 'uint16':
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalid(path, 'expected a safe integer')
      if (kind === 'uint16' && (value < 0 || value > 0xffff)) throw invalid(path, 'expected an integer 0…65535')
      return value === 0 && !field.always ? undefined : String(value)
    case 'stringMap': {
      if (!isPlainObject(value)) throw invalid(path, 'expected an object of strings')
      const keys = Object.keys(value).sort(compareCodePoints)
      if (keys.length === 0) return undefined
      const parts: string[] = []
      for (const k of keys) {
        const v = value[k]
        if (typeof v !== 'string') throw invalid(`${path}.${k}`, 'expected a string')
        parts.push(goQuote(k) + ':' + goQuote(v))
      }
      return '{' + parts.join(',') + '}'
    }
    case 'stringArray': {
      if (!Array.isArray(value)) throw invalid(path, 'expected an array of strings')
      if (value.length === 0) return undefined
      const parts: string[] = []
      for (let i = 0; i < value.length; i++) {
        const v: unknown = value[i]
        if (typeof v !== 'string') throw invalid(`${path}[${i}]`, 'expected a string')
        parts.push(goQuote(v))
      }
      return '[' + parts.join(',') + ']'
    }
    default:
      if ('object' in kind) {
        // Go never omits a struct-valued field, even with omitempty; we only write it when the
        // caller set it, so a 0.44-era Login stays byte-identical to frpc 0.44's (wire doc §14).
        if (!isPlainObject(value)) throw invalid(path, 'expected an object')
        return encodeObject(kind.object, value, path)
      }
      if (!Array.isArray(value)) throw invalid(path, 'expected an array of objects')
      if (value.length === 0) return undefined
      return '[' + value.map((v: unknown, i) => {
        if (!isPlainObject(v)) throw invalid(`${path}[${i}]`, 'expected an object')
        return encodeObject(kind.array, v, `${path}[${i}]`)
      }).join(',') + ']'
  }
}

/** Encodes `obj` as a JSON object with the schema's fields in order; other properties are ignored. */
export function encodeObject(schema: Schema, obj: Readonly<Record<string, unknown>>, path: string): string {
  let out = '{'
  let first = true
  for (const field of schema.fields) {
    const enc = encodeValue(field, obj[field.name], `${path}.${field.name}`)
    if (enc === undefined) continue
    out += (first ? '"' : ',"') + field.name + '":' + enc
    first = false
  }
  return out + '}'
}

function decodeValue(kind: FieldKind, value: unknown, path: string): unknown {
  switch (kind) {
    case 'string':
      if (typeof value !== 'string') throw invalid(path, 'expected a string')
      return value
    case 'bool':
      if (typeof value !== 'boolean') throw invalid(path, 'expected a boolean')
      return value
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value) || Math.abs(value) >= INT64_LIMIT) {
        throw invalid(path, 'expected an int64')
      }
      return value
    case 'uint16':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffff) {
        throw invalid(path, 'expected a uint16')
      }
      return value
    case 'stringMap': {
      if (!isPlainObject(value)) throw invalid(path, 'expected an object of strings')
      const out: Record<string, string> = {}
      for (const k of Object.keys(value)) {
        const v = value[k]
        // Go decodes a JSON null map value to the zero string.
        if (v !== null && typeof v !== 'string') throw invalid(`${path}.${k}`, 'expected a string')
        // defineProperty: a key named "__proto__" must become data, not a prototype change.
        Object.defineProperty(out, k, { value: v ?? '', enumerable: true, writable: true, configurable: true })
      }
      return out
    }
    case 'stringArray': {
      if (!Array.isArray(value)) throw invalid(path, 'expected an array of strings')
      return value.map((v: unknown, i) => {
        if (v !== null && typeof v !== 'string') throw invalid(`${path}[${i}]`, 'expected a string')
        return v ?? ''
      })
    }
    default:
      if ('object' in kind) {
        if (!isPlainObject(value)) throw invalid(path, 'expected an object')
        return decodeObject(kind.object, value, path)
      }
      if (!Array.isArray(value)) throw invalid(path, 'expected an array of objects')
      return value.map((v: unknown, i) => {
        if (v === null) return {}
        if (!isPlainObject(v)) throw invalid(`${path}[${i}]`, 'expected an object')
        return decodeObject(kind.array, v, `${path}[${i}]`)
      })
  }
}

/** Picks the schema's fields out of a parsed JSON object, checking their JSON types. */
export function decodeObject(schema: Schema, raw: Readonly<Record<string, unknown>>, path: string): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(raw)) {
    const field = schema.byName.get(key) ?? schema.byLowerName.get(key.toLowerCase())
    if (field === undefined) continue // unknown fields are ignored, as in Go
    const value = raw[key]
    // Go leaves a field untouched on JSON null; an earlier duplicate key keeps its value.
    if (value === null) continue
    out[field.name] = decodeValue(field.kind, value, `${path}.${field.name}`)
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
