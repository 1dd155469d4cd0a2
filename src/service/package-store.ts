// Storing a signed package (its record and its signature) with the audit row of the request in the same
// transaction: the row commits with the change or neither exists. The same rows as
// DbPackageSigner.storeSignature writes (storing the same signature twice keeps the first row).
import type { DatabaseAuditSink } from '../audit/database-sink';
import type { AuditEvent } from '../audit/events';
import type { Knex } from 'knex';
import type { Database } from '../db/database';
import { newId, nowIso } from '../db/ids';
import { writeTransaction } from '../db/transaction';
import { CloacinaSignError } from '../errors';
import { checkName } from '../names';
import type { DocumentInfo } from '../native';
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
    await checkSigningKey(trx, options.signingKeyId);
    const pkg = await packageRow(trx, document.packageHash, options);
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
    return { packageId: pkg.id, signatureId, name: pkg.name };
  });
}

/**
 * A version-2 document (a signed statement), stored in package_statements beside the package record, with
 * the audit row in the same transaction. package_signatures, which Cloacina reads, keeps version 1 only.
 * `packageHash` is the package's SHA-256 (how packages are found), whatever digest the statement names.
 */
export async function storeSignedStatement(
  db: Database,
  rows: DatabaseAuditSink,
  document: DocumentInfo,
  options: Omit<StoreOptions, 'event'> & { packageHash: string; event?: AuditEvent },
): Promise<StoredPackage> {
  const statement = document.statement;
  if (document.version !== 2 || !statement || !document.keyFingerprint) throw new CloacinaSignError('INVALID_INPUT', 'not a version-2 signature document');
  const { signature } = JSON.parse(document.canonical) as { signature: string };
  return writeTransaction(db, async (trx) => {
    await checkSigningKey(trx, options.signingKeyId);
    const pkg = await packageRow(trx, options.packageHash, options);
    const identity = { package_hash: options.packageHash, key_fingerprint: document.keyFingerprint, signature };
    const existing = await trx('package_statements').where(identity).first('id');
    let signatureId: string;
    if (existing) {
      signatureId = String(existing.id);
    } else {
      signatureId = newId();
      await trx('package_statements').insert({
        id: signatureId,
        package_id: pkg.id,
        ...identity,
        digest_algorithm: statement.digestAlgorithm,
        digest: statement.digest,
        name: statement.name,
        version: statement.version,
        issued_at: statement.issuedAt,
        expires_at: statement.expiresAt ?? null,
        document: document.canonical,
        signing_key_id: options.signingKeyId ?? null,
        created_at: nowIso(),
      });
    }
    // Without an event when the signing was audited already (DbPackageSigner records package.signed).
    if (options.event) await rows.insertIn(trx, options.event);
    return { packageId: pkg.id, signatureId, name: pkg.name };
  });
}

/** The database key that made the signature, if any: it must exist and still be active. */
async function checkSigningKey(trx: Knex.Transaction, signingKeyId: string | null | undefined): Promise<void> {
  if (!signingKeyId) return;
  const key = await trx('signing_keys').where({ id: signingKeyId }).first('revoked_at');
  if (!key) throw new CloacinaSignError('NOT_FOUND', `signing key ${signingKeyId} not found`);
  if (key.revoked_at) throw new CloacinaSignError('KEY_REVOKED', `signing key ${signingKeyId} was revoked`);
}

/** The package's record, created or named as `options` say (see StoreOptions.nameConflict). */
async function packageRow(
  trx: Knex.Transaction,
  packageHash: string,
  options: Pick<StoreOptions, 'name' | 'nameConflict'>,
): Promise<{ id: string; name: string | null }> {
  // Every caller's name (an upload's, the CLI's) under the one name rule, as stored.
  const name = options.name === undefined || options.name === null ? null : checkName(options.name, 'a package name');
  const pkg = await trx('packages').where({ package_hash: packageHash }).first('id', 'package_name');
  if (!pkg) {
    const id = newId();
    await trx('packages').insert({ id, package_hash: packageHash, package_name: name, created_at: nowIso() });
    return { id, name };
  }
  const stored = pkg.package_name === null || pkg.package_name === undefined ? null : String(pkg.package_name);
  if (name === null || stored === name || (stored !== null && options.nameConflict === 'keep')) return { id: String(pkg.id), name: stored };
  if (stored !== null && options.nameConflict !== 'rename') {
    throw new CloacinaSignError(
      'ALREADY_EXISTS',
      `this package (sha256 ${packageHash}) is stored as ${JSON.stringify(stored)}, not ${JSON.stringify(name)}: nothing was stored; rename it explicitly or keep its name`,
    );
  }
  await trx('packages').where({ id: pkg.id }).update({ package_name: name });
  return { id: String(pkg.id), name };
}
