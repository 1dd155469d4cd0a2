// What every route of the signing service shares: the database, the KEK (held by this process alone), the
// audit writer, the limiters, the metrics, the caches and the tokens.
import type { Database } from '../db/database';
import type { Kek } from '../keys/kek';
import { cacheFor, GenerationCache } from '../db/generation-cache';
import { readSealedSigningKey, type SealedSigningKey } from '../db/keys';
import { databaseTrust } from '../trust/database-trust';
import type { TrustSource } from '../trust/trust-source';
import type { ServiceAudit } from './audit';
import type { ServiceMetrics } from '../metrics/service-metrics';
import type { RateLimiter } from './rate-limit';
import type { TokenManager } from '../db/tokens';

/** A log line's fields (JSON on stderr). Never a token, a KEK, key material or a request body. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface ServiceContext {
  db: Database;
  kek: Kek;
  /** The KEK's public id (kekId), compared with each key's before unsealing. */
  kekId: string;
  metrics: ServiceMetrics;
  audit: ServiceAudit;
  /** Per API token. */
  limiter: RateLimiter;
  /** Failed authentications: per presented token's hash, or per client address for requests without a usable token. */
  authLimiter: RateLimiter;
  maxUploadBytes: number;
  log: (level: 'info' | 'warn' | 'error', message: string, fields?: LogFields) => void;
  /** Signing keys by id (null: no such key), while the change generation is current. */
  signingKey(keyId: string): Promise<SealedSigningKey | null>;
  /** What an organization (by id) trusts now. */
  trust(orgId: string): TrustSource;
  /** API tokens (a token revoking itself), each change audited in its own transaction. */
  tokens: TokenManager;
}

const createKeyCache = (db: Database) => new GenerationCache<SealedSigningKey | null>(db, (keyId) => readSealedSigningKey(db, keyId), 10_000);

export function signingKeyLookup(db: Database): (keyId: string) => Promise<SealedSigningKey | null> {
  const cache = cacheFor(db, createKeyCache);
  return (keyId) => cache.get(keyId);
}

export function trustLookup(db: Database): (orgId: string) => TrustSource {
  const trusts = new Map<string, TrustSource>();
  return (orgId) => {
    let trust = trusts.get(orgId);
    if (!trust) {
      trust = databaseTrust(db, { org: orgId });
      trusts.set(orgId, trust);
    }
    return trust;
  };
}
