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
export interface MessageChannel {
  readonly isClosed: boolean
  /** Encodes and queues one message; false when the channel is already closed. */
  send(msg: Message): boolean
  /** Half-closes our side; the channel closes when the peer follows. */
  end(): void
  destroy(err?: Error): void
}

/**
 * A function that returns its object, so `new MessageChannel(...)` keeps working: closure variables
 * minify to one letter where `this._x` fields would not (the service-worker bundle has a size budget).
 */
export const MessageChannel = function (conn: Conn, handlers: MessageChannelHandlers, codec?: MessageCodecOptions): MessageChannel {
  const reader = new MessageReader(codec)
  let closed = false

  const finish = (err: Error | undefined): void => {
    if (closed) return
    closed = true
    handlers.onClose(err)
  }

  const fail = (err: Error | undefined): void => {
    if (closed) return
    conn.destroy(err)
    finish(err)
  }

  conn.start({
    onData: (chunk) => {
      if (closed) return
      let msgs: Message[]
      try {
        msgs = reader.push(chunk)
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)))
        return
      }
      for (const m of msgs) {
        if (closed) return
        handlers.onMessage(m)
      }
    },
    // Control traffic is tiny and never waits for the peer's credit: nothing to resume.
    onDrain: () => {},
    onEnd: () => {
      if (reader.bufferedBytes > 0) fail(new WsfrpError('ERR_MSG_PROTOCOL', 'control stream ended inside a message'))
      else finish(undefined)
      conn.end()
    },
    onClose: finish,
  })

  return {
    get isClosed() {
      return closed
    },
    send(msg) {
      if (closed) return false
      try {
        conn.write(encodeMessage(msg, codec))
        return true
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)))
        return false
      }
    },
    end() {
      if (!closed) conn.end()
    },
    destroy: fail,
  }
} as unknown as new (conn: Conn, handlers: MessageChannelHandlers, codec?: MessageCodecOptions) => MessageChannel
