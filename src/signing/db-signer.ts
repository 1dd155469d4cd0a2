// Signing with a database key, audited: package.signed, or package.sign.failure with the reason. The key
// checks and the signing itself are the database signer's; signatures are kept by the package store.
import { type AuditTrail, recordFailure } from '../audit/audit-trail';
import { findSignatures, type StoredSignature, storeSignature } from '../db/packages';
import { CloacinaSignError } from '../errors';
import type { SignatureInfo } from '../formats/v1';
import type { DbKeyManager } from '../keys/db-key-manager';
import type { Kek } from '../keys/kek';
import { signPackage, type SignedStatement } from './sign';
import { type DatabaseSigner, databaseSigner } from './signers/database-signer';
import type { StatementOptions } from './statement';

export interface DbSignResult extends SignatureInfo {
  keyId: string;
  orgId: string;
  /** Set when the signature was stored. */
  signatureId?: string;
}

export class DbPackageSigner {
  /** The key manager's audit trail: rows in its database, plus its extra sinks. */
  readonly audit: AuditTrail;

  constructor(readonly keys: DbKeyManager) {
    this.audit = keys.audit;
  }

  /** Signs with a stored key (KEY_REVOKED if revoked, KEY_UNSEAL_FAILED on a wrong KEK); `store` keeps the signature. */
  async signPackageWithDbKey(packagePath: string, keyId: string, kek: Kek, store = false): Promise<DbSignResult> {
    const signer = databaseSigner({ keys: this.keys, keyId, kek, audit: false });
    return this.audited(packagePath, keyId, signer, async (orgId) => {
      const signed = await signPackage(packagePath, signer);
      const info: SignatureInfo = {
        packageHash: signed.packageHash,
        keyFingerprint: signed.keyFingerprint,
        signature: signed.signature,
        signedAt: signed.signedAt,
      };
      const stored = store ? await this.storeSignature(info, { packagePath, signingKeyId: keyId }) : undefined;
      return { packageHash: info.packageHash, result: { ...info, keyId, orgId, ...(stored ? { signatureId: stored.id } : {}) } };
    });
  }

  /**
   * Signs a version-2 statement about the package with a stored key (the private key is unsealed and used
   * inside Rust only). Version-2 signatures travel as `.sig` files: the database stores version-1 ones.
   */
  async signStatementWithDbKey(
    packagePath: string,
    keyId: string,
    kek: Kek,
    statement: StatementOptions,
  ): Promise<SignedStatement & { keyId: string; orgId: string }> {
    const signer = databaseSigner({ keys: this.keys, keyId, kek, audit: false });
    return this.audited(packagePath, keyId, signer, async (orgId) => {
      const signed = await signPackage(packagePath, signer, { format: 'v2', statement });
      return { packageHash: signed.statement.digest, result: { ...signed, keyId, orgId } };
    });
  }

  /** Runs the signing and audits it: package.signed, or package.sign.failure with the reason. */
  private async audited<T>(
    packagePath: string,
    keyId: string,
    signer: DatabaseSigner,
    sign: (orgId: string) => Promise<{ packageHash: string; result: T }>,
  ): Promise<T> {
    let orgId: string | undefined;
    let fingerprint: string | undefined;
    try {
      const key = await signer.signingKey();
      ({ orgId, fingerprint } = key);
      const { packageHash, result } = await sign(key.orgId);
      await this.audit.record({ eventType: 'package.signed', orgId, keyId, packagePath, packageHash, signerFingerprint: fingerprint });
      return result;
    } catch (error) {
      if (!(error instanceof CloacinaSignError && error.code === 'AUDIT_FAILED')) {
        await recordFailure(this.audit, { eventType: 'package.sign.failure', orgId, keyId, packagePath, signerFingerprint: fingerprint }, error);
      }
      throw error;
    }
  }

  /** Stores a (validated) signature; storing the same signature twice returns the first row. */
  async storeSignature(info: SignatureInfo, options: { packagePath?: string; signingKeyId?: string } = {}): Promise<StoredSignature> {
    const stored = await storeSignature(this.keys.db, info, { name: options.packagePath, nameConflict: 'keep', signingKeyId: options.signingKeyId });
    return stored.signature;
  }

  /** Every stored signature of a package, in the fixed verification order (signed_at, then id). */
  async findSignatures(packageHash: string): Promise<StoredSignature[]> {
    return findSignatures(this.keys.db, packageHash);
  }
}
