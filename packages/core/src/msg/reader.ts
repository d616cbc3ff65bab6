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

export class MessageReader {
  /** Largest body accepted, bytes. */
  private readonly _max: number
  private readonly _header = new Uint8Array(MESSAGE_HEADER_SIZE)
  private _headerFill = 0
  private _body: Uint8Array | undefined
  private _bodyFill = 0
  private _failed: WsfrpError | undefined

  /** @param opts `maxMessageSize` defaults to 10,240 bytes (frp's limit). */
  constructor(opts?: MessageCodecOptions) {
    this._max = resolveMaxMessageSize(opts)
  }

  /** Bytes of an incomplete message currently held (0 at a message boundary). */
  get bufferedBytes(): number {
    return this._body === undefined ? this._headerFill : MESSAGE_HEADER_SIZE + this._bodyFill
  }

  /**
   * Decodes every message the chunk completes. Throws a WsfrpError (`ERR_MSG_PROTOCOL`,
   * `ERR_MSG_TOO_LARGE`) on bad input; messages decoded earlier in the same chunk are then lost,
   * which is fine because frp drops the connection on any such error.
   */
  push(chunk: Uint8Array): Message[] {
    const out: Message[] = []
    let off = 0
    while (off < chunk.length) {
      const r = this._step(chunk, off)
      off = r.off
      if (r.msg !== undefined) out.push(r.msg)
    }
    return out
  }

  /**
   * Decodes at most one message and hands back the bytes after it untouched, for a stream that
   * switches to another format after one message (after StartWorkConn the bytes are the user's
   * raw connection; after LoginResp the control stream continues encrypted).
   */
  pushOne(chunk: Uint8Array): PushOneResult {
    let off = 0
    while (off < chunk.length) {
      const r = this._step(chunk, off)
      off = r.off
      if (r.msg !== undefined) return { msg: r.msg, rest: off === chunk.length ? EMPTY : chunk.subarray(off) }
    }
    return { msg: undefined, rest: EMPTY }
  }

  private _fail(err: unknown): never {
    this._failed =
      err instanceof WsfrpError ? err : new WsfrpError('ERR_MSG_PROTOCOL', 'frp message decoding failed', { cause: err })
    throw this._failed
  }

  /** Consumes bytes from `chunk[off…]` until one message completes or the chunk is used up. */
  private _step(chunk: Uint8Array, off: number): { msg?: Message; off: number } {
    if (this._failed !== undefined) throw this._failed
    try {
      if (this._body === undefined) {
        const avail = chunk.length - off
        if (this._headerFill === 0 && avail >= MESSAGE_HEADER_SIZE) {
          // Fast path: the whole header is in this chunk.
          const typeByte = chunk[off]!
          checkTypeByte(typeByte)
          const len = readBodyLength(chunk, off, this._max)
          const start = off + MESSAGE_HEADER_SIZE
          if (chunk.length - start >= len) {
            // The whole message is here: decode from a view, no copy.
            return { msg: decodeMessageBody(typeByte, chunk.subarray(start, start + len)), off: start + len }
          }
          this._header.set(chunk.subarray(off, start))
          this._headerFill = MESSAGE_HEADER_SIZE
          this._body = new Uint8Array(len)
          this._body.set(chunk.subarray(start))
          this._bodyFill = chunk.length - start
          return { off: chunk.length }
        }
        // Slow path: the header is split across chunks.
        const n = Math.min(MESSAGE_HEADER_SIZE - this._headerFill, avail)
        this._header.set(chunk.subarray(off, off + n), this._headerFill)
        if (this._headerFill === 0) checkTypeByte(this._header[0]!)
        this._headerFill += n
        off += n
        if (this._headerFill < MESSAGE_HEADER_SIZE) return { off }
        this._body = new Uint8Array(readBodyLength(this._header, 0, this._max))
        this._bodyFill = 0
        // A zero-length body is complete now (it then fails to decode as JSON, as in Go).
        if (this._body.length === 0) return { msg: this._finish(), off }
        return { off }
      }
      const body = this._body
      const n = Math.min(body.length - this._bodyFill, chunk.length - off)
      body.set(chunk.subarray(off, off + n), this._bodyFill)
      this._bodyFill += n
      off += n
      if (this._bodyFill < body.length) return { off }
      return { msg: this._finish(), off }
    } catch (err) {
      return this._fail(err)
    }
  }

  private _finish(): Message {
    const body = this._body!
    this._body = undefined
    this._bodyFill = 0
    this._headerFill = 0
    return decodeMessageBody(this._header[0]!, body)
  }
}
