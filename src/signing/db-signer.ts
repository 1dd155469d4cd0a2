// Signing with a database key for the CLI: the key checks, the signing and its audit row are the database
// signer's (signers/database-signer.ts); signatures are kept by the package store.
import type { AuditTrail } from '../audit/audit-trail';
import { findSignatures, type StoredSignature, storeSignature } from '../db/packages';
import type { SignatureInfo } from '../formats/v1';
import type { DbKeyManager } from '../keys/db-key-manager';
import type { Kek } from '../keys/kek';
import { signPackage, type SignedStatement } from './sign';
import { databaseSigner } from './signers/database-signer';
import type { StatementOptions } from './statement';

export interface DbSignResult extends SignatureInfo {
  /** The canonical document (what the `.sig` file holds, without its newline). */
  document: string;
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
    const signer = databaseSigner({ keys: this.keys, keyId, kek });
    const signed = await signPackage(packagePath, signer);
    const { orgId } = await signer.signingKey();
    const info: SignatureInfo = {
      packageHash: signed.packageHash,
      keyFingerprint: signed.keyFingerprint,
      signature: signed.signature,
      signedAt: signed.signedAt,
    };
    const stored = store ? await this.storeSignature(info, { packagePath, signingKeyId: keyId }) : undefined;
    return { ...info, document: signed.document, keyId, orgId, ...(stored ? { signatureId: stored.id } : {}) };
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
    const signer = databaseSigner({ keys: this.keys, keyId, kek });
    const signed = await signPackage(packagePath, signer, { format: 'v2', statement });
    return { ...signed, keyId, orgId: (await signer.signingKey()).orgId };
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
