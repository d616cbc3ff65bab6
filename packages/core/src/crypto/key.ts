/**
 * frp's key derivations (wire doc §6.1, §7.1).
 */
import { WsfrpError } from '../errors.js'
import type { CryptoProvider } from './ports.js'

/**
 * PBKDF2 salt frp uses for every AES key: golib's default salt is `"crypto"`, but frpc and frps
 * both set `crypto.DefaultSalt = "frp"` at start-up (`frp@v0.44.0:client/service.go:47-50`,
 * `frp@v0.44.0:cmd/frps/main.go:28`, `frp@v0.70.1:server/service.go:70`).
 */
export const FRP_KEY_SALT = 'frp'
/** PBKDF2 iterations (golib `crypto/encode.go`: `pbkdf2.Key(key, salt, 64, aes.BlockSize, sha1.New)`). */
export const FRP_KEY_ITERATIONS = 64
/** Derived key length in bytes: AES-128. */
export const FRP_KEY_LENGTH = 16

const encoder = new TextEncoder()

/**
 * The AES-128 key frp derives from a secret: PBKDF2-HMAC-SHA1(secret, "frp", 64, 16 bytes).
 * The secret is the auth token for the control stream and work connections, and the proxy's `sk`
 * for stcp/sudp/xtcp visitor connections. An empty token (OIDC) is valid and gives a fixed key;
 * a non-string throws `ERR_CONFIG`.
 */
export function deriveKey(provider: CryptoProvider, secret: string): Uint8Array {
  // A missing token must not silently become the empty-token key.
  if (typeof secret !== 'string') throw new WsfrpError('ERR_CONFIG', 'the key secret (token or sk) must be a string')
  return provider.pbkdf2Sha1(encoder.encode(secret), encoder.encode(FRP_KEY_SALT), FRP_KEY_ITERATIONS, FRP_KEY_LENGTH)
}

/**
 * frp's `privilege_key` / `sign_key`: lowercase hex MD5 of the token (or `sk`) followed by the
 * decimal Unix timestamp in seconds (`frp@v0.44.0:pkg/util/util/util.go:46-52`).
 * `timestamp` must be a safe integer (`ERR_AUTH` otherwise).
 */
export function authKey(provider: CryptoProvider, token: string, timestamp: number): string {
  if (!Number.isSafeInteger(timestamp)) throw new WsfrpError('ERR_AUTH', `auth timestamp must be an integer, got ${timestamp}`)
  return provider.md5Hex(token + String(timestamp))
}
