// A signing key in the database: its sealed private key is opened and used inside Rust only. A revoked
// key never signs, and a KEK other than the one sealing the key is refused before anything is opened.
// Signing with a key manager's key is a key operation, so it is audited there (package.signed, or
// package.sign.failure with the reason); the signing service, which passes a lookup, audits in its route.
import { type AuditTrail, recordFailure } from '../../audit/audit-trail';
import { CloacinaSignError } from '../../errors';
import { DetachedSignature } from '../../formats/v1';
import { signedStatementOf } from '../../formats/v2';
import type { DbKeyManager } from '../../keys/db-key-manager';
import { type Kek, kekId, withinTokenBound } from '../../keys/kek';
import type { SealedSigningKey } from '../../db/keys';
import { type SealedKeyMaterial, signDigestsNatively, signNatively } from '../native-signing';
import type { Signer, SignRequest } from '../signer';

export type { SealedSigningKey };

/** Where a key's row is read: a key manager, or a lookup resolving null for no such key (the service's cache). */
export type SealedKeySource = DbKeyManager | ((keyId: string) => Promise<SealedSigningKey | null>);

export interface DatabaseSignerOptions {
  keys: SealedKeySource;
  keyId: string;
  kek: Kek;
  /** @internal Off for a caller that audits the signing itself. On by default with a key manager. */
  audit?: boolean;
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

/** What a signed document is about: the SHA-256 of a version-1 signature, the statement's digest of a version-2 one. */
function signedDigest(request: SignRequest, document: string): string {
  return request.document.version === 2 ? signedStatementOf(document).statement.digest : DetachedSignature.parse(document).packageHash;
}

async function audited(audit: AuditTrail | undefined, key: SealedSigningKey, request: SignRequest, sign: () => Promise<string>): Promise<string> {
  if (!audit) return sign();
  const packagePath = 'path' in request.package ? request.package.path : undefined;
  const event = { orgId: key.orgId, keyId: key.id, packagePath, signerFingerprint: key.fingerprint };
  let document: string;
  try {
    document = await sign();
  } catch (error) {
    await recordFailure(audit, { eventType: 'package.sign.failure', ...event }, error);
    throw error;
  }
  await audit.record({ eventType: 'package.signed', ...event, packageHash: signedDigest(request, document) });
  return document;
}

export function databaseSigner({ keys, keyId, kek, audit = true }: DatabaseSignerOptions): DatabaseSigner {
  const trail = audit && typeof keys !== 'function' ? keys.audit : undefined;
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
      const key = await signingKey();
      return { document: await audited(trail, key, request, async () => withinTokenBound(kek, signNatively(request, await sealedKey()))) };
    },
    async signDigests(sha256, signedAt) {
      const documents = await withinTokenBound(kek, signDigestsNatively(sha256, await sealedKey(), signedAt));
      if (trail) {
        const key = await signingKey();
        for (const packageHash of sha256) {
          await trail.record({ eventType: 'package.signed', orgId: key.orgId, keyId: key.id, packageHash, signerFingerprint: key.fingerprint });
        }
      }
      return documents;
    },
  };
}
