import { WsfrpError } from '../errors.js'
import { FrameType, HEADER_LENGTH, PROTOCOL_VERSION } from './frame.js'

/**
 * Receives decoded frames. For a Data frame, `onFrame` comes first, then the payload as zero or
 * more `onPayload` slices (views into the transport's chunks, never copies), then `onPayloadEnd`.
 * Other frame types carry no payload: only `onFrame`.
 */
export interface FrameHandler {
  onFrame(type: number, flags: number, streamId: number, length: number): void
  onPayload(chunk: Uint8Array): void
  onPayloadEnd(): void
}

/**
 * Incremental yamux decoder. A header or a payload may be split over any number of transport
 * chunks (WebSocket messages or TCP reads carry no frame boundaries: frp-wire-protocol.md §2.3),
 * and one chunk may hold many frames. Only a split header is ever copied (at most 12 bytes).
 *
 * Throws WsfrpError('ERR_MUX_PROTOCOL') on a bad version, an unknown type or a Data frame longer
 * than `maxDataLength`; after a throw the decoder must not be used again.
 */
export class FrameDecoder {
  private readonly _header = new Uint8Array(HEADER_LENGTH)
  private _headerFill = 0
  /** Payload bytes still expected for the current Data frame; -1 when reading a header. */
  private _payloadLeft = -1
  private _failed = false
  private _firstHeader = true
  private readonly _handler: FrameHandler
  private readonly _maxDataLength: number

  /** @param maxDataLength Largest Data payload accepted, in bytes. The session passes its largest window. */
  constructor(handler: FrameHandler, maxDataLength: number) {
    this._handler = handler
    this._maxDataLength = maxDataLength
  }

  push(chunk: Uint8Array): void {
    if (this._failed) throw new WsfrpError('ERR_MUX_PROTOCOL', 'decoder used after a protocol error')
    let off = 0
    const len = chunk.length
    while (off < len) {
      if (this._payloadLeft >= 0) {
        const n = Math.min(this._payloadLeft, len - off)
        this._payloadLeft -= n
        // A whole chunk that is exactly the payload is passed through without even a subarray.
        this._handler.onPayload(off === 0 && n === len ? chunk : chunk.subarray(off, off + n))
        off += n
        if (this._payloadLeft === 0) {
          this._payloadLeft = -1
          this._handler.onPayloadEnd()
        }
        continue
      }
      let h: Uint8Array
      let ho: number
      if (this._headerFill === 0 && len - off >= HEADER_LENGTH) {
        h = chunk
        ho = off
        off += HEADER_LENGTH
      } else {
        const n = Math.min(HEADER_LENGTH - this._headerFill, len - off)
        this._header.set(chunk.subarray(off, off + n), this._headerFill)
        this._headerFill += n
        off += n
        if (this._headerFill < HEADER_LENGTH) return
        this._headerFill = 0
        h = this._header
        ho = 0
      }
      this._onHeader(h, ho)
    }
  }

  private _onHeader(h: Uint8Array, o: number): void {
    const version = h[o]!
    const type = h[o + 1]!
    const flags = (h[o + 2]! << 8) | h[o + 3]!
    const streamId = ((h[o + 4]! << 24) | (h[o + 5]! << 16) | (h[o + 6]! << 8) | h[o + 7]!) >>> 0
    const length = ((h[o + 8]! << 24) | (h[o + 9]! << 16) | (h[o + 10]! << 8) | h[o + 11]!) >>> 0
    if (version !== PROTOCOL_VERSION) {
      // 0x16 starts a TLS ClientHello, 0x17 is frp's custom TLS marker: frpc ≥ 0.50 turns inner TLS on
      // by default (transport.tls.enable), which this side does not speak (frp-wire-protocol.md §3).
      if (this._firstHeader && (version === 0x16 || version === 0x17)) {
        this._fail('the peer speaks TLS inside the WebSocket (frpc transport.tls.enable = true); set transport.tls.enable = false in frpc, or use wss://')
      }
      this._fail(`unsupported yamux version ${version}`)
    }
    this._firstHeader = false
    if (type > FrameType.GoAway) this._fail(`unknown yamux frame type ${type}`)
    if (type === FrameType.Data) {
      if (length > this._maxDataLength) {
        this._fail(`data frame of ${length} bytes exceeds the limit of ${this._maxDataLength}`)
      }
      this._handler.onFrame(type, flags, streamId, length)
      if (length === 0) this._handler.onPayloadEnd()
      else this._payloadLeft = length
    } else {
      this._handler.onFrame(type, flags, streamId, length)
    }
  }

  private _fail(message: string): never {
    this._failed = true
    throw new WsfrpError('ERR_MUX_PROTOCOL', message)
  }
}
