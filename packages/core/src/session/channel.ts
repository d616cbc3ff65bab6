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
  private readonly reader: MessageReader
  private closed = false

  constructor(
    private readonly conn: Conn,
    private readonly handlers: MessageChannelHandlers,
    private readonly codec?: MessageCodecOptions,
  ) {
    this.reader = new MessageReader(codec)
    conn.start({
      onData: (chunk) => this.onData(chunk),
      // Control traffic is tiny and never waits for the peer's credit: nothing to resume.
      onDrain: () => {},
      onEnd: () => {
        if (this.reader.bufferedBytes > 0) this.fail(new WsfrpError('ERR_MSG_PROTOCOL', 'control stream ended inside a message'))
        else this.finish(undefined)
        conn.end()
      },
      onClose: (err) => this.finish(err),
    })
  }

  get isClosed(): boolean {
    return this.closed
  }

  /** Encodes and queues one message; false when the channel is already closed. */
  send(msg: Message): boolean {
    if (this.closed) return false
    try {
      this.conn.write(encodeMessage(msg, this.codec))
      return true
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)))
      return false
    }
  }

  /** Half-closes our side; the channel closes when the peer follows. */
  end(): void {
    if (!this.closed) this.conn.end()
  }

  destroy(err?: Error): void {
    this.fail(err)
  }

  private onData(chunk: Uint8Array): void {
    if (this.closed) return
    let msgs: Message[]
    try {
      msgs = this.reader.push(chunk)
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)))
      return
    }
    for (const m of msgs) {
      if (this.closed) return
      this.handlers.onMessage(m)
    }
  }

  private fail(err: Error | undefined): void {
    if (this.closed) return
    this.conn.destroy(err)
    this.finish(err)
  }

  private finish(err: Error | undefined): void {
    if (this.closed) return
    this.closed = true
    this.handlers.onClose(err)
  }
}
