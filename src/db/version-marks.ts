// The package_versions table: the highest version of each package an organization has loaded (from
// verified version-2 statements), the marks rollback protection compares against (trust/version-reset.ts
// lowers one on an operator's decision).
import type { Knex } from 'knex';
import { CloacinaSignError } from '../errors';
import { native } from '../native';
import type { Database } from './database';
import { nowIso } from './ids';

/** The marks of these package names in an organization: name -> highest version loaded. */
export async function rollbackFloors(db: Database, orgId: string, names: readonly string[]): Promise<Map<string, string>> {
  if (names.length === 0) return new Map();
  const rows: { package_name: string; highest_version: string }[] = await db.run((knex) =>
    knex('package_versions')
      .where({ org_id: orgId })
      .whereIn('package_name', [...new Set(names)])
      .select('package_name', 'highest_version'),
  );
  return new Map(rows.map((row) => [row.package_name, row.highest_version]));
}

export interface VersionMark {
  name: string;
  highestVersion: string;
  updatedAt: string;
}

/** Every mark of an organization, by package name. */
export async function listVersionMarks(db: Database, orgId: string): Promise<VersionMark[]> {
  const rows: { package_name: string; highest_version: string; updated_at: string }[] = await db.run((knex) =>
    knex('package_versions').where({ org_id: orgId }).orderBy('package_name').select('package_name', 'highest_version', 'updated_at'),
  );
  return rows.map((row) => ({ name: row.package_name, highestVersion: row.highest_version, updatedAt: row.updated_at }));
}

/** Raises the mark of a package to `version` when it is higher (never lowers it). Safe under concurrent loads. */
export async function recordLoadedVersion(db: Database, orgId: string, name: string, version: string): Promise<void> {
  await db.run((knex) =>
    knex.transaction(async (trx) => {
      const now = nowIso();
      // The row exists after this (ours, or a concurrent loader's once it committed: PostgreSQL makes
      // a conflicting insert wait). On SQLite the insert also takes the database's write lock.
      await trx('package_versions')
        .insert({ org_id: orgId, package_name: name, highest_version: version, updated_at: now })
        .onConflict(['org_id', 'package_name'])
        .ignore();
      // Locked before it is read (FOR UPDATE on PostgreSQL; SQLite holds the write lock already), so no
      // higher mark can be committed between this read and the update below.
      const current = await trx('package_versions').where({ org_id: orgId, package_name: name }).forUpdate().first('highest_version');
      if (current && native.compareVersions(version, current.highest_version) > 0) {
        await trx('package_versions').where({ org_id: orgId, package_name: name }).update({ highest_version: version, updated_at: now });
      }
    }),
  );
}

/**
 * Lowers the mark of a package to `to`, or removes it (`to` null), inside the caller's transaction; the mark
 * it replaced. NOT_FOUND without a mark; INVALID_INPUT when `to` is higher (a mark is raised by loading only).
 */
export async function lowerVersionMark(trx: Knex.Transaction, orgId: string, name: string, to: string | null): Promise<string> {
  const current = await trx('package_versions').where({ org_id: orgId, package_name: name }).first('highest_version');
  if (!current) throw new CloacinaSignError('NOT_FOUND', `no version of ${JSON.stringify(name)} was recorded for organization ${orgId}`);
  // Lowering only: a mark raised by hand would refuse versions nobody loaded.
  if (to !== null && native.compareVersions(to, current.highest_version) > 0) {
    throw new CloacinaSignError(
      'INVALID_INPUT',
      `--to ${to} is higher than the mark ${current.highest_version} of ${JSON.stringify(name)}: a reset only lowers`,
    );
  }
  if (to === null) await trx('package_versions').where({ org_id: orgId, package_name: name }).delete();
  else await trx('package_versions').where({ org_id: orgId, package_name: name }).update({ highest_version: to, updated_at: nowIso() });
  return String(current.highest_version);
}
