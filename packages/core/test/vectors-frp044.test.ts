/**
 * Replays the byte captures of real frp 0.44 sessions (`../shared/vectors/frp-0.44`, see its README)
 * through the message codec, readMessage and cryptoConn, chunked exactly as the yamux Data frames
 * carried them.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createCipheriv, createHash, pbkdf2Sync, randomBytes } from 'node:crypto'
import {
  MessageReader,
  cfbStream,
  concatBytes,
  cryptoConn,
  decodeMessage,
  deriveKey,
  authKey,
  encodeMessage,
  fromHex,
  readMessage,
  toHex,
  type ConnSink,
  type CryptoProvider,
  type Message,
} from '@wsfrp/core'
import { memoryPair } from '@wsfrp/core/testing'

// Repo root is /work/main; the captures live beside it in /work/shared (WSFRP_VECTORS_DIR overrides).
const DIR =
  process.env.WSFRP_VECTORS_DIR ?? fileURLToPath(new URL('../../../../shared/vectors/frp-0.44/', import.meta.url))
const FILES = ['login-tcp-ping.json', 'login-wrong-token.json', 'http-vhost-get.json']

interface CapturedMessage {
  type: string
  name: string
  length: number
  json: Record<string, unknown>
  hex: string
}
interface Direction {
  bytes: number
  plaintext_messages: CapturedMessage[]
  encrypted?: { iv_hex: string; ciphertext_hex: string; decrypted_hex: string; decrypted_messages: CapturedMessage[] }
  raw_after_messages?: { hex: string }
}
interface Capture {
  control_key: { token: string; key_hex: string }
  connections: {
    yamux_frames: { dir: 'c2s' | 's2c'; type_name: string; stream_id: number; body_hex?: string }[]
    streams: { id: number; role: string; c2s: Direction; s2c: Direction }[]
  }[]
}

function load(name: string): Capture {
  const path = DIR + name
  assert.ok(existsSync(path), `frp capture missing: ${path} (set WSFRP_VECTORS_DIR)`)
  return JSON.parse(readFileSync(path, 'utf8')) as Capture
}

const u8 = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
const provider: CryptoProvider = {
  md5Hex: (s) => createHash('md5').update(s, 'utf8').digest('hex'),
  pbkdf2Sha1: (p, s, i, l) => u8(pbkdf2Sync(p, s, i, l, 'sha1')),
  // The core's own CFB over a one-block ECB: the captures check cfbStream against frp's Go CFB.
  createAes128Cfb: (key, iv, mode) =>
    cfbStream((block) => u8(createCipheriv('aes-128-ecb', key, null).setAutoPadding(false).update(block)), iv, mode),
  randomBytes: (n) => u8(randomBytes(n)),
}

function expected(m: CapturedMessage): Message {
  return { type: m.name, ...m.json } as Message
}

function checkMessage(m: CapturedMessage, where: string): void {
  const bytes = fromHex(m.hex)
  const msg = decodeMessage(bytes)
  assert.deepEqual(msg, expected(m), where)
  assert.equal(String.fromCharCode(bytes[0]!), m.type, where)
  assert.equal(bytes.length, 9 + m.length, where)
  // Byte-exact: re-encoding what frp sent gives frp's bytes (struct order, omitempty).
  assert.equal(toHex(encodeMessage(msg)), m.hex, `${where}: re-encoded`)
}

test('every plaintext and decrypted message of the captures decodes and re-encodes byte for byte', { timeout: 10_000 }, () => {
  let count = 0
  for (const f of FILES) {
    for (const conn of load(f).connections) {
      for (const s of conn.streams) {
        for (const dir of ['c2s', 's2c'] as const) {
          const d = s[dir]
          for (const m of d.plaintext_messages) {
            checkMessage(m, `${f} stream ${s.id} ${dir} ${m.name}`)
            count++
          }
          for (const m of d.encrypted?.decrypted_messages ?? []) {
            checkMessage(m, `${f} stream ${s.id} ${dir} encrypted ${m.name}`)
            count++
          }
        }
      }
    }
  }
  assert.ok(count >= 20, `only ${count} messages found`)
})

test('the control key and privilege_key of the captures', { timeout: 5_000 }, () => {
  for (const f of FILES) {
    const cap = load(f)
    assert.equal(toHex(deriveKey(provider, cap.control_key.token)), cap.control_key.key_hex)
  }
  const login = load('login-tcp-ping.json').connections[0]!.streams[0]!.c2s.plaintext_messages[0]!.json
  assert.equal(authKey(provider, 'vector-token', login.timestamp as number), login.privilege_key)
})

class Sink implements ConnSink {
  chunks: Uint8Array[] = []
  ended = false
  closed = false
  closeErr: Error | undefined
  onData(c: Uint8Array): void {
    this.chunks.push(c)
  }
  onDrain(): void {}
  onEnd(): void {
    this.ended = true
  }
  onClose(err?: Error): void {
    this.closed = true
    this.closeErr = err
  }
}

function waitUntil(pred: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const poll = (): void => (pred() ? resolve() : void setImmediate(poll))
    poll()
  })
}

test('each captured stream, replayed in its yamux Data frames: readMessage, then cryptoConn or raw bytes', { timeout: 20_000 }, async () => {
  let streams = 0
  for (const f of FILES) {
    const cap = load(f)
    const key = deriveKey(provider, cap.control_key.token)
    for (const conn of cap.connections) {
      for (const s of conn.streams) {
        for (const dir of ['c2s', 's2c'] as const) {
          const d = s[dir]
          const bodies = conn.yamux_frames
            .filter((y) => y.dir === dir && y.stream_id === s.id && y.type_name === 'Data' && y.body_hex)
            .map((y) => fromHex(y.body_hex!))
          const all = concatBytes(bodies)
          assert.equal(all.length, d.bytes, `${f} ${s.id} ${dir}: stream length`)
          if (d.plaintext_messages.length === 0) continue
          streams++
          const where = `${f} stream ${s.id} ${dir}`
          // The capture's pieces, layer by layer, make up the stream.
          const parts = [
            ...d.plaintext_messages.map((m) => m.hex),
            d.encrypted ? d.encrypted.iv_hex + d.encrypted.ciphertext_hex : '',
            d.raw_after_messages?.hex ?? '',
          ]
          assert.equal(toHex(all), parts.join(''), where)

          const { a, b } = memoryPair()
          b.start(new Sink())
          for (const body of bodies) b.write(body)
          b.end()
          const first = await readMessage(a)
          assert.deepEqual(first.msg, expected(d.plaintext_messages[0]!), where)
          const sink = new Sink()
          if (d.encrypted) {
            // As frp does after Login/LoginResp: the rest of the stream is IV ‖ AES-128-CFB.
            cryptoConn(first.conn, key, provider).start(sink)
            await waitUntil(() => sink.ended)
            const plain = concatBytes(sink.chunks)
            assert.equal(toHex(plain), d.encrypted.decrypted_hex, `${where}: decrypted`)
            assert.deepEqual(new MessageReader().push(plain), d.encrypted.decrypted_messages.map(expected), where)
          } else {
            first.conn.start(sink)
            await waitUntil(() => sink.ended)
            assert.equal(toHex(concatBytes(sink.chunks)), d.raw_after_messages?.hex ?? '', `${where}: raw bytes`)
          }
          a.destroy()
        }
      }
    }
  }
  assert.ok(streams >= 10, `only ${streams} streams replayed`)
})

test('the captured ciphertexts decrypt with cfbStream directly, split at every byte', { timeout: 20_000 }, () => {
  for (const f of FILES) {
    const cap = load(f)
    const key = fromHex(cap.control_key.key_hex)
    for (const s of cap.connections[0]!.streams) {
      for (const dir of ['c2s', 's2c'] as const) {
        const e = s[dir].encrypted
        if (!e) continue
        const ct = fromHex(e.ciphertext_hex)
        for (let cut = 0; cut <= ct.length; cut++) {
          const dec = provider.createAes128Cfb(key, fromHex(e.iv_hex), 'decrypt')
          const pt = concatBytes([dec.update(ct.subarray(0, cut)), dec.update(ct.subarray(cut))])
          assert.equal(toHex(pt), e.decrypted_hex)
        }
        // And our encryption with frp's IV reproduces frp's ciphertext.
        const enc = provider.createAes128Cfb(key, fromHex(e.iv_hex), 'encrypt')
        assert.equal(toHex(enc.update(fromHex(e.decrypted_hex))), e.ciphertext_hex)
      }
    }
  }
})
