// Revoked packages with database trust: an organization refuses the packages it revoked and those revoked
// by every organization whose trust it inherits through grants (the organizations trust resolution
// follows for keys). Revoking and lifting a revocation are audited in the same transaction, and reach
// every runner through the change feed, as key revocation does.
import type { Knex } from 'knex';
import type { Database } from '../db/database';
import { cacheFor, GenerationCache } from '../db/generation-cache';
import { activeGrants } from '../db/grants';
import { requireOrganization } from '../db/organizations';
import { deletePackageRevocations, insertPackageRevocation, revocationsOfOrgs, takeRevocationListSequence } from '../db/package-revocations';
import { CloacinaSignError } from '../errors';
import type { DbKeyManager } from '../keys/db-key-manager';
import type { Kek } from '../keys/kek';
import { checkName } from '../names';
import { inheritedOrgs } from './acl';
import { type KnownDigests, type PackageRevocation, RevokedPackages } from './revoked-packages';

const HEX64 = /^[0-9a-f]{64}$/;

/** A digest as given (any case), lowercase; INVALID_INPUT unless 64 hex characters. */
export function checkDigest(hex: string, algorithm: 'sha256' | 'blake3'): string {
  const digest = hex.trim().toLowerCase();
  if (!HEX64.test(digest)) throw new CloacinaSignError('INVALID_INPUT', `a ${algorithm === 'sha256' ? 'SHA-256' : 'BLAKE3'} digest is 64 hex characters`);
  return digest;
}

/** Every revocation that holds for `orgId`: its own, then those of the organizations whose trust it inherits. */
export async function loadRevocations(knex: Knex, orgId: string): Promise<PackageRevocation[]> {
  const orgs = [...inheritedOrgs(orgId, await activeGrants(knex)).keys()];
  const rank = new Map(orgs.map((id, index) => [id, index]));
  const revocations = await revocationsOfOrgs(knex, orgs);
  return revocations.sort(
    (a, b) => rank.get(a.orgId!)! - rank.get(b.orgId!)! || a.revokedAt!.localeCompare(b.revokedAt!) || (a.sha256 ?? '').localeCompare(b.sha256 ?? ''),
  );
}

const createRevocationCache = (db: Database) =>
  new GenerationCache(db, (orgId) => db.run((knex) => loadRevocations(knex, orgId)).then((entries) => new RevokedPackages(entries)));

/** The revoked packages of an organization now (valid while the change generation is current). */
export function revokedPackagesFor(db: Database, orgId: string): Promise<RevokedPackages> {
  return cacheFor(db, createRevocationCache).get(orgId);
}

function describe(digests: KnownDigests): string {
  return [digests.sha256 ? `SHA-256 ${digests.sha256}` : '', digests.blake3 ? `BLAKE3 ${digests.blake3}` : ''].filter(Boolean).join(', ');
}

/**
 * A reason as stored: the rule of names (no control or bidirectional character), and at most 255 bytes of
 * UTF-8, so that every reason fits the signed revocation list.
 */
export function checkReason(reason: string): string {
  const checked = checkName(reason, 'a revocation reason');
  if (Buffer.byteLength(checked, 'utf8') > 255) throw new CloacinaSignError('INVALID_INPUT', 'a revocation reason is at most 255 bytes of UTF-8');
  return checked;
}

/**
 * Revokes a package for an organization: audited as `package.revoked` in the same transaction.
 * ALREADY_EXISTS when one of its digests is revoked already.
 */
export async function revokePackage(keys: DbKeyManager, orgId: string, digests: KnownDigests, reason: string): Promise<PackageRevocation> {
  if (!digests.sha256 && !digests.blake3) throw new CloacinaSignError('INVALID_INPUT', 'name the package: its file, or a digest');
  const checkedReason = checkReason(reason);
  return keys.write(`${describe(digests)} is already revoked for organization ${orgId}`, async (trx) => {
    await requireOrganization(trx, orgId);
    const revocation = await insertPackageRevocation(trx, orgId, digests, checkedReason);
    return [
      {
        eventType: 'package.revoked',
        orgId,
        packageHash: revocation.sha256 ?? revocation.blake3,
        digestAlgorithm: revocation.sha256 ? 'sha256' : 'blake3',
        reason: `package revoked (${describe(digests)}): ${revocation.reason}`,
      },
      revocation,
    ];
  });
}

/** Lifts the organization's own revocations matching these digests: audited as `package.unrevoked`. NOT_FOUND without one. */
export async function unrevokePackage(keys: DbKeyManager, orgId: string, digests: KnownDigests): Promise<PackageRevocation[]> {
  return keys.write('', async (trx) => {
    const lifted = await deletePackageRevocations(trx, orgId, digests);
    if (lifted.length === 0) throw new CloacinaSignError('NOT_FOUND', `${describe(digests)} is not revoked by organization ${orgId}`);
    return [
      {
        eventType: 'package.unrevoked',
        orgId,
        packageHash: lifted[0].sha256 ?? lifted[0].blake3,
        digestAlgorithm: lifted[0].sha256 ? 'sha256' : 'blake3',
        reason: `revocation lifted (${lifted.map(describe).join('; ')}); it was revoked: ${lifted.map((r) => r.reason).join('; ')}`,
      },
      lifted,
    ];
  });
}

/** The next sequence of the organization's revocation lists (committed: never handed out twice). */
export async function nextListSequence(keys: DbKeyManager, orgId: string): Promise<number> {
  return keys.write('', async (trx) => [undefined, await takeRevocationListSequence(trx, orgId)]);
}

/** A signed revocation list as issued. */
export interface IssuedRevocationList {
  document: string;
  sequence: number;
  expiresAt: string;
  revoked: number;
  keyFingerprint: string;
}

/**
 * Signs the revocation list of an organization (every revocation that holds for it, inherited ones
 * included) with one of its signing keys, unsealed inside Rust only: the next sequence, valid for
 * `validSeconds` from now. Key purposes do not exist: any active signing key of the organization signs it,
 * and the context string of its message keeps it apart from package signatures.
 */
export async function issueRevocationList(keys: DbKeyManager, orgId: string, keyId: string, kek: Kek, validSeconds: number): Promise<IssuedRevocationList> {
  if (!Number.isSafeInteger(validSeconds) || validSeconds < 1)
    throw new CloacinaSignError('INVALID_INPUT', 'a revocation list is valid for a whole number of seconds, at least 1');
  const { kekId } = await import('../keys/kek');
  const key = await keys.sealedSigningKey(keyId);
  if (key.orgId !== orgId) throw new CloacinaSignError('INVALID_INPUT', `signing key ${keyId} belongs to another organization`);
  if (key.revokedAt) throw new CloacinaSignError('KEY_REVOKED', `signing key ${keyId} was revoked at ${key.revokedAt} and cannot sign`);
  if (key.kekId !== kekId(kek))
    throw new CloacinaSignError('KEY_UNSEAL_FAILED', `the key-encryption key (id ${kekId(kek)}) is not the one sealing key ${keyId} (id ${key.kekId})`);
  const org = await keys.getOrganization(orgId);
  const entries = await keys.db.run((knex) => loadRevocations(knex, orgId));
  // A package revoked by several organizations (or twice by digest) is listed once.
  const unique = new Map(entries.map((entry) => [`${entry.sha256}/${entry.blake3}`, entry]));
  const sequence = await nextListSequence(keys, orgId);
  const issued = new Date();
  // Whole seconds: the list's timestamps are written YYYY-MM-DDTHH:MM:SSZ.
  issued.setUTCMilliseconds(0);
  const expires = new Date(issued.getTime() + validSeconds * 1000);
  const stamp = (date: Date) => date.toISOString().replace('.000Z', 'Z');
  const { native } = await import('../native');
  const document = await native.signRevocationListWithSealedKey(kek, key.sealedPrivateKey, { keyId, orgId }, key.publicKey, {
    organization: org.name,
    sequence,
    issuedAt: stamp(issued),
    expiresAt: stamp(expires),
    revoked: [...unique.values()].map((entry) => ({ sha256: entry.sha256 ?? undefined, blake3: entry.blake3 ?? undefined, reason: entry.reason })),
  });
  return { document: `${document}\n`, sequence, expiresAt: stamp(expires), revoked: unique.size, keyFingerprint: key.fingerprint };
}
