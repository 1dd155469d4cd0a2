// Keys, organizations and trust ACLs in the database. Private keys are generated and sealed inside Rust
// (AES-256-GCM under the KEK, bound to key id + org id + public key) and never become JS values.
import type { Knex } from 'knex';
import { auditEvent, AuditTrail, writeAll } from '../audit/audit-trail';
import { auditToDatabase, type DatabaseAuditSink } from '../audit/database-sink';
import type { AuditEvent, AuditEventInput } from '../audit/events';
import type { AuditSink } from '../audit/sink';
import type { Database } from '../db/database';
import { isUniqueViolation } from '../db/errors';
import { newId, nowIso } from '../db/ids';
import { checkOrganizationName, findOrganization } from '../db/organizations';
import { checkName } from '../names';
import { writeTransaction } from '../db/transaction';
import { CloacinaSignError } from '../errors';
import { native } from '../native';
import type { EffectiveTrustedKey } from '../trust/acl';
import { trustCacheFor } from '../trust/trust-cache';
import { type Kek, kekId } from './kek';
import { importPublicKey, type KeyInput, publicKeyFingerprint, publicKeyToPem } from './keypair';
import {
  type ExportedPublicKey,
  grantFromRow,
  type Organization,
  organizationFromRow,
  type Row,
  type SigningKeyInfo,
  signingKeyFromRow,
  type TrustedKeyInfo,
  trustedKeyFromRow,
  type TrustGrant,
} from './records';
import { rewrapAll, type RewrapResult } from './rewrap';

export const SEAL_VERSION = 1;

export interface DbKeyManagerOptions {
  /** Where audit events go besides the database's own audit_events rows (for example auditToStream(process.stderr)). */
  audit?: AuditSink | readonly AuditSink[];
}

export class DbKeyManager {
  /** Every event: a row in this database, plus the extra sinks. */
  readonly audit: AuditTrail;
  private readonly rows: DatabaseAuditSink;
  private readonly extraSinks: readonly AuditSink[];

  constructor(
    readonly db: Database,
    options: DbKeyManagerOptions = {},
  ) {
    this.rows = auditToDatabase(db) as DatabaseAuditSink;
    this.extraSinks = options.audit === undefined ? [] : Array.isArray(options.audit) ? [...options.audit] : [options.audit as AuditSink];
    this.audit = new AuditTrail([this.rows, ...this.extraSinks]);
  }

  // ---- organizations -------------------------------------------------------------------------

  /**
   * Names are stored trimmed and Unicode NFC-normalized, 1 to 255 characters; INVALID_INPUT for control
   * characters (C0, DEL, C1, U+2028/U+2029), bidirectional controls (U+202A-U+202E, U+2066-U+2069,
   * U+200E, U+200F, U+061C) and names that parse as a UUID (ids are UUIDs; see findOrganization).
   */
  async createOrganization(name: string): Promise<Organization> {
    const row = { id: newId(), name: checkOrganizationName(name), created_at: nowIso() };
    await this.write(`an organization named ${JSON.stringify(row.name)} already exists`, async (trx) => {
      await trx('organizations').insert(row);
      return [];
    });
    return organizationFromRow(row);
  }

  async listOrganizations(): Promise<Organization[]> {
    const rows = await this.db.run((knex) => knex('organizations').select('*').orderBy(['name', 'id']));
    return rows.map(organizationFromRow);
  }

  /** An organization by id (an argument that parses as a UUID) or else by name (trimmed, NFC); NOT_FOUND otherwise. */
  async getOrganization(idOrName: string): Promise<Organization> {
    return findOrganization(this.db, idOrName);
  }

  // ---- signing keys --------------------------------------------------------------------------

  /** Generates a key pair in Rust and stores it sealed under `kek`. ALREADY_EXISTS if the org has an active key of that name. */
  async createSigningKey(orgId: string, name: string, kek: Kek): Promise<SigningKeyInfo> {
    const keyName = checkName(name, 'a key name');
    const kid = kekId(kek);
    const id = newId();
    const row = await this.write(`organization ${orgId} already has an active signing key named "${keyName}"`, async (trx) => {
      await requireOrg(trx, orgId);
      const other = await trx('signing_keys').whereNot({ kek_id: kid }).first('id', 'kek_id');
      if (other) {
        throw new CloacinaSignError(
          'KEY_UNSEAL_FAILED',
          `the key-encryption key (id ${kid}) is not the one sealing the existing keys (id ${other.kek_id}): wrong KEK, or run \`keys rewrap\` first`,
        );
      }
      const sealed = await native.generateSealedKeypairUnder(kek, { keyId: id, orgId });
      const now = nowIso();
      const inserted = {
        id,
        org_id: orgId,
        name: keyName,
        public_key: sealed.publicKey,
        fingerprint: sealed.fingerprint,
        sealed_private_key: sealed.sealedPrivateKey,
        seal_version: SEAL_VERSION,
        kek_id: kid,
        created_at: now,
        updated_at: now,
        revoked_at: null,
      };
      await trx('signing_keys').insert(inserted);
      return [
        { eventType: 'key.signing.created', orgId, keyId: id, signerFingerprint: sealed.fingerprint, reason: `signing key "${keyName}" created` },
        inserted,
      ];
    });
    return signingKeyFromRow(row);
  }

  async getSigningKeyInfo(keyId: string): Promise<SigningKeyInfo> {
    const row = await this.signingKeyRow(keyId);
    if (!row) throw new CloacinaSignError('NOT_FOUND', `signing key ${keyId} not found`);
    return signingKeyFromRow(row);
  }

  /** The row with its sealed private key, for the database signing path only. */
  async sealedSigningKey(keyId: string): Promise<SigningKeyInfo & { sealedPrivateKey: Buffer }> {
    const row = await this.signingKeyRow(keyId);
    if (!row) throw new CloacinaSignError('NOT_FOUND', `signing key ${keyId} not found`);
    return { ...signingKeyFromRow(row), sealedPrivateKey: Buffer.from(row.sealed_private_key as Uint8Array) };
  }

  async listSigningKeys(orgId: string): Promise<SigningKeyInfo[]> {
    const rows = await this.db.run((knex) => knex('signing_keys').where({ org_id: orgId }).orderBy(['created_at', 'id']));
    return rows.map(signingKeyFromRow);
  }

  async revokeSigningKey(keyId: string): Promise<SigningKeyInfo> {
    const row = await this.write('', async (trx) => {
      const current = await trx('signing_keys').where({ id: keyId }).first();
      if (!current) throw new CloacinaSignError('NOT_FOUND', `signing key ${keyId} not found`);
      if (current.revoked_at) throw new CloacinaSignError('KEY_REVOKED', `signing key ${keyId} is already revoked`);
      const now = nowIso();
      await trx('signing_keys').where({ id: keyId }).update({ revoked_at: now, updated_at: now });
      return [
        { eventType: 'key.signing.revoked', orgId: current.org_id, keyId, signerFingerprint: current.fingerprint },
        { ...current, revoked_at: now },
      ];
    });
    return signingKeyFromRow(row);
  }

  /** PEM, raw bytes and fingerprint of a signing key's or a trusted key's public half. */
  async exportPublicKey(keyId: string): Promise<ExportedPublicKey> {
    const row = (await this.signingKeyRow(keyId)) ?? (await this.db.run((knex) => knex('trusted_keys').where({ id: keyId }).first()));
    if (!row) throw new CloacinaSignError('NOT_FOUND', `key ${keyId} not found`);
    const raw = Buffer.from(row.public_key);
    await this.audit.record({ eventType: 'key.exported', orgId: row.org_id, keyId, signerFingerprint: row.fingerprint });
    return { keyId, orgId: row.org_id, fingerprint: row.fingerprint, raw, pem: publicKeyToPem(raw) };
  }

  /** Re-seals every private key under `newKek`, one row per transaction; see rewrap.ts. */
  async rewrap(oldKek: Kek, newKek: Kek): Promise<RewrapResult> {
    return rewrapAll(this, oldKek, newKek);
  }

  // ---- trusted keys --------------------------------------------------------------------------

  /**
   * Trusts a public key for `orgId`: Ed25519 (raw 32 bytes, SPKI DER or PEM) or ECDSA P-256 (SPKI DER or PEM,
   * the `cosign.pub` format; verifies cosign signatures). Stored as raw 32 bytes (Ed25519) or SPKI DER (P-256),
   * fingerprinted by the SHA-256 of that. INVALID_KEY for a key that is not acceptable (a weak Ed25519 key, a
   * point not on the curve, a compressed point); ALREADY_EXISTS if it is trusted already.
   */
  async trustPublicKey(orgId: string, publicKey: KeyInput, name?: string): Promise<TrustedKeyInfo> {
    const raw = importPublicKey(publicKey);
    const fingerprint = publicKeyFingerprint(raw);
    const row = {
      id: newId(),
      org_id: orgId,
      name: name === undefined ? null : checkName(name, 'a key name'),
      public_key: raw,
      fingerprint,
      created_at: nowIso(),
      revoked_at: null,
    };
    await this.write(`organization ${orgId} already trusts key ${fingerprint}`, async (trx) => {
      await requireOrg(trx, orgId);
      await trx('trusted_keys').insert(row);
      return [{ eventType: 'key.trusted.added', orgId, keyId: row.id, signerFingerprint: fingerprint, reason: row.name ? `trusted key "${row.name}"` : null }];
    });
    return trustedKeyFromRow(row);
  }

  async trustPublicKeyPem(orgId: string, pem: string, name?: string): Promise<TrustedKeyInfo> {
    return this.trustPublicKey(orgId, pem, name);
  }

  async revokeTrustedKey(keyId: string): Promise<TrustedKeyInfo> {
    const row = await this.write('', async (trx) => {
      const current = await trx('trusted_keys').where({ id: keyId }).first();
      if (!current) throw new CloacinaSignError('NOT_FOUND', `trusted key ${keyId} not found`);
      if (current.revoked_at) throw new CloacinaSignError('KEY_REVOKED', `trusted key ${keyId} is already revoked`);
      const now = nowIso();
      await trx('trusted_keys').where({ id: keyId }).update({ revoked_at: now });
      return [
        { eventType: 'key.trusted.revoked', orgId: current.org_id, keyId, signerFingerprint: current.fingerprint },
        { ...current, revoked_at: now },
      ];
    });
    return trustedKeyFromRow(row);
  }

  /** Revokes a signing key or a trusted key, whichever the id names. */
  async revokeKey(keyId: string): Promise<{ kind: 'signing' | 'trusted'; key: SigningKeyInfo | TrustedKeyInfo }> {
    if (await this.signingKeyRow(keyId)) return { kind: 'signing', key: await this.revokeSigningKey(keyId) };
    return { kind: 'trusted', key: await this.revokeTrustedKey(keyId) };
  }

  /** The org's own trusted-key rows, active and revoked (not inherited ones). */
  async listTrustedKeyRows(orgId: string): Promise<TrustedKeyInfo[]> {
    const rows = await this.db.run((knex) => knex('trusted_keys').where({ org_id: orgId }).orderBy(['created_at', 'id']));
    return rows.map(trustedKeyFromRow);
  }

  /**
   * Every key `orgId` trusts now: its own active trusted keys and those inherited through active
   * grants, each saying which organization trusts it directly and the grant path to it.
   */
  async listTrustedKeys(orgId: string): Promise<EffectiveTrustedKey[]> {
    return [...(await trustCacheFor(this.db).trustedKeys(orgId)).values()];
  }

  // ---- trust ACLs ----------------------------------------------------------------------------

  /** From now on `parentOrg` trusts every key `childOrg` trusts (transitively). */
  async grantTrust(parentOrg: string, childOrg: string): Promise<TrustGrant> {
    if (parentOrg === childOrg) throw new CloacinaSignError('INVALID_INPUT', 'an organization cannot grant trust to itself');
    const row = { id: newId(), parent_org_id: parentOrg, child_org_id: childOrg, created_at: nowIso(), revoked_at: null };
    await this.write(`organization ${parentOrg} already trusts ${childOrg}'s keys`, async (trx) => {
      await requireOrg(trx, parentOrg);
      await requireOrg(trx, childOrg);
      await trx('key_trust_acls').insert(row);
      return [{ eventType: 'key.trust_acl.granted', orgId: parentOrg, reason: `trusts keys of organization ${childOrg}` }];
    });
    return grantFromRow(row);
  }

  async revokeTrust(parentOrg: string, childOrg: string): Promise<TrustGrant> {
    return this.write('', async (trx) => {
      const current = await trx('key_trust_acls').where({ parent_org_id: parentOrg, child_org_id: childOrg }).whereNull('revoked_at').first();
      if (!current) throw new CloacinaSignError('NOT_FOUND', `no active trust grant from ${parentOrg} to ${childOrg}`);
      const revokedAt = nowIso();
      await trx('key_trust_acls').where({ id: current.id }).update({ revoked_at: revokedAt });
      return [
        { eventType: 'key.trust_acl.revoked', orgId: parentOrg, reason: `no longer trusts keys of organization ${childOrg}` },
        grantFromRow({ ...current, revoked_at: revokedAt }),
      ];
    });
  }

  async listGrants(orgId?: string): Promise<TrustGrant[]> {
    const rows = await this.db.run((knex) => {
      const query = knex('key_trust_acls').orderBy(['created_at', 'id']);
      return orgId ? query.where({ parent_org_id: orgId }).orWhere({ child_org_id: orgId }) : query;
    });
    return rows.map(grantFromRow);
  }

  // ---- plumbing ------------------------------------------------------------------------------

  private signingKeyRow(keyId: string): Promise<Row | undefined> {
    return this.db.run((knex) => knex('signing_keys').where({ id: keyId }).first());
  }

  /**
   * One write transaction with its audit rows; the JSON lines are written after the commit.
   * `work` returns [event] or [event, result]; `conflict` replaces the driver's unique-violation message.
   * @internal
   */
  async write<T>(conflict: string, work: (trx: Knex.Transaction) => Promise<[AuditEventInput?, T?]>): Promise<T> {
    let result: T | undefined;
    let event: AuditEvent | undefined;
    try {
      event = await writeTransaction(this.db, async (trx) => {
        const [input, value] = await work(trx);
        result = value;
        if (!input) return undefined;
        const row = auditEvent(input);
        await this.rows.insertIn(trx, row);
        return row;
      });
    } catch (error) {
      if (conflict && isUniqueViolation((error as { cause?: unknown }).cause ?? error)) {
        throw new CloacinaSignError('ALREADY_EXISTS', conflict);
      }
      throw error;
    }
    if (event && this.extraSinks.length > 0) {
      await writeAll(event, this.extraSinks).catch((error: CloacinaSignError) => {
        throw new CloacinaSignError('AUDIT_FAILED', `the change was committed with its audit row, but ${error.message}`, { cause: error.cause });
      });
    }
    return result as T;
  }
}

async function requireOrg(trx: Knex.Transaction, orgId: string): Promise<void> {
  const org = await trx('organizations').where({ id: orgId }).first('id');
  if (!org) throw new CloacinaSignError('NOT_FOUND', `organization ${orgId} not found`);
}
