// Keys, organizations and trust grants in the database, each change audited in its own transaction. Private
// keys are generated and sealed inside Rust (AES-256-GCM under the KEK, bound to key id + org id + public key)
// and never become JS values. The rows themselves are read and written by src/db/.
import type { Knex } from 'knex';
import { auditEvent, AuditTrail, writeAll } from '../audit/audit-trail';
import { auditToDatabase, type DatabaseAuditSink } from '../audit/database-sink';
import type { AuditEvent, AuditEventInput } from '../audit/events';
import type { AuditSink } from '../audit/sink';
import type { Database } from '../db/database';
import { isUniqueViolation } from '../db/errors';
import { type TrustGrant, insertGrant, listGrants, revokeActiveGrant } from '../db/grants';
import { newId } from '../db/ids';
import {
  insertSigningKey,
  type KeyPurpose,
  listSigningKeys,
  otherSealingKekId,
  readSealedSigningKey,
  readSigningKey,
  revokeSigningKeyRow,
  type SealedSigningKey,
  type SigningKeyInfo,
} from '../db/keys';
import { checkOrganizationName, findOrganization, insertOrganization, listOrganizations, type Organization, requireOrganization } from '../db/organizations';
import { writeTransaction } from '../db/transaction';
import { insertTrustedKey, listTrustedKeyRows, readTrustedKey, revokeTrustedKeyRow, type TrustedKeyInfo } from '../db/trusted-keys';
import { CloacinaSignError } from '../errors';
import { checkName } from '../names';
import { native } from '../native';
import type { EffectiveTrustedKey } from '../trust/acl';
import { trustCacheFor } from '../trust/trust-cache';
import { type Kek, kekId } from './kek';
import { importPublicKey, type KeyInput, publicKeyFingerprint, publicKeyToPem } from './keypair';
import { rewrapAll, type RewrapResult } from './rewrap';

export interface ExportedPublicKey {
  keyId: string;
  orgId: string;
  fingerprint: string;
  raw: Buffer;
  pem: string;
}

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
    const checked = checkOrganizationName(name);
    return this.write(`an organization named ${JSON.stringify(checked)} already exists`, async (trx) => [undefined, await insertOrganization(trx, checked)]);
  }

  async listOrganizations(): Promise<Organization[]> {
    return listOrganizations(this.db);
  }

  /** An organization by id (an argument that parses as a UUID) or else by name (trimmed, NFC); NOT_FOUND otherwise. */
  async getOrganization(idOrName: string): Promise<Organization> {
    return findOrganization(this.db, idOrName);
  }

  // ---- signing keys --------------------------------------------------------------------------

  /**
   * Generates a key pair in Rust and stores it sealed under `kek`, for `purpose` (package signing unless
   * told). ALREADY_EXISTS if the org has an active key of that name.
   */
  async createSigningKey(orgId: string, name: string, kek: Kek, purpose: KeyPurpose = 'package'): Promise<SigningKeyInfo> {
    const keyName = checkName(name, 'a key name');
    const kid = kekId(kek);
    const id = newId();
    return this.write(`organization ${orgId} already has an active signing key named "${keyName}"`, async (trx) => {
      await requireOrganization(trx, orgId);
      const other = await otherSealingKekId(trx, kid);
      if (other !== undefined) {
        throw new CloacinaSignError(
          'KEY_UNSEAL_FAILED',
          `the key-encryption key (id ${kid}) is not the one sealing the existing keys (id ${other}): wrong KEK, or run \`keys rewrap\` first`,
        );
      }
      const sealed = await native.generateSealedKeypairUnder(kek, { keyId: id, orgId });
      const key = await insertSigningKey(trx, {
        id,
        orgId,
        name: keyName,
        publicKey: sealed.publicKey,
        fingerprint: sealed.fingerprint,
        sealedPrivateKey: sealed.sealedPrivateKey,
        kekId: kid,
        purpose,
      });
      const reason = `signing key "${keyName}" created${purpose === 'package' ? '' : ` for ${purpose}`}`;
      return [{ eventType: 'key.signing.created', orgId, keyId: id, signerFingerprint: sealed.fingerprint, reason }, key];
    });
  }

  async getSigningKeyInfo(keyId: string): Promise<SigningKeyInfo> {
    const key = await readSigningKey(this.db, keyId);
    if (!key) throw new CloacinaSignError('NOT_FOUND', `signing key ${keyId} not found`);
    return key;
  }

  /** The key with its sealed private key, for the database signing path only. */
  async sealedSigningKey(keyId: string): Promise<SealedSigningKey> {
    const key = await readSealedSigningKey(this.db, keyId);
    if (!key) throw new CloacinaSignError('NOT_FOUND', `signing key ${keyId} not found`);
    return key;
  }

  async listSigningKeys(orgId: string): Promise<SigningKeyInfo[]> {
    return listSigningKeys(this.db, orgId);
  }

  async revokeSigningKey(keyId: string): Promise<SigningKeyInfo> {
    return this.write('', async (trx) => {
      const key = await revokeSigningKeyRow(trx, keyId);
      return [{ eventType: 'key.signing.revoked', orgId: key.orgId, keyId, signerFingerprint: key.fingerprint }, key];
    });
  }

  /** PEM, raw bytes and fingerprint of a signing key's or a trusted key's public half. */
  async exportPublicKey(keyId: string): Promise<ExportedPublicKey> {
    const key = (await readSigningKey(this.db, keyId)) ?? (await readTrustedKey(this.db, keyId));
    if (!key) throw new CloacinaSignError('NOT_FOUND', `key ${keyId} not found`);
    await this.audit.record({ eventType: 'key.exported', orgId: key.orgId, keyId, signerFingerprint: key.fingerprint });
    return { keyId, orgId: key.orgId, fingerprint: key.fingerprint, raw: key.publicKey, pem: publicKeyToPem(key.publicKey) };
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
    const keyName = name === undefined ? null : checkName(name, 'a key name');
    return this.write(`organization ${orgId} already trusts key ${fingerprint}`, async (trx) => {
      await requireOrganization(trx, orgId);
      const key = await insertTrustedKey(trx, { orgId, name: keyName, publicKey: raw, fingerprint });
      return [
        { eventType: 'key.trusted.added', orgId, keyId: key.id, signerFingerprint: fingerprint, reason: keyName ? `trusted key "${keyName}"` : null },
        key,
      ];
    });
  }

  async trustPublicKeyPem(orgId: string, pem: string, name?: string): Promise<TrustedKeyInfo> {
    return this.trustPublicKey(orgId, pem, name);
  }

  async revokeTrustedKey(keyId: string): Promise<TrustedKeyInfo> {
    return this.write('', async (trx) => {
      const key = await revokeTrustedKeyRow(trx, keyId);
      return [{ eventType: 'key.trusted.revoked', orgId: key.orgId, keyId, signerFingerprint: key.fingerprint }, key];
    });
  }

  /** Revokes a signing key or a trusted key, whichever the id names. */
  async revokeKey(keyId: string): Promise<{ kind: 'signing' | 'trusted'; key: SigningKeyInfo | TrustedKeyInfo }> {
    if (await readSigningKey(this.db, keyId)) return { kind: 'signing', key: await this.revokeSigningKey(keyId) };
    return { kind: 'trusted', key: await this.revokeTrustedKey(keyId) };
  }

  /** The org's own trusted-key rows, active and revoked (not inherited ones). */
  async listTrustedKeyRows(orgId: string): Promise<TrustedKeyInfo[]> {
    return listTrustedKeyRows(this.db, orgId);
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
    return this.write(`organization ${parentOrg} already trusts ${childOrg}'s keys`, async (trx) => {
      await requireOrganization(trx, parentOrg);
      await requireOrganization(trx, childOrg);
      const grant = await insertGrant(trx, parentOrg, childOrg);
      return [{ eventType: 'key.trust_acl.granted', orgId: parentOrg, reason: `trusts keys of organization ${childOrg}` }, grant];
    });
  }

  async revokeTrust(parentOrg: string, childOrg: string): Promise<TrustGrant> {
    return this.write('', async (trx) => {
      const grant = await revokeActiveGrant(trx, parentOrg, childOrg);
      return [{ eventType: 'key.trust_acl.revoked', orgId: parentOrg, reason: `no longer trusts keys of organization ${childOrg}` }, grant];
    });
  }

  async listGrants(orgId?: string): Promise<TrustGrant[]> {
    return listGrants(this.db, orgId);
  }

  // ---- plumbing ------------------------------------------------------------------------------

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
