// Trust ACL resolution: a grant parent -> child means the parent trusts every key the child trusts.
// Transitive (org -> sub-org -> team) and cycle-safe: breadth-first over active grants with a visited set.
import type { Knex } from 'knex';
import { CloacinaSignError } from '../errors';
import { signingKeyFromRow, TrustedKeyInfo, trustedKeyFromRow } from '../keys/records';

export interface Grant {
  parent_org_id: string;
  child_org_id: string;
}

/** `orgId` first, then every org it inherits trust from, in BFS order. */
export function inheritedOrgs(orgId: string, grants: readonly Grant[]): string[] {
  const children = new Map<string, string[]>();
  for (const grant of grants) {
    const list = children.get(grant.parent_org_id) ?? [];
    list.push(grant.child_org_id);
    children.set(grant.parent_org_id, list);
  }
  const visited = new Set([orgId]);
  const order = [orgId];
  for (let i = 0; i < order.length; i += 1) {
    for (const child of children.get(order[i]) ?? []) {
      if (!visited.has(child)) {
        visited.add(child);
        order.push(child);
      }
    }
  }
  return order;
}

/**
 * Every key `orgId` trusts now, by fingerprint: its active trusted keys and active signing keys, and
 * those of every org reachable through active grants. NOT_FOUND when the organization does not exist.
 */
export async function loadTrustSet(knex: Knex, orgId: string): Promise<Map<string, TrustedKeyInfo>> {
  const org = await knex('organizations').where({ id: orgId }).first('id');
  if (!org) throw new CloacinaSignError('NOT_FOUND', `organization ${orgId} not found`);
  const grants: Grant[] = await knex('key_trust_acls').whereNull('revoked_at').select('parent_org_id', 'child_org_id');
  const orgs = inheritedOrgs(orgId, grants);
  const rank = new Map(orgs.map((id, index) => [id, index]));
  const trusted = (await knex('trusted_keys').whereIn('org_id', orgs).whereNull('revoked_at')).map(trustedKeyFromRow);
  const signing = (await knex('signing_keys').whereIn('org_id', orgs).whereNull('revoked_at')).map((row) => {
    const key = signingKeyFromRow(row);
    const info: TrustedKeyInfo = { ...key, kind: 'signing' };
    return info;
  });
  // Nearest org first, so a key trusted both directly and through a grant is reported as direct.
  const all = [...trusted, ...signing].sort((a, b) => rank.get(a.orgId)! - rank.get(b.orgId)! || a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  const set = new Map<string, TrustedKeyInfo>();
  for (const key of all) {
    if (set.has(key.fingerprint)) continue;
    set.set(key.fingerprint, key.orgId === orgId ? key : { ...key, inheritedFrom: key.orgId });
  }
  return set;
}
