// The package_revocations table (packages an organization revoked, by either digest) and the
// revocation_list_sequences table (the last sequence of each organization's signed revocation list).
import type { Knex } from 'knex';
import type { KnownDigests, PackageRevocation } from '../trust/revoked-packages';
import { newId, nowIso } from './ids';
import type { Row } from './rows';

function revocationFromRow(row: Row): PackageRevocation {
  return {
    sha256: (row.sha256 as string | null) ?? null,
    blake3: (row.blake3 as string | null) ?? null,
    reason: row.reason as string,
    orgId: row.org_id as string,
    revokedAt: row.revoked_at as string,
  };
}

/** The revocations of these organizations, in no particular order. */
export async function revocationsOfOrgs(knex: Knex, orgIds: readonly string[]): Promise<PackageRevocation[]> {
  const rows: Row[] = await knex('package_revocations').whereIn('org_id', orgIds).select('*');
  return rows.map(revocationFromRow);
}

/** Stores a revocation revoked now; a digest the organization revoked already is a unique violation. */
export async function insertPackageRevocation(trx: Knex.Transaction, orgId: string, digests: KnownDigests, reason: string): Promise<PackageRevocation> {
  const row = {
    id: newId(),
    org_id: orgId,
    sha256: digests.sha256 ?? null,
    blake3: digests.blake3 ?? null,
    reason,
    revoked_at: nowIso(),
  };
  await trx('package_revocations').insert(row);
  return revocationFromRow(row);
}

/** Deletes the organization's own revocations naming either of these digests, and returns them (none: empty). */
export async function deletePackageRevocations(trx: Knex.Transaction, orgId: string, digests: KnownDigests): Promise<PackageRevocation[]> {
  const rows: Row[] = await trx('package_revocations')
    .where({ org_id: orgId })
    .andWhere((q) => {
      if (digests.sha256) q.orWhere({ sha256: digests.sha256 });
      if (digests.blake3) q.orWhere({ blake3: digests.blake3 });
    })
    .select('*');
  if (rows.length > 0)
    await trx('package_revocations')
      .whereIn(
        'id',
        rows.map((row) => row.id as string),
      )
      .delete();
  return rows.map(revocationFromRow);
}

/** Takes the organization's next revocation-list sequence inside the transaction (1 for its first list). */
export async function takeRevocationListSequence(trx: Knex.Transaction, orgId: string): Promise<number> {
  const current = await trx('revocation_list_sequences').where({ org_id: orgId }).first('sequence');
  const next = Number(current?.sequence ?? 0) + 1;
  if (current) await trx('revocation_list_sequences').where({ org_id: orgId }).update({ sequence: next });
  else await trx('revocation_list_sequences').insert({ org_id: orgId, sequence: next });
  return next;
}
