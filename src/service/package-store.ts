// Storing a signed package (its record and its signature) with the audit row of the request in the same
// transaction: the row commits with the change or neither exists. The same rows as
// DbPackageSigner.storeSignature writes (storing the same signature twice keeps the first row).
import type { DatabaseAuditSink } from '../audit/database-sink';
import type { AuditEvent } from '../audit/events';
import type { Database } from '../db/database';
import { newId, nowIso } from '../db/ids';
import { writeTransaction } from '../db/transaction';
import { CloacinaSignError } from '../errors';
import type { DetachedSignature } from '../signing/detached-signature';

export interface StoredPackage {
  packageId: string;
  signatureId: string;
  /** The package's name as stored: the one given, unless `nameConflict: 'keep'` kept an older one. */
  name: string | null;
}

export type NameConflict = 'refuse' | 'rename' | 'keep';

export interface StoreOptions {
  /** The package's name (an upload's `?name=`); stored when the package has none yet. */
  name?: string | null;
  /**
   * When the package is stored under another name already: `refuse` (default) with ALREADY_EXISTS, so a
   * name given is never silently dropped; `rename` the record; `keep` the stored name (for a default name,
   * such as the file name, that nobody asked for).
   */
  nameConflict?: NameConflict;
  /** The database key that made the signature: it must still be active. */
  signingKeyId?: string | null;
  /** Written in the same transaction. */
  event: AuditEvent;
}

export async function storeSignedPackage(db: Database, rows: DatabaseAuditSink, document: DetachedSignature, options: StoreOptions): Promise<StoredPackage> {
  return writeTransaction(db, async (trx) => {
    if (options.signingKeyId) {
      const key = await trx('signing_keys').where({ id: options.signingKeyId }).first('revoked_at');
      if (!key) throw new CloacinaSignError('NOT_FOUND', `signing key ${options.signingKeyId} not found`);
      if (key.revoked_at) throw new CloacinaSignError('KEY_REVOKED', `signing key ${options.signingKeyId} was revoked`);
    }
    const name = options.name ?? null;
    let pkg = await trx('packages').where({ package_hash: document.packageHash }).first('id', 'package_name');
    if (!pkg) {
      pkg = { id: newId(), package_name: name };
      await trx('packages').insert({ id: pkg.id, package_hash: document.packageHash, package_name: name, created_at: nowIso() });
    } else if (name !== null && pkg.package_name !== name && (pkg.package_name === null || options.nameConflict !== 'keep')) {
      if (pkg.package_name !== null && options.nameConflict !== 'rename') {
        throw new CloacinaSignError(
          'ALREADY_EXISTS',
          `this package (sha256 ${document.packageHash}) is stored as ${JSON.stringify(pkg.package_name)}, not ${JSON.stringify(name)}: nothing was stored; rename it explicitly or keep its name`,
        );
      }
      await trx('packages').where({ id: pkg.id }).update({ package_name: name });
      pkg.package_name = name;
    }
    const identity = { package_hash: document.packageHash, key_fingerprint: document.keyFingerprint, signature: document.signature };
    const existing = await trx('package_signatures').where(identity).first('id');
    let signatureId: string;
    if (existing) {
      signatureId = String(existing.id);
    } else {
      signatureId = newId();
      await trx('package_signatures').insert({
        id: signatureId,
        package_id: pkg.id,
        ...identity,
        signed_at: document.signedAt,
        signing_key_id: options.signingKeyId ?? null,
        created_at: nowIso(),
      });
    }
    await rows.insertIn(trx, options.event);
    return { packageId: String(pkg.id), signatureId, name: pkg.package_name === null || pkg.package_name === undefined ? null : String(pkg.package_name) };
  });
}
