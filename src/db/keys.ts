// The signing_keys table: key pairs whose private half is sealed under the KEK (inside Rust; the sealed
// bytes are read here only to be handed back to Rust for signing or re-sealing).
import type { Knex } from 'knex';
import { CloacinaSignError } from '../errors';
import type { Database } from './database';
import { nowIso } from './ids';
import { bytes, optionalText, type Row, text } from './rows';

/** The version of the sealing format rows are written in. */
export const SEAL_VERSION = 1;

/**
 * What a signing key signs: `package` keys sign packages and revocation lists, `audit-checkpoint` keys sign
 * checkpoints of the audit chain. Each signing path refuses a key of the other purpose.
 */
export const KEY_PURPOSES = ['package', 'audit-checkpoint'] as const;
export type KeyPurpose = (typeof KEY_PURPOSES)[number];

export function isKeyPurpose(value: unknown): value is KeyPurpose {
  return (KEY_PURPOSES as readonly unknown[]).includes(value);
}

export interface SigningKeyInfo {
  id: string;
  orgId: string;
  name: string;
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Buffer;
  fingerprint: string;
  createdAt: string;
  revokedAt: string | null;
  /** Identifier of the KEK that seals the private key (not the KEK). */
  kekId: string;
  sealVersion: number;
  purpose: KeyPurpose;
}

/** A signing key with its sealed private key: for the paths that sign, never returned by the API. */
export interface SealedSigningKey extends SigningKeyInfo {
  sealedPrivateKey: Buffer;
}

/** What a new row holds; the private key arrives sealed from Rust. */
export interface NewSigningKey {
  id: string;
  orgId: string;
  name: string;
  publicKey: Buffer;
  fingerprint: string;
  sealedPrivateKey: Buffer;
  kekId: string;
  purpose: KeyPurpose;
}

export function signingKeyFromRow(row: Row): SigningKeyInfo {
  return {
    id: text(row.id),
    orgId: text(row.org_id),
    name: text(row.name),
    publicKey: bytes(row.public_key),
    fingerprint: text(row.fingerprint),
    createdAt: text(row.created_at),
    revokedAt: optionalText(row.revoked_at),
    kekId: text(row.kek_id),
    sealVersion: Number(row.seal_version),
    purpose: purposeOf(row.purpose),
  };
}

/** A stored purpose; a value no writer stores signs nothing. */
function purposeOf(value: unknown): KeyPurpose {
  if (isKeyPurpose(value)) return value;
  throw new CloacinaSignError('INVALID_KEY', `a signing key has the purpose ${JSON.stringify(value)}, which is neither package nor audit-checkpoint`);
}

/** INVALID_KEY unless the key has this purpose: a key signs only what its purpose names. */
export function requirePurpose<K extends SigningKeyInfo>(key: K, purpose: KeyPurpose): K {
  if (key.purpose !== purpose) {
    throw new CloacinaSignError(
      'INVALID_KEY',
      `signing key ${key.id} has the purpose ${key.purpose}, not ${purpose}: it ${key.purpose === 'package' ? 'signs packages' : 'signs audit checkpoints'} only`,
    );
  }
  return key;
}

function sealedFromRow(row: Row): SealedSigningKey {
  return { ...signingKeyFromRow(row), sealedPrivateKey: bytes(row.sealed_private_key) };
}

/** The signing key with this id, without its sealed private key; undefined when there is none. */
export async function readSigningKey(db: Database, keyId: string): Promise<SigningKeyInfo | undefined> {
  const row: Row | undefined = await db.run((knex) => knex('signing_keys').where({ id: keyId }).first());
  return row ? signingKeyFromRow(row) : undefined;
}

/**
 * The package signing key with this id and its sealed private key (the one loader every package signing path
 * uses); null when there is none, INVALID_KEY when it is a key of another purpose.
 */
export async function readSealedSigningKey(db: Database, keyId: string): Promise<SealedSigningKey | null> {
  const row: Row | undefined = await db.run((knex) => knex('signing_keys').where({ id: keyId }).first());
  return row ? requirePurpose(sealedFromRow(row), 'package') : null;
}

/** The audit-checkpoint key with this id and its sealed private key: NOT_FOUND without it, INVALID_KEY for a key of another purpose. */
export async function readSealedCheckpointKey(db: Database, keyId: string): Promise<SealedSigningKey> {
  const row: Row | undefined = await db.run((knex) => knex('signing_keys').where({ id: keyId }).first());
  if (!row) throw new CloacinaSignError('NOT_FOUND', `signing key ${keyId} not found`);
  return requirePurpose(sealedFromRow(row), 'audit-checkpoint');
}

/** An organization's signing keys, active and revoked, oldest first. */
export async function listSigningKeys(db: Database, orgId: string): Promise<SigningKeyInfo[]> {
  const rows = await db.run((knex) => knex('signing_keys').where({ org_id: orgId }).orderBy(['created_at', 'id']));
  return rows.map(signingKeyFromRow);
}

/** The id of a KEK other than `kekId` that seals a stored key, if any: new keys must be sealed like the others. */
export async function otherSealingKekId(trx: Knex.Transaction, kekId: string): Promise<string | undefined> {
  const other = await trx('signing_keys').whereNot({ kek_id: kekId }).first('kek_id');
  return other ? String(other.kek_id) : undefined;
}

/** Stores a new key; a second active key of the same name in the organization is a unique violation. */
export async function insertSigningKey(trx: Knex.Transaction, key: NewSigningKey): Promise<SigningKeyInfo> {
  const now = nowIso();
  const row = {
    id: key.id,
    org_id: key.orgId,
    name: key.name,
    public_key: key.publicKey,
    fingerprint: key.fingerprint,
    sealed_private_key: key.sealedPrivateKey,
    seal_version: SEAL_VERSION,
    kek_id: key.kekId,
    purpose: key.purpose,
    created_at: now,
    updated_at: now,
    revoked_at: null,
  };
  await trx('signing_keys').insert(row);
  return signingKeyFromRow(row);
}

/** Marks a signing key revoked: NOT_FOUND without it, KEY_REVOKED when it already is. */
export async function revokeSigningKeyRow(trx: Knex.Transaction, keyId: string): Promise<SigningKeyInfo> {
  const current: Row | undefined = await trx('signing_keys').where({ id: keyId }).first();
  if (!current) throw new CloacinaSignError('NOT_FOUND', `signing key ${keyId} not found`);
  if (current.revoked_at) throw new CloacinaSignError('KEY_REVOKED', `signing key ${keyId} is already revoked`);
  const now = nowIso();
  await trx('signing_keys').where({ id: keyId }).update({ revoked_at: now, updated_at: now });
  return signingKeyFromRow({ ...current, revoked_at: now });
}

/** Every signing key with its sealed private key, in id order (re-sealing under a new KEK). */
export async function listSealedSigningKeys(db: Database): Promise<SealedSigningKey[]> {
  const rows = await db.run((knex) => knex('signing_keys').select('*').orderBy('id'));
  return rows.map(sealedFromRow);
}

/** A key read inside the transaction that re-seals it (undefined: deleted meanwhile). */
export async function readSealedSigningKeyIn(trx: Knex.Transaction, keyId: string): Promise<SealedSigningKey | undefined> {
  const row: Row | undefined = await trx('signing_keys').where({ id: keyId }).first();
  return row ? sealedFromRow(row) : undefined;
}

/** Replaces the sealed private key if it is still sealed under `fromKekId`; whether this call did. */
export async function resealSigningKey(trx: Knex.Transaction, keyId: string, fromKekId: string, sealed: Buffer, toKekId: string): Promise<boolean> {
  const updated = await trx('signing_keys')
    .where({ id: keyId, kek_id: fromKekId })
    .update({ sealed_private_key: sealed, kek_id: toKekId, updated_at: nowIso() });
  return updated === 1;
}
