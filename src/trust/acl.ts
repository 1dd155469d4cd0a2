// Trust resolution, as Cloacina defines it: an organization trusts exactly the active rows of
// trusted_keys of its own, plus those of every organization it reaches through active grants
// (a grant parent -> child means the parent trusts every key the child trusts). Signing keys are
// never trusted by being signing keys: only `keys trust` makes a public key trusted.
// Grants are followed transitively (org -> sub-org -> team), breadth-first with a visited set, so
// cycles are harmless; Cloacina itself follows one level, and this is our deliberate extension.
import type { Knex } from 'knex';
import { CloacinaSignError } from '../errors';
import { type ActiveGrant, activeGrants } from '../db/grants';
import { type TrustedKeyInfo, trustedKeyFromRow } from '../db/trusted-keys';

/** A key an organization trusts now, and how: `path` runs from that organization to the one trusting the key directly. */
export interface EffectiveTrustedKey extends TrustedKeyInfo {
  /** Null when the organization trusts the key itself; else the organization whose trusted key it is. */
  inheritedFrom: string | null;
  /** Organization ids from the trusting organization to `orgId` of the key (one element when direct). */
  path: string[];
}

/** `orgId` first, then every org it inherits trust from, in BFS order, each with its path from `orgId`. */
export function inheritedOrgs(orgId: string, grants: readonly ActiveGrant[]): Map<string, string[]> {
  const children = new Map<string, string[]>();
  for (const grant of grants) {
    const list = children.get(grant.parent_org_id) ?? [];
    list.push(grant.child_org_id);
    children.set(grant.parent_org_id, list);
  }
  const paths = new Map([[orgId, [orgId]]]);
  const order = [orgId];
  for (let i = 0; i < order.length; i += 1) {
    const path = paths.get(order[i])!;
    for (const child of children.get(order[i]) ?? []) {
      if (!paths.has(child)) {
        paths.set(child, [...path, child]);
        order.push(child);
      }
    }
  }
  return paths;
}

/**
 * Every key `orgId` trusts now, by fingerprint, nearest organization first (a key trusted both
 * directly and through a grant is reported as direct). NOT_FOUND when the organization does not exist.
 * @internal
 */
export async function loadTrustSet(knex: Knex, orgId: string): Promise<Map<string, EffectiveTrustedKey>> {
  const org = await knex('organizations').where({ id: orgId }).first('id');
  if (!org) throw new CloacinaSignError('NOT_FOUND', `organization ${orgId} not found`);
  const paths = inheritedOrgs(orgId, await activeGrants(knex));
  const rank = new Map([...paths.keys()].map((id, index) => [id, index]));
  const rows = await knex('trusted_keys')
    .whereIn('org_id', [...paths.keys()])
    .whereNull('revoked_at');
  const keys = rows
    .map(trustedKeyFromRow)
    .sort((a, b) => rank.get(a.orgId)! - rank.get(b.orgId)! || a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  const set = new Map<string, EffectiveTrustedKey>();
  for (const key of keys) {
    if (set.has(key.fingerprint)) continue;
    set.set(key.fingerprint, { ...key, inheritedFrom: key.orgId === orgId ? null : key.orgId, path: paths.get(key.orgId)! });
  }
  return set;
}
