export {
  AES128_KEY_LENGTH,
  AES_BLOCK_SIZE,
  assertAes128KeyIv,
  type CipherMode,
  type CryptoProvider,
  type StreamCipher,
} from './ports.js'
export { cfbStream, type BlockEncrypt } from './cfb-stream.js'
export { aes128Encrypter } from './aes.js'
export { md5, sha1, hmacSha1, pbkdf2Sha1 } from './hash.js'
export { FRP_KEY_SALT, FRP_KEY_ITERATIONS, FRP_KEY_LENGTH, authKey, deriveKey } from './key.js'
export { cryptoConn } from './crypto-conn.js'
