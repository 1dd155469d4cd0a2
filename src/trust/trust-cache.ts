// Per-organization cache of resolved trust, valid only while the database's change generation is current.
import type { Database } from '../db/database';
import type { TrustedKeyInfo } from '../keys/records';
import { loadTrustSet } from './acl';

interface Entry {
  generation: number;
  keys: Promise<Map<string, TrustedKeyInfo>>;
}

export class TrustCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly db: Database) {}

  /** The keys `orgId` trusts now (fingerprint -> key). */
  async trustedKeys(orgId: string): Promise<ReadonlyMap<string, TrustedKeyInfo>> {
    const generation = await this.db.changes.current();
    const entry = this.entries.get(orgId);
    if (entry && entry.generation === generation) return entry.keys;
    const keys = this.db.run((knex) => loadTrustSet(knex, orgId));
    const fresh = { generation, keys };
    this.entries.set(orgId, fresh);
    keys.catch(() => {
      if (this.entries.get(orgId) === fresh) this.entries.delete(orgId);
    });
    return keys;
  }
}

const caches = new WeakMap<Database, TrustCache>();

/** The one trust cache of a database handle, shared by every key manager and verifier using it. */
export function trustCacheFor(db: Database): TrustCache {
  let cache = caches.get(db);
  if (!cache) {
    cache = new TrustCache(db);
    caches.set(db, cache);
  }
  return cache;
}
