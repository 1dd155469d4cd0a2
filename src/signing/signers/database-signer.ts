// A signing key in the database: its sealed private key is opened and used inside Rust only. A revoked
// key never signs, and a KEK other than the one sealing the key is refused before anything is opened.
import { CloacinaSignError } from '../../errors';
import type { DbKeyManager } from '../../keys/db-key-manager';
import { type Kek, kekId, withinTokenBound } from '../../keys/kek';
import type { SigningKeyInfo } from '../../keys/records';
import { type SealedKeyMaterial, signDigestsNatively, signNatively } from '../native-signing';
import type { Signer } from '../signer';

export type SealedSigningKey = SigningKeyInfo & { sealedPrivateKey: Buffer };

/** Where a key's row is read: a key manager, or a lookup resolving null for no such key (the service's cache). */
export type SealedKeySource = DbKeyManager | ((keyId: string) => Promise<SealedSigningKey | null>);

export interface DatabaseSignerOptions {
  keys: SealedKeySource;
  keyId: string;
  kek: Kek;
}

export interface DatabaseSigner extends Signer {
  /** The key's row (read once): who signs, for audit records and answers. */
  signingKey(): Promise<SealedSigningKey>;
  /** Version-1 documents of many SHA-256 digests (lowercase hex), all dated `signedAt`, in one native call: the key is opened once. */
  signDigests(sha256: readonly string[], signedAt: string): Promise<string[]>;
}

async function readKey(keys: SealedKeySource, keyId: string): Promise<SealedSigningKey> {
  if (typeof keys !== 'function') return keys.sealedSigningKey(keyId);
  const key = await keys(keyId);
  if (!key) throw new CloacinaSignError('NOT_FOUND', `signing key ${keyId} not found`);
  return key;
}

export function databaseSigner({ keys, keyId, kek }: DatabaseSignerOptions): DatabaseSigner {
  let row: Promise<SealedSigningKey> | undefined;
  const signingKey = () => {
    row ??= readKey(keys, keyId);
    return row;
  };
  /** The key, once checked: never a revoked key, never opened under another KEK. */
  const sealedKey = async (): Promise<SealedKeyMaterial> => {
    const key = await signingKey();
    if (key.revokedAt) throw new CloacinaSignError('KEY_REVOKED', `signing key ${keyId} was revoked at ${key.revokedAt} and cannot sign`);
    if (key.kekId !== kekId(kek)) {
      throw new CloacinaSignError('KEY_UNSEAL_FAILED', `the key-encryption key (id ${kekId(kek)}) is not the one sealing key ${keyId} (id ${key.kekId})`);
    }
    return { kek, sealedPrivateKey: key.sealedPrivateKey, binding: { keyId, orgId: key.orgId }, publicKey: key.publicKey };
  };
  return {
    signingKey,
    async sign(request) {
      const sealed = await sealedKey();
      return { document: await withinTokenBound(kek, signNatively(request, sealed)) };
    },
    async signDigests(sha256, signedAt) {
      const sealed = await sealedKey();
      return withinTokenBound(kek, signDigestsNatively(sha256, sealed, signedAt));
    },
  };
}
