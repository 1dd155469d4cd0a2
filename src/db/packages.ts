// The package store: a package's record (found by its SHA-256) and its signatures, version 1 in
// package_signatures (the table Cloacina reads) and version 2 in package_statements. Every writer goes
// through here: signing with --store, the CLI's upload, the signing service's sign and upload routes.
// An audit event given is written in the same transaction: the row commits with the change or neither exists.
import type { Knex } from 'knex';
import type { DatabaseAuditSink } from '../audit/database-sink';
import type { AuditEvent } from '../audit/events';
import { CloacinaSignError } from '../errors';
import { DetachedSignature, type SignatureInfo } from '../formats/v1';
import type { Row } from './rows';
import { checkName } from '../names';
import type { DocumentInfo } from '../native';
import type { Database } from './database';
import { newId, nowIso } from './ids';
import { writeTransaction } from './transaction';

/** A stored version-1 signature, as package_signatures holds it. */
export interface StoredSignature extends SignatureInfo {
  id: string;
  signingKeyId: string | null;
  createdAt: string;
}

export interface StoredPackage {
  packageId: string;
  signatureId: string;
  /** The package's name as stored: the one given, unless `nameConflict: 'keep'` kept an older one. */
  name: string | null;
}

export type NameConflict = 'refuse' | 'rename' | 'keep';

/** An audit event written with the change, in its transaction. */
export interface StoredWithEvent {
  rows: DatabaseAuditSink;
  event: AuditEvent;
}

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
  audit?: StoredWithEvent;
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

/**
 * Stores a version-1 signature (validated as a reader would first) and its package's record; storing the
 * same signature twice keeps the first row.
 */
export async function storeSignature(db: Database, info: SignatureInfo, options: StoreOptions = {}): Promise<StoredPackage & { signature: StoredSignature }> {
  const document = info instanceof DetachedSignature ? info : DetachedSignature.fromSignatureInfo(info);
  return writeTransaction(db, async (trx) => {
    await checkSigningKey(trx, options.signingKeyId);
    const pkg = await packageRow(trx, document.packageHash, options);
    const identity = { package_hash: document.packageHash, key_fingerprint: document.keyFingerprint, signature: document.signature };
    let row: Row | undefined = await trx('package_signatures').where(identity).first();
    if (!row) {
      row = {
        id: newId(),
        package_id: pkg.id,
        ...identity,
        signed_at: document.signedAt,
        signing_key_id: options.signingKeyId ?? null,
        created_at: nowIso(),
      };
      await trx('package_signatures').insert(row);
    }
    if (options.audit) await options.audit.rows.insertIn(trx, options.audit.event);
    const signature = storedFromRow(row);
    return { packageId: pkg.id, signatureId: signature.id, name: pkg.name, signature };
  });
}

/**
 * @internal
 * Stores a version-2 document (a signed statement) in package_statements beside the package record.
 * `packageHash` is the package's SHA-256 (how packages are found), whatever digest the statement names.
 */
export async function storeStatement(db: Database, document: DocumentInfo, options: StoreOptions & { packageHash: string }): Promise<StoredPackage> {
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
    if (options.audit) await options.audit.rows.insertIn(trx, options.audit.event);
    return { packageId: pkg.id, signatureId, name: pkg.name };
  });
}

/** Every stored version-1 signature of a package, in the fixed verification order (signed_at, then id). */
export async function findSignatures(db: Database, packageHash: string): Promise<StoredSignature[]> {
  const rows = await db.run((knex) => knex('package_signatures').where({ package_hash: packageHash.toLowerCase() }).orderBy(['signed_at', 'id']));
  return rows.map(storedFromRow);
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

/**
 * @internal
 * Stores an uploaded (already verified) signature document with its package's record: version 1 in
 * package_signatures, version 2 in package_statements. The CLI's upload and the service's route both store here.
 */
export async function storeDocument(db: Database, document: DocumentInfo, options: StoreOptions & { packageHash: string }): Promise<StoredPackage> {
  if (document.version === 2) return storeStatement(db, document, options);
  const { signature, ...stored } = await storeSignature(db, DetachedSignature.parse(document.canonical), options);
  return stored;
}
