/**
 * Streaming AES-CFB-128 over a single-block encrypt primitive, for runtimes without a CFB mode
 * (WebCrypto has none): the browser provider runs it over `aes128Encrypter`.
 *
 * CFB-128 (NIST SP 800-38A §6.3; what Go's `cipher.NewCFBEncrypter` does and golib's crypto uses,
 * wire doc §6.1): keystream block i = E(previous ciphertext block), block 0 = E(IV); output =
 * input XOR keystream. Only the encrypt direction of the block cipher is ever used, also to decrypt.
 * A chunk may end inside a block: the position is kept and the next chunk continues there.
 */
import { WsfrpError } from '../errors.js'
import { AES_BLOCK_SIZE, type CipherMode, type StreamCipher } from './ports.js'

/**
 * Encrypts one 16-byte block. It may overwrite its argument and return it (in place) or return a
 * new array; the result is read before the next call.
 */
export type BlockEncrypt = (block16: Uint8Array) => Uint8Array

/** A streaming CFB-128 cipher over `encryptBlock`. `iv` must be 16 bytes (`ERR_CRYPTO`). */
export function cfbStream(encryptBlock: BlockEncrypt, iv: Uint8Array, mode: CipherMode): StreamCipher {
  if (!(iv instanceof Uint8Array) || iv.length !== AES_BLOCK_SIZE) {
    throw new WsfrpError('ERR_CRYPTO', `CFB IV must be ${AES_BLOCK_SIZE} bytes`)
  }
  if (mode !== 'encrypt' && mode !== 'decrypt') throw new WsfrpError('ERR_CRYPTO', `unknown cipher mode ${String(mode)}`)
  const decrypt = mode === 'decrypt'
  // ks: keystream of the current block. fb: ciphertext of the current block so far, which becomes
  // the input of the next keystream block. pos: bytes of the current block already used.
  const ks = new Uint8Array(AES_BLOCK_SIZE)
  const fb = new Uint8Array(AES_BLOCK_SIZE)
  fb.set(iv)
  let pos = AES_BLOCK_SIZE // "block used up": the first byte computes E(IV)

  const nextKeystream = (): void => {
    ks.set(fb)
    const out = encryptBlock(ks)
    if (out !== ks) {
      if (!(out instanceof Uint8Array) || out.length !== AES_BLOCK_SIZE) {
        throw new WsfrpError('ERR_CRYPTO', 'cipher block is not 16 bytes')
      }
      ks.set(out)
    }
    pos = 0
  }

  return {
    update(chunk: Uint8Array): Uint8Array {
      const n = chunk.length
      const out = new Uint8Array(n)
      let i = 0
      while (i < n) {
        if (pos === AES_BLOCK_SIZE) nextKeystream()
        // Bytes of this block available in the chunk.
        const end = Math.min(n, i + (AES_BLOCK_SIZE - pos))
        if (decrypt) {
          for (; i < end; i++, pos++) {
            const c = chunk[i]!
            out[i] = c ^ ks[pos]!
            fb[pos] = c
          }
        } else {
          for (; i < end; i++, pos++) {
            const c = chunk[i]! ^ ks[pos]!
            out[i] = c
            fb[pos] = c
          }
        }
      }
      return out
    },
  }
}
