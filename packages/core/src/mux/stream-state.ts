/**
 * Stream state bits, shared by the stream and the session as plain constants: an object would cost
 * a property lookup's bytes at every use in the minified bundle. They live in a module that imports
 * nothing because the bundler only replaces a constant by its value across modules when the
 * defining module has no imports (its constants are then initialised before any use).
 */
export const S_FIN_QUEUED = 1 // end() was called
export const S_FIN_SENT = 2
export const S_REMOTE_FIN = 4 // the peer's FIN arrived
export const S_END_DELIVERED = 8
export const S_CLOSED = 16
export const S_PAUSED = 32
export const S_NEED_DRAIN = 64
export const S_DELIVERY_SCHEDULED = 128
export const S_READY = 256 // in the session's ready queue
export const S_INBOUND = 512 // opened by the peer
export const S_STARTED = 1024
