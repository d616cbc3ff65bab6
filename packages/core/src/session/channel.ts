import type { Conn } from '../conn.js'
import { WsfrpError } from '../errors.js'
import { encodeMessage, type MessageCodecOptions } from '../msg/codec.js'
import { MessageReader } from '../msg/reader.js'
import type { Message } from '../msg/types.js'

export interface MessageChannelHandlers {
  onMessage(msg: Message): void
  /** Once, last: the conn ended or failed (a bad message is an ERR_MSG_* error). */
  onClose(err?: Error): void
}

/**
 * frp messages over a Conn (the control stream): an incremental reader on the receive side and
 * the v1 encoder on the send side. A malformed message tears the channel down with a typed error.
 */
export class MessageChannel {
  private readonly _conn: Conn
  private readonly _handlers: MessageChannelHandlers
  private readonly _codec: MessageCodecOptions | undefined
  private readonly _reader: MessageReader
  private _closed = false

  constructor(conn: Conn, handlers: MessageChannelHandlers, codec?: MessageCodecOptions) {
    this._conn = conn
    this._handlers = handlers
    this._codec = codec
    this._reader = new MessageReader(codec)
    conn.start({
      onData: (chunk) => this._onData(chunk),
      // Control traffic is tiny and never waits for the peer's credit: nothing to resume.
      onDrain: () => {},
      onEnd: () => {
        if (this._reader.bufferedBytes > 0) this._fail(new WsfrpError('ERR_MSG_PROTOCOL', 'control stream ended inside a message'))
        else this._finish(undefined)
        conn.end()
      },
      onClose: (err) => this._finish(err),
    })
  }

  get isClosed(): boolean {
    return this._closed
  }

  /** Encodes and queues one message; false when the channel is already closed. */
  send(msg: Message): boolean {
    if (this._closed) return false
    try {
      this._conn.write(encodeMessage(msg, this._codec))
      return true
    } catch (err) {
      this._fail(err instanceof Error ? err : new Error(String(err)))
      return false
    }
  }

  /** Half-closes our side; the channel closes when the peer follows. */
  end(): void {
    if (!this._closed) this._conn.end()
  }

  destroy(err?: Error): void {
    this._fail(err)
  }

  private _onData(chunk: Uint8Array): void {
    if (this._closed) return
    let msgs: Message[]
    try {
      msgs = this._reader.push(chunk)
    } catch (err) {
      this._fail(err instanceof Error ? err : new Error(String(err)))
      return
    }
    for (const m of msgs) {
      if (this._closed) return
      this._handlers.onMessage(m)
    }
  }

  private _fail(err: Error | undefined): void {
    if (this._closed) return
    this._conn.destroy(err)
    this._finish(err)
  }

  private _finish(err: Error | undefined): void {
    if (this._closed) return
    this._closed = true
    this._handlers.onClose(err)
  }
}
