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
export interface FrameDecoder {
  push(chunk: Uint8Array): void
}

// A function that returns its object, so `new FrameDecoder(...)` keeps working; closure state
// instead of `this._member` fields for the size of the service-worker bundle.
/** @param maxDataLength Largest Data payload accepted, in bytes. The session passes its largest window. */
export const FrameDecoder = function (handler: FrameHandler, maxDataLength: number): FrameDecoder {
  const header = new Uint8Array(HEADER_LENGTH)
  let headerFill = 0
  /** Payload bytes still expected for the current Data frame; -1 when reading a header. */
  let payloadLeft = -1
  let failed = false
  let firstHeader = true

  const fail = (message: string): never => {
    failed = true
    throw new WsfrpError('ERR_MUX_PROTOCOL', message)
  }

  const onHeader = (h: Uint8Array, o: number): void => {
    const version = h[o]!
    const type = h[o + 1]!
    const flags = (h[o + 2]! << 8) | h[o + 3]!
    const streamId = ((h[o + 4]! << 24) | (h[o + 5]! << 16) | (h[o + 6]! << 8) | h[o + 7]!) >>> 0
    const length = ((h[o + 8]! << 24) | (h[o + 9]! << 16) | (h[o + 10]! << 8) | h[o + 11]!) >>> 0
    if (version !== PROTOCOL_VERSION) {
      // 0x16 starts a TLS ClientHello, 0x17 is frp's custom TLS marker: frpc ≥ 0.50 turns inner TLS on
      // by default (transport.tls.enable), which this side does not speak (frp-wire-protocol.md §3).
      if (firstHeader && (version === 0x16 || version === 0x17)) {
        fail('the peer speaks TLS inside the WebSocket: set transport.tls.enable = false in frpc')
      }
      fail(`unsupported yamux version ${version}`)
    }
    firstHeader = false
    if (type > FrameType.GoAway) fail(`unknown yamux frame type ${type}`)
    if (type === FrameType.Data && length > maxDataLength) fail(`data frame of ${length} bytes exceeds the limit of ${maxDataLength}`)
    handler.onFrame(type, flags, streamId, length)
    if (type === FrameType.Data) {
      if (length === 0) handler.onPayloadEnd()
      else payloadLeft = length
    }
  }

  return {
    push(chunk) {
      if (failed) throw new WsfrpError('ERR_MUX_PROTOCOL', 'decoder used after a protocol error')
      let off = 0
      const len = chunk.length
      while (off < len) {
        if (payloadLeft >= 0) {
          const n = Math.min(payloadLeft, len - off)
          payloadLeft -= n
          // A whole chunk that is exactly the payload is passed through without even a subarray.
          handler.onPayload(off === 0 && n === len ? chunk : chunk.subarray(off, off + n))
          off += n
          if (payloadLeft === 0) {
            payloadLeft = -1
            handler.onPayloadEnd()
          }
          continue
        }
        let h: Uint8Array
        let ho: number
        if (headerFill === 0 && len - off >= HEADER_LENGTH) {
          h = chunk
          ho = off
          off += HEADER_LENGTH
        } else {
          const n = Math.min(HEADER_LENGTH - headerFill, len - off)
          header.set(chunk.subarray(off, off + n), headerFill)
          headerFill += n
          off += n
          if (headerFill < HEADER_LENGTH) return
          headerFill = 0
          h = header
          ho = 0
        }
        onHeader(h, ho)
      }
    },
  }
} as unknown as new (handler: FrameHandler, maxDataLength: number) => FrameDecoder
