import { readFile, writeFile } from 'node:fs/promises'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { UsageError } from './node-config.ts'

/**
 * The node's private key from `path` (protobuf-encoded, as hex text), or a new Ed25519 key
 * written there (owner-only) when the file does not exist: a stable peer id across runs,
 * which RPs need to name one another in `--backbone`.
 */
export async function loadOrCreateKey(path: string): Promise<PrivateKey> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new UsageError(`cannot read key file ${path}: ${(err as Error).message}`)
    }
    const key = await generateKeyPair('Ed25519')
    // 'wx': never overwrite a key another process created meanwhile.
    await writeFile(path, `${Buffer.from(privateKeyToProtobuf(key)).toString('hex')}\n`, {
      mode: 0o600,
      flag: 'wx',
    })
    return key
  }
  try {
    return privateKeyFromProtobuf(Buffer.from(text.trim(), 'hex'))
  } catch (err) {
    throw new UsageError(`key file ${path} holds no private key: ${(err as Error).message}`)
  }
}
