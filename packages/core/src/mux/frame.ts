/**
 * yamux framing constants, as defined by hashicorp/yamux `spec.md` ("Framing", "Type field",
 * "Flag field", "StreamID field", "Length field") and used unchanged by frp (tcp_mux).
 *
 * Header, 12 bytes, big endian:
 *   version u8 (always 0) | type u8 | flags u16 | stream id u32 | length u32
 * `length` is the payload size for Data, the window delta for WindowUpdate, the opaque value for
 * Ping and the error code for GoAway.
 */
export const HEADER_LENGTH = 12
export const PROTOCOL_VERSION = 0

// These are TypeScript enums rather than `as const` objects because the bundler replaces an enum
// member with its number at every use, while `FrameType.Data` on an object stays a property read
// in the browser bundles (~300 bytes of the service-worker budget).

/** spec.md "Type field". */
export enum FrameType {
  /** Carries stream data; `length` bytes of payload follow. */
  Data = 0,
  /** Grows the receiver's window by `length`; also carries SYN/ACK/FIN/RST without data. */
  WindowUpdate = 1,
  /** Liveness and RTT. SYN asks, ACK answers with the same opaque `length`. Stream id 0. */
  Ping = 2,
  /** Session termination; `length` is a GoAwayCode. Stream id 0. */
  GoAway = 3,
}

/** spec.md "Flag field". */
export enum Flag {
  /** Opens a new stream (or, on Ping, asks for an answer). */
  SYN = 1,
  /** Acknowledges a new stream (or answers a Ping). */
  ACK = 2,
  /** Half-close: the sender will send no more data on this stream. */
  FIN = 4,
  /** Resets the stream at once. */
  RST = 8,
}

/** spec.md "GoAway" error codes. */
export enum GoAwayCode {
  Normal = 0,
  ProtocolError = 1,
  InternalError = 2,
}

/** Every stream starts with this receive window on both sides (spec.md "Flow Control"). */
export const INITIAL_STREAM_WINDOW = 262_144 // 256 KiB, a literal so that the bundler inlines it

/**
 * Headers are carved out of a shared slab rather than allocated one by one: a 12-byte typed array
 * of its own becomes a separate off-heap ArrayBuffer the moment a transport wraps it (Node's
 * Buffer.from(view.buffer)), and at one header per 64 KiB frame those tiny externals cost more in
 * GC than the header bytes themselves. Each slice is written once and never reused, so a header
 * still queued in a transport is never overwritten; the slab is garbage once its views are.
 */
const HEADER_SLAB_BYTES = 4096 - (4096 % HEADER_LENGTH)
let headerSlab = new Uint8Array(HEADER_SLAB_BYTES)
let headerSlabOffset = 0

export function encodeHeader(type: number, flags: number, streamId: number, length: number): Uint8Array {
  if (headerSlabOffset === HEADER_SLAB_BYTES) {
    headerSlab = new Uint8Array(HEADER_SLAB_BYTES)
    headerSlabOffset = 0
  }
  const off = headerSlabOffset
  headerSlabOffset += HEADER_LENGTH
  writeHeader(headerSlab, off, type, flags, streamId, length)
  return headerSlab.subarray(off, off + HEADER_LENGTH)
}

export function writeHeader(
  out: Uint8Array,
  off: number,
  type: number,
  flags: number,
  streamId: number,
  length: number,
): void {
  out[off] = PROTOCOL_VERSION
  out[off + 1] = type
  out[off + 2] = flags >>> 8
  out[off + 3] = flags & 0xff
  out[off + 4] = streamId >>> 24
  out[off + 5] = (streamId >>> 16) & 0xff
  out[off + 6] = (streamId >>> 8) & 0xff
  out[off + 7] = streamId & 0xff
  out[off + 8] = length >>> 24
  out[off + 9] = (length >>> 16) & 0xff
  out[off + 10] = (length >>> 8) & 0xff
  out[off + 11] = length & 0xff
}

/** A decoded header. */
export interface FrameHeader {
  type: number
  flags: number
  streamId: number
  length: number
}
