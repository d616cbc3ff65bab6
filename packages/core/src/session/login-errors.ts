/**
 * Login wording both roles share. A module of its own so that the client role, which browsers
 * bundle, reads it without importing the server role's module.
 */

/** frp's own wording, kept so that frpc users see the message they know (frp-observed.md). */
export const TOKEN_MISMATCH = "token in login doesn't match token from configuration"
