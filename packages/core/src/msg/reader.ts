/**
 * Incremental frp v1 message reader: feed it chunks split anywhere, get whole messages back.
 *
 * Memory: at most one partial message is held (a 9-byte header buffer plus one body buffer of the
 * announced length, itself capped by `maxMessageSize`). A message that lies entirely inside one
 * chunk is decoded straight from that chunk, without a copy.
 *
 * Checks run as early as frp's reader runs them (golib `msg/json/process.go`): the type byte as soon
 * as it arrives, the length as soon as its 8 bytes are there, before any body is buffered.
 * After an error the reader is dead: every later call throws the same error.
 */
import { WsfrpError } from '../errors.js'
import { MESSAGE_HEADER_SIZE, checkTypeByte, decodeMessageBody, readBodyLength, resolveMaxMessageSize, type MessageCodecOptions } from './codec.js'
import type { Message } from './types.js'

const EMPTY = new Uint8Array(0)

/** Result of {@link MessageReader.pushOne}. */
export interface PushOneResult {
  /** The first message completed by this chunk, or `undefined` if the chunk ended inside one. */
  msg: Message | undefined
  /**
   * The bytes of the chunk after that message (a view into the chunk, not a copy). Empty when no
   * message completed: those bytes are then held by the reader.
   */
  rest: Uint8Array
}

export interface MessageReader {
  /** Bytes of an incomplete message currently held (0 at a message boundary). */
  readonly bufferedBytes: number
  /**
   * Decodes every message the chunk completes. Throws a WsfrpError (`ERR_MSG_PROTOCOL`,
   * `ERR_MSG_TOO_LARGE`) on bad input; messages decoded earlier in the same chunk are then lost,
   * which is fine because frp drops the connection on any such error.
   */
  push(chunk: Uint8Array): Message[]
  /**
   * Decodes at most one message and hands back the bytes after it untouched, for a stream that
   * switches to another format after one message (after StartWorkConn the bytes are the user's
   * raw connection; after LoginResp the control stream continues encrypted).
   */
  pushOne(chunk: Uint8Array): PushOneResult
}

/**
 * A function that returns its object, so `new MessageReader(opts)` keeps working: the state lives in
 * closure variables, which minify to one letter where `this._x` fields would not (this code ships in
 * the size-budgeted service-worker bundle). `opts.maxMessageSize` defaults to 10,240 bytes (frp's limit).
 */
export const MessageReader = function (opts?: MessageCodecOptions): MessageReader {
  /** Largest body accepted, bytes. */
  const max = resolveMaxMessageSize(opts)
  const header = new Uint8Array(MESSAGE_HEADER_SIZE)
  let headerFill = 0
  let body: Uint8Array | undefined
  let bodyFill = 0
  let failed: WsfrpError | undefined

  const finish = (): Message => {
    const b = body!
    body = undefined
    bodyFill = 0
    headerFill = 0
    return decodeMessageBody(header[0]!, b)
  }

  /** Consumes bytes from `chunk[off…]` until one message completes or the chunk is used up. */
  const step = (chunk: Uint8Array, off: number): { msg?: Message; off: number } => {
    if (failed !== undefined) throw failed
    try {
      if (body === undefined) {
        const avail = chunk.length - off
        if (headerFill === 0 && avail >= MESSAGE_HEADER_SIZE) {
          // Fast path: the whole header is in this chunk.
          const typeByte = chunk[off]!
          checkTypeByte(typeByte)
          const len = readBodyLength(chunk, off, max)
          const start = off + MESSAGE_HEADER_SIZE
          if (chunk.length - start >= len) {
            // The whole message is here: decode from a view, no copy.
            return { msg: decodeMessageBody(typeByte, chunk.subarray(start, start + len)), off: start + len }
          }
          header.set(chunk.subarray(off, start))
          headerFill = MESSAGE_HEADER_SIZE
          body = new Uint8Array(len)
          body.set(chunk.subarray(start))
          bodyFill = chunk.length - start
          return { off: chunk.length }
        }
        // Slow path: the header is split across chunks.
        const n = Math.min(MESSAGE_HEADER_SIZE - headerFill, avail)
        header.set(chunk.subarray(off, off + n), headerFill)
        if (headerFill === 0) checkTypeByte(header[0]!)
        headerFill += n
        off += n
        if (headerFill < MESSAGE_HEADER_SIZE) return { off }
        body = new Uint8Array(readBodyLength(header, 0, max))
        bodyFill = 0
        // A zero-length body is complete now (it then fails to decode as JSON, as in Go).
        if (body.length === 0) return { msg: finish(), off }
        return { off }
      }
      const b = body
      const n = Math.min(b.length - bodyFill, chunk.length - off)
      b.set(chunk.subarray(off, off + n), bodyFill)
      bodyFill += n
      off += n
      if (bodyFill < b.length) return { off }
      return { msg: finish(), off }
    } catch (err) {
      throw (failed = err instanceof WsfrpError ? err : new WsfrpError('ERR_MSG_PROTOCOL', 'frp message decoding failed', { cause: err }))
    }
  }

  return {
    get bufferedBytes() {
      return body === undefined ? headerFill : MESSAGE_HEADER_SIZE + bodyFill
    },
    push(chunk) {
      const out: Message[] = []
      let off = 0
      while (off < chunk.length) {
        const r = step(chunk, off)
        off = r.off
        if (r.msg !== undefined) out.push(r.msg)
      }
      return out
    },
    pushOne(chunk) {
      let off = 0
      while (off < chunk.length) {
        const r = step(chunk, off)
        off = r.off
        if (r.msg !== undefined) return { msg: r.msg, rest: off === chunk.length ? EMPTY : chunk.subarray(off) }
      }
      return { msg: undefined, rest: EMPTY }
    },
  }
} as unknown as new (opts?: MessageCodecOptions) => MessageReader
