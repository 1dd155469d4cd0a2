// Signing with a database key: the sealed private key is opened and used inside Rust only.
// Signatures can be stored in package_signatures, where verification with the Database source finds them.
import { type AuditTrail, recordFailure } from '../audit/audit-trail';
import { newId, nowIso } from '../db/ids';
import type { SigningKeyInfo } from '../db/keys';
import type { Row } from '../db/rows';
import { writeTransaction } from '../db/transaction';
import { CloacinaSignError } from '../errors';
import type { DbKeyManager } from '../keys/db-key-manager';
import { type Kek, kekId } from '../keys/kek';
import { native } from '../native';
import { DetachedSignature, type SignatureInfo } from './detached-signature';
import { rfc3339Now } from './sign';
import { type SignedStatementDocument, signedStatementOf, type StatementOptions, statementInput } from './statement';

export interface StoredSignature extends SignatureInfo {
  id: string;
  signingKeyId: string | null;
  createdAt: string;
}

export interface DbSignResult extends SignatureInfo {
  keyId: string;
  orgId: string;
  /** Set when the signature was stored. */
  signatureId?: string;
}

function storedFromRow(row: Row): StoredSignature {
  return {
    id: String(row.id),
    packageHash: String(row.package_hash),
    keyFingerprint: String(row.key_fingerprint),
    signature: String(row.signature),
    signedAt: String(row.signed_at),
    signingKeyId: row.signing_key_id ? String(row.signing_key_id) : null,
    createdAt: String(row.created_at),
  };
}

export class DbPackageSigner {
  /** The key manager's audit trail: rows in its database, plus its extra sinks. */
  readonly audit: AuditTrail;

  constructor(readonly keys: DbKeyManager) {
    this.audit = keys.audit;
  }

  /** Signs with a stored key (KEY_REVOKED if revoked, KEY_UNSEAL_FAILED on a wrong KEK); `store` keeps the signature. */
  async signPackageWithDbKey(packagePath: string, keyId: string, kek: Kek, store = false): Promise<DbSignResult> {
    return this.withStoredKey(packagePath, keyId, kek, async (key, binding) => {
      const signed = await native.signFileWithSealedKey(packagePath, kek, key.sealedPrivateKey, binding, key.publicKey);
      const info: SignatureInfo = { ...signed, signedAt: rfc3339Now() };
      const stored = store ? await this.storeSignature(info, { packagePath, signingKeyId: keyId }) : undefined;
      return { packageHash: info.packageHash, result: { ...info, keyId, orgId: key.orgId, ...(stored ? { signatureId: stored.id } : {}) } };
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
  ): Promise<SignedStatementDocument & { keyId: string; orgId: string }> {
    return this.withStoredKey(packagePath, keyId, kek, async (key, binding) => {
      const document = await native.signStatementFileWithSealedKey(packagePath, kek, key.sealedPrivateKey, binding, key.publicKey, statementInput(statement));
      const signed = signedStatementOf(document);
      return { packageHash: signed.statement.digest, result: { ...signed, keyId, orgId: key.orgId } };
    });
  }

  /** Checks the key, runs the signing and audits it: package.signed, or package.sign.failure with the reason. */
  private async withStoredKey<T>(
    packagePath: string,
    keyId: string,
    kek: Kek,
    sign: (key: SigningKeyInfo & { sealedPrivateKey: Buffer }, binding: { keyId: string; orgId: string }) => Promise<{ packageHash: string; result: T }>,
  ): Promise<T> {
    let orgId: string | undefined;
    let fingerprint: string | undefined;
    try {
      const key = await this.keys.sealedSigningKey(keyId);
      orgId = key.orgId;
      fingerprint = key.fingerprint;
      if (key.revokedAt) throw new CloacinaSignError('KEY_REVOKED', `signing key ${keyId} was revoked at ${key.revokedAt} and cannot sign`);
      if (key.kekId !== kekId(kek)) {
        throw new CloacinaSignError('KEY_UNSEAL_FAILED', `the key-encryption key (id ${kekId(kek)}) is not the one sealing key ${keyId} (id ${key.kekId})`);
      }
      const { packageHash, result } = await sign(key, { keyId, orgId: key.orgId });
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
    const document = DetachedSignature.fromSignatureInfo(info);
    return writeTransaction(this.keys.db, async (trx) => {
      if (options.signingKeyId) {
        const key = await trx('signing_keys').where({ id: options.signingKeyId }).first('revoked_at');
        if (!key) throw new CloacinaSignError('NOT_FOUND', `signing key ${options.signingKeyId} not found`);
        if (key.revoked_at) throw new CloacinaSignError('KEY_REVOKED', `signing key ${options.signingKeyId} was revoked`);
      }
      const identity = { package_hash: document.packageHash, key_fingerprint: document.keyFingerprint, signature: document.signature };
      const existing = await trx('package_signatures').where(identity).first();
      if (existing) return storedFromRow(existing);
      let pkg = await trx('packages').where({ package_hash: document.packageHash }).first('id');
      if (!pkg) {
        pkg = { id: newId() };
        await trx('packages').insert({ id: pkg.id, package_hash: document.packageHash, package_name: options.packagePath ?? null, created_at: nowIso() });
      }
      const row = {
        id: newId(),
        package_id: pkg.id,
        ...identity,
        signed_at: document.signedAt,
        signing_key_id: options.signingKeyId ?? null,
        created_at: nowIso(),
      };
      await trx('package_signatures').insert(row);
      return storedFromRow(row);
    });
  }

  /** Every stored signature of a package, in the fixed verification order (signed_at, then id). */
  async findSignatures(packageHash: string): Promise<StoredSignature[]> {
    return findSignatures(this.keys.db, packageHash);
  }
}

export async function findSignatures(db: DbKeyManager['db'], packageHash: string): Promise<StoredSignature[]> {
  const rows = await db.run((knex) => knex('package_signatures').where({ package_hash: packageHash.toLowerCase() }).orderBy(['signed_at', 'id']));
  return rows.map(storedFromRow);
}
