/**
 * The few globals the core may use. Node >= 20, browsers and service workers all have them.
 * The core compiles with `lib: ["ES2022"]` and `types: []`, so anything not declared here
 * (Buffer, process, WebSocket, window, setImmediate, node:*) is a compile error.
 */
declare global {
  function setTimeout(handler: () => void, ms?: number): unknown
  function clearTimeout(handle: unknown): void
  function queueMicrotask(cb: () => void): void

  class TextEncoder {
    encode(input?: string): Uint8Array
    encodeInto(src: string, dest: Uint8Array): { read: number; written: number }
  }
  class TextDecoder {
    constructor(label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean })
    decode(input?: Uint8Array, options?: { stream?: boolean }): string
  }

  interface AbortSignal {
    readonly aborted: boolean
    readonly reason: unknown
    addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void
    removeEventListener(type: 'abort', listener: () => void): void
  }

  const crypto: {
    getRandomValues<T extends Uint8Array>(array: T): T
  }

  const performance: { now(): number }
}
export {}
