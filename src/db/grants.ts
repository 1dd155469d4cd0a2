// The key_trust_acls table: trust grants. A grant from parent to child means the parent trusts every key
// the child trusts; a revoked grant stays as a row with its revocation time.
import type { Knex } from 'knex';
import { CloacinaSignError } from '../errors';
import type { Database } from './database';
import { newId, nowIso } from './ids';
import { optionalText, type Row, text } from './rows';

export interface TrustGrant {
  id: string;
  parentOrgId: string;
  childOrgId: string;
  createdAt: string;
  revokedAt: string | null;
}

export function grantFromRow(row: Row): TrustGrant {
  return {
    id: text(row.id),
    parentOrgId: text(row.parent_org_id),
    childOrgId: text(row.child_org_id),
    createdAt: text(row.created_at),
    revokedAt: optionalText(row.revoked_at),
  };
}

/** Stores an active grant; a second active grant between the same organizations is a unique violation. */
export async function insertGrant(trx: Knex.Transaction, parentOrgId: string, childOrgId: string): Promise<TrustGrant> {
  const row = { id: newId(), parent_org_id: parentOrgId, child_org_id: childOrgId, created_at: nowIso(), revoked_at: null };
  await trx('key_trust_acls').insert(row);
  return grantFromRow(row);
}

/** Revokes the active grant from parent to child; NOT_FOUND without one. */
export async function revokeActiveGrant(trx: Knex.Transaction, parentOrgId: string, childOrgId: string): Promise<TrustGrant> {
  const current: Row | undefined = await trx('key_trust_acls').where({ parent_org_id: parentOrgId, child_org_id: childOrgId }).whereNull('revoked_at').first();
  if (!current) throw new CloacinaSignError('NOT_FOUND', `no active trust grant from ${parentOrgId} to ${childOrgId}`);
  const revokedAt = nowIso();
  await trx('key_trust_acls').where({ id: current.id }).update({ revoked_at: revokedAt });
  return grantFromRow({ ...current, revoked_at: revokedAt });
}

/** Every grant, active and revoked, oldest first; with `orgId`, those where it is parent or child. */
export async function listGrants(db: Database, orgId?: string): Promise<TrustGrant[]> {
  const rows = await db.run((knex) => {
    const query = knex('key_trust_acls').orderBy(['created_at', 'id']);
    return orgId ? query.where({ parent_org_id: orgId }).orWhere({ child_org_id: orgId }) : query;
  });
  return rows.map(grantFromRow);
}

/** A grant as trust resolution follows it: `parent_org_id` trusts every key `child_org_id` trusts. */
export interface ActiveGrant {
  parent_org_id: string;
  child_org_id: string;
}

/** Every active grant (trust resolution follows them transitively, from any organization). */
export async function activeGrants(knex: Knex): Promise<ActiveGrant[]> {
  return knex('key_trust_acls').whereNull('revoked_at').select('parent_org_id', 'child_org_id');
}
