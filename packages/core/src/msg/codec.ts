/**
 * frp v1 message framing (golib `msg/json/pack.go`, `process.go`; wire doc §5.1):
 *
 *     type: 1 byte ‖ length: int64 big-endian (8 bytes) ‖ JSON body (length bytes)
 *
 * The reader rejects an unknown type byte, a negative length and a length above the maximum
 * (golib `defaultMaxMsgLength` = 10,240; frp never changes it).
 */
import { WsfrpError } from '../errors.js'
import { decodeObject, encodeObject, parseJsonObject } from './json.js'
import { MESSAGE_SCHEMAS } from './schema.js'
import { MESSAGE_TYPE_BYTES, messageTypeOf, type Message, type MessageType } from './types.js'

/** Bytes before the JSON body: 1 type byte + 8 length bytes. */
export const MESSAGE_HEADER_SIZE = 9

/**
 * Default largest JSON body, in bytes, that is read or written: 10,240, golib's
 * `defaultMaxMsgLength` (`golib@c3ed68f:msg/json/msg.go:21`). A larger body from frp would be
 * refused by frp itself, so raising this only matters between two wsfrp peers.
 */
export const DEFAULT_MAX_MESSAGE_SIZE = 10_240

/** Upper bound accepted for `maxMessageSize` (16 MiB): the reader allocates a body of up to this size. */
export const MAX_MESSAGE_SIZE_LIMIT = 16 * 1024 * 1024

export interface MessageCodecOptions {
  /**
   * Largest JSON body in bytes, enforced on read and on write (`ERR_MSG_TOO_LARGE`).
   * Default {@link DEFAULT_MAX_MESSAGE_SIZE} (10,240). Must be an integer 2 … 16 MiB.
   */
  maxMessageSize?: number
}

/** Validates and returns the effective maximum body size. */
export function resolveMaxMessageSize(opts?: MessageCodecOptions): number {
  const max = opts?.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE
  if (!Number.isInteger(max) || max < 2 || max > MAX_MESSAGE_SIZE_LIMIT) {
    throw new WsfrpError('ERR_CONFIG', `maxMessageSize must be an integer 2…${MAX_MESSAGE_SIZE_LIMIT}, got ${max}`)
  }
  return max
}

const encoder = new TextEncoder()
// fatal: false because Go's decoder turns invalid UTF-8 inside strings into U+FFFD instead of
// failing; ignoreBOM: true keeps a BOM in the text so that JSON.parse rejects it, as Go does.
const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true })

/** The JSON body of a message exactly as frp would write it (see `json.ts`). */
export function encodeMessageBody(msg: Message): string {
  // hasOwn: a type such as "toString" must not find Object.prototype's members.
  if (typeof msg !== 'object' || msg === null || !Object.hasOwn(MESSAGE_SCHEMAS, msg.type)) {
    throw new WsfrpError('ERR_MSG_PROTOCOL', `unknown frp message type ${String((msg as { type?: unknown } | null)?.type)}`)
  }
  return encodeObject(MESSAGE_SCHEMAS[msg.type], msg as unknown as Record<string, unknown>, msg.type)
}

/**
 * Encodes one framed message. Fields are written in frp's struct order with Go's `omitempty`, so
 * the bytes equal what frp itself would send. Throws `ERR_MSG_TOO_LARGE` when the JSON body
 * exceeds `maxMessageSize`, `ERR_MSG_PROTOCOL` when a field has the wrong JS type.
 */
export function encodeMessage(msg: Message, opts?: MessageCodecOptions): Uint8Array {
  const max = resolveMaxMessageSize(opts)
  const body = encoder.encode(encodeMessageBody(msg))
  if (body.length > max) {
    throw new WsfrpError('ERR_MSG_TOO_LARGE', `frp ${msg.type} body of ${body.length} bytes exceeds ${max}`)
  }
  const out = new Uint8Array(MESSAGE_HEADER_SIZE + body.length)
  out[0] = MESSAGE_TYPE_BYTES[msg.type]
  // int64 big-endian; the high 32 bits are 0 because body.length <= 16 MiB.
  const len = body.length
  out[5] = len >>> 24
  out[6] = (len >>> 16) & 0xff
  out[7] = (len >>> 8) & 0xff
  out[8] = len & 0xff
  out.set(body, MESSAGE_HEADER_SIZE)
  return out
}

/**
 * The message type of a type byte; throws `ERR_MSG_PROTOCOL` for a byte frp does not define
 * (frp drops the connection then: golib `msg/json/process.go`).
 */
export function checkTypeByte(typeByte: number): MessageType {
  const type = messageTypeOf(typeByte)
  if (type === undefined) {
    throw new WsfrpError('ERR_MSG_PROTOCOL', `unknown frp message type byte 0x${typeByte.toString(16).padStart(2, '0')}`)
  }
  return type
}

/**
 * Reads the int64 big-endian body length at `header[off+1 … off+8]` and checks it against `max`.
 * Returns the length as a number.
 */
export function readBodyLength(header: Uint8Array, off: number, max: number): number {
  const hi = ((header[off + 1]! << 24) | (header[off + 2]! << 16) | (header[off + 3]! << 8) | header[off + 4]!) >>> 0
  const lo = ((header[off + 5]! << 24) | (header[off + 6]! << 16) | (header[off + 7]! << 8) | header[off + 8]!) >>> 0
  if (hi >= 0x8000_0000) throw new WsfrpError('ERR_MSG_TOO_LARGE', 'frp message length is negative')
  if (hi !== 0 || lo > max) {
    const shown = hi === 0 ? String(lo) : `${hi} * 2^32 + ${lo}`
    throw new WsfrpError('ERR_MSG_TOO_LARGE', `frp message length ${shown} exceeds ${max}`)
  }
  return lo
}

/**
 * Decodes a JSON body for a known type byte. Unknown JSON fields are ignored; a wrong JSON type
 * for a known field, invalid JSON or a non-object body throw `ERR_MSG_PROTOCOL`.
 */
export function decodeMessageBody(typeByte: number, body: Uint8Array): Message {
  const type = checkTypeByte(typeByte)
  const raw = parseJsonObject(decoder.decode(body), `frp ${type}`)
  const fields = decodeObject(MESSAGE_SCHEMAS[type], raw, type)
  return { type, ...fields } as Message
}

/**
 * Decodes exactly one complete framed message. Throws `ERR_MSG_PROTOCOL` when `frame` is shorter
 * or longer than the frame its header announces; see {@link MessageReader} for streams.
 */
export function decodeMessage(frame: Uint8Array, opts?: MessageCodecOptions): Message {
  const max = resolveMaxMessageSize(opts)
  if (frame.length < 1) throw new WsfrpError('ERR_MSG_PROTOCOL', 'empty frp message frame')
  checkTypeByte(frame[0]!)
  if (frame.length < MESSAGE_HEADER_SIZE) throw new WsfrpError('ERR_MSG_PROTOCOL', 'truncated frp message header')
  const len = readBodyLength(frame, 0, max)
  if (frame.length !== MESSAGE_HEADER_SIZE + len) {
    throw new WsfrpError(
      'ERR_MSG_PROTOCOL',
      `frp message frame is ${frame.length} bytes, its header announces ${MESSAGE_HEADER_SIZE + len}`,
    )
  }
  return decodeMessageBody(frame[0]!, frame.subarray(MESSAGE_HEADER_SIZE))
}
