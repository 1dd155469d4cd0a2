// Per-organization cache of resolved trust, valid only while the database's change generation is current.
import type { Database } from '../db/database';
import { cacheFor, GenerationCache } from '../db/generation-cache';
import { type EffectiveTrustedKey, loadTrustSet } from './acl';

export class TrustCache {
  private readonly cache: GenerationCache<Map<string, EffectiveTrustedKey>>;

  constructor(db: Database) {
    this.cache = new GenerationCache(db, (orgId) => db.run((knex) => loadTrustSet(knex, orgId)));
  }

  /** The keys `orgId` trusts now (fingerprint -> key). */
  trustedKeys(orgId: string): Promise<ReadonlyMap<string, EffectiveTrustedKey>> {
    return this.cache.get(orgId);
  }
}

const createTrustCache = (db: Database) => new TrustCache(db);

/** The one trust cache of a database handle, shared by every key manager and verifier using it. */
export function trustCacheFor(db: Database): TrustCache {
  return cacheFor(db, createTrustCache);
}
