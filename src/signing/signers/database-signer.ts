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

/**
 * Runs one signing and audits it: package.signed with what was signed, or package.sign.failure with the
 * reason (an unknown key id included). An audit write that fails is the error itself, never recorded twice.
 */
async function audited(
  audit: AuditTrail | undefined,
  keyId: string,
  signingKey: () => Promise<SealedSigningKey>,
  request: SignRequest,
  sign: () => Promise<string>,
): Promise<string> {
  if (!audit) return sign();
  const packagePath = 'path' in request.package ? request.package.path : undefined;
  let key: SealedSigningKey | undefined;
  try {
    key = await signingKey();
    const document = await sign();
    await audit.record({
      eventType: 'package.signed',
      orgId: key.orgId,
      keyId,
      packagePath,
      packageHash: signedDigest(request, document),
      signerFingerprint: key.fingerprint,
    });
    return document;
  } catch (error) {
    if (!(error instanceof CloacinaSignError && error.code === 'AUDIT_FAILED')) {
      await recordFailure(audit, { eventType: 'package.sign.failure', orgId: key?.orgId, keyId, packagePath, signerFingerprint: key?.fingerprint }, error);
    }
    throw error;
  }
}

export function databaseSigner({ keys, keyId, kek }: DatabaseSignerOptions): DatabaseSigner {
  const trail = typeof keys !== 'function' ? keys.audit : undefined;
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
      return { document: await audited(trail, keyId, signingKey, request, async () => withinTokenBound(kek, signNatively(request, await sealedKey()))) };
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
