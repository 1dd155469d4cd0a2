// The trusted_keys table: public keys an organization trusts directly (grants extend them to other
// organizations; see trust/acl.ts).
import type { Knex } from 'knex';
import { CloacinaSignError } from '../errors';
import type { Database } from './database';
import { newId, nowIso } from './ids';
import { bytes, optionalText, type Row, text } from './rows';

export interface TrustedKeyInfo {
  id: string;
  /** The organization whose row this is (for inherited keys, the org that trusts it directly). */
  orgId: string;
  name: string | null;
  /**
   * The stored form: raw 32 bytes for Ed25519, SPKI DER (91 bytes) for ECDSA P-256 (cosign keys); the
   * length alone tells them apart (publicKeyAlgorithm).
   */
  publicKey: Buffer;
  /** SHA-256 of `publicKey`. */
  fingerprint: string;
  createdAt: string;
  revokedAt: string | null;
}

export function trustedKeyFromRow(row: Row): TrustedKeyInfo {
  return {
    id: text(row.id),
    orgId: text(row.org_id),
    name: optionalText(row.name),
    publicKey: bytes(row.public_key),
    fingerprint: text(row.fingerprint),
    createdAt: text(row.created_at),
    revokedAt: optionalText(row.revoked_at),
  };
}

/** The trusted key with this id; undefined when there is none. */
export async function readTrustedKey(db: Database, keyId: string): Promise<TrustedKeyInfo | undefined> {
  const row: Row | undefined = await db.run((knex) => knex('trusted_keys').where({ id: keyId }).first());
  return row ? trustedKeyFromRow(row) : undefined;
}

/** Stores a trusted key (its stored form and fingerprint computed by the caller); trusting it twice is a unique violation. */
export async function insertTrustedKey(
  trx: Knex.Transaction,
  key: { orgId: string; name: string | null; publicKey: Buffer; fingerprint: string },
): Promise<TrustedKeyInfo> {
  const row = {
    id: newId(),
    org_id: key.orgId,
    name: key.name,
    public_key: key.publicKey,
    fingerprint: key.fingerprint,
    created_at: nowIso(),
    revoked_at: null,
  };
  await trx('trusted_keys').insert(row);
  return trustedKeyFromRow(row);
}

/** Marks a trusted key revoked: NOT_FOUND without it, KEY_REVOKED when it already is. */
export async function revokeTrustedKeyRow(trx: Knex.Transaction, keyId: string): Promise<TrustedKeyInfo> {
  const current: Row | undefined = await trx('trusted_keys').where({ id: keyId }).first();
  if (!current) throw new CloacinaSignError('NOT_FOUND', `trusted key ${keyId} not found`);
  if (current.revoked_at) throw new CloacinaSignError('KEY_REVOKED', `trusted key ${keyId} is already revoked`);
  const now = nowIso();
  await trx('trusted_keys').where({ id: keyId }).update({ revoked_at: now });
  return trustedKeyFromRow({ ...current, revoked_at: now });
}

/** The organization's own trusted-key rows, active and revoked (not inherited ones), oldest first. */
export async function listTrustedKeyRows(db: Database, orgId: string): Promise<TrustedKeyInfo[]> {
  const rows = await db.run((knex) => knex('trusted_keys').where({ org_id: orgId }).orderBy(['created_at', 'id']));
  return rows.map(trustedKeyFromRow);
}
