/**
 * A deliberately dumb WebSocket client over a raw TCP socket, for attacking the server: it sends
 * whatever bytes it is told to (truncated, oversized or invalid frames) and parses what comes back
 * just enough to see close frames and the yamux frames inside binary messages.
 */
import net from 'node:net'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'

/** A frame the server sent. */
export interface ServerFrame {
  opcode: number
  payload: Buffer
}

export class RawWs {
  readonly frames: ServerFrame[] = []
  /** Bytes that arrived after the 101 answer and were not a whole frame yet. */
  private buf: Buffer = Buffer.alloc(0)
  closed = false
  private readonly closedP: Promise<void>
  private readonly listeners = new Set<() => void>()

  private constructor(readonly socket: net.Socket) {
    this.closedP = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    socket.on('error', () => {})
    socket.on('close', () => {
      this.closed = true
      this.notify()
    })
  }

  /** Opens a TCP connection and completes the WebSocket upgrade on `path`; rejects unless 101. */
  static async open(port: number, path = '/~!frp'): Promise<RawWs> {
    const socket = net.connect({ host: '127.0.0.1', port })
    await once(socket, 'connect')
    const ws = new RawWs(socket)
    const key = randomBytes(16).toString('base64')
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
    let head = Buffer.alloc(0)
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer): void => {
        head = Buffer.concat([head, d])
        const end = head.indexOf('\r\n\r\n')
        if (end < 0) return
        socket.off('data', onData)
        socket.off('close', onClose)
        const status = head.subarray(0, head.indexOf('\r\n')).toString()
        if (!/^HTTP\/1\.1 101 /.test(status)) {
          reject(new Error(`upgrade refused: ${status}`))
          return
        }
        socket.on('data', (c: Buffer) => ws.onData(c))
        ws.onData(head.subarray(end + 4))
        resolve()
      }
      const onClose = (): void => reject(new Error('closed during the upgrade'))
      socket.on('data', onData)
      socket.once('close', onClose)
    })
    return ws
  }

  /** A client frame (masked, as RFC 6455 requires) with an exact or a lying length. */
  static frame(opcode: number, payload: Buffer, opts: { claimedLength?: number; fin?: boolean } = {}): Buffer {
    const len = opts.claimedLength ?? payload.length
    let header: Buffer
    if (len < 126) header = Buffer.from([(opts.fin === false ? 0 : 0x80) | opcode, 0x80 | len])
    else if (len < 65536) {
      header = Buffer.alloc(4)
      header[0] = (opts.fin === false ? 0 : 0x80) | opcode
      header[1] = 0x80 | 126
      header.writeUInt16BE(len, 2)
    } else {
      header = Buffer.alloc(10)
      header[0] = (opts.fin === false ? 0 : 0x80) | opcode
      header[1] = 0x80 | 127
      header.writeBigUInt64BE(BigInt(len), 2)
    }
    const mask = randomBytes(4)
    const body = Buffer.from(payload)
    for (let i = 0; i < body.length; i++) body[i]! ^= mask[i & 3]!
    return Buffer.concat([header, mask, body])
  }

  /** Sends raw bytes (e.g. a frame from {@link RawWs.frame}, or half of one). */
  write(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes)
  }

  /** Sends one binary message. */
  send(payload: Buffer): void {
    this.write(RawWs.frame(0x2, payload))
  }

  /** Resolves when the server closed the TCP connection; rejects after `timeoutMs`. */
  async waitClosed(timeoutMs: number): Promise<void> {
    let t: NodeJS.Timeout | undefined
    await Promise.race([
      this.closedP,
      new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`the server did not close the connection within ${timeoutMs} ms`)), timeoutMs))),
    ]).finally(() => clearTimeout(t))
  }

  /** Resolves with the first server frame (from index `since`) that `match` accepts. */
  async waitFrame(match: (f: ServerFrame) => boolean, timeoutMs: number, since = 0): Promise<ServerFrame> {
    return new Promise<ServerFrame>((resolve, reject) => {
      const check = (): void => {
        const f = this.frames.slice(since).find(match)
        if (f !== undefined) {
          done()
          resolve(f)
        } else if (this.closed) {
          done()
          reject(new Error('the connection closed before the expected frame'))
        }
      }
      const t = setTimeout(() => {
        done()
        reject(new Error(`no matching frame within ${timeoutMs} ms`))
      }, timeoutMs)
      const done = (): void => {
        clearTimeout(t)
        this.listeners.delete(check)
      }
      this.listeners.add(check)
      check()
    })
  }

  /** The close code of the server's close frame, if one came. */
  closeCode(): number | undefined {
    const f = this.frames.find((x) => x.opcode === 0x8)
    return f === undefined || f.payload.length < 2 ? undefined : f.payload.readUInt16BE(0)
  }

  destroy(): void {
    this.socket.destroy()
  }

  private notify(): void {
    for (const l of [...this.listeners]) l()
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    for (;;) {
      if (this.buf.length < 2) break
      const opcode = this.buf[0]! & 0x0f
      let len = this.buf[1]! & 0x7f
      let off = 2
      if (len === 126) {
        if (this.buf.length < 4) break
        len = this.buf.readUInt16BE(2)
        off = 4
      } else if (len === 127) {
        if (this.buf.length < 10) break
        len = Number(this.buf.readBigUInt64BE(2))
        off = 10
      }
      if (this.buf.length < off + len) break
      this.frames.push({ opcode, payload: this.buf.subarray(off, off + len) })
      this.buf = this.buf.subarray(off + len)
    }
    this.notify()
  }
}

// ---- yamux frames (frp-wire-protocol.md §4): version 0, type, flags, stream id, length.

export const YAMUX = { DATA: 0, WINDOW_UPDATE: 1, PING: 2, GO_AWAY: 3, SYN: 1, ACK: 2, FIN: 4, RST: 8 } as const

export function yamuxFrame(type: number, flags: number, stream: number, lengthOrPayload: number | Buffer): Buffer {
  const payload = typeof lengthOrPayload === 'number' ? Buffer.alloc(0) : lengthOrPayload
  const h = Buffer.alloc(12)
  h[0] = 0
  h[1] = type
  h.writeUInt16BE(flags, 2)
  h.writeUInt32BE(stream, 4)
  h.writeUInt32BE(typeof lengthOrPayload === 'number' ? lengthOrPayload : payload.length, 8)
  return Buffer.concat([h, payload])
}

/** The yamux frame headers inside the binary messages a server sent. */
export function yamuxHeaders(frames: readonly ServerFrame[]): { type: number; flags: number; stream: number; length: number }[] {
  const out: { type: number; flags: number; stream: number; length: number }[] = []
  let buf: Buffer = Buffer.alloc(0)
  for (const f of frames) {
    if (f.opcode !== 0x2 && f.opcode !== 0x1 && f.opcode !== 0x0) continue
    buf = Buffer.concat([buf, f.payload])
    for (;;) {
      if (buf.length < 12) break
      const type = buf[1]!
      const length = buf.readUInt32BE(8)
      const body = type === YAMUX.DATA ? length : 0
      if (buf.length < 12 + body) break
      out.push({ type, flags: buf.readUInt16BE(2), stream: buf.readUInt32BE(4), length })
      buf = buf.subarray(12 + body)
    }
  }
  return out
}

/** An frp message frame: type byte, 8-byte big-endian length, body (frp-wire-protocol.md §5). */
export function frpMessage(typeByte: string, body: Buffer | string, claimedLength?: number): Buffer {
  const b = Buffer.from(body)
  const h = Buffer.alloc(9)
  h[0] = typeByte.charCodeAt(0)
  h.writeBigUInt64BE(BigInt(claimedLength ?? b.length), 1)
  return Buffer.concat([h, b])
}
