// Authenticating the signing service's requests by API token (tokens themselves: db/tokens.ts). A token is
// looked up by its SHA-256, cached while the change generation is current (a revoked token is refused
// everywhere within 1 s), compared in constant time, its revocation and expiry checked at every use.
import { timingSafeEqual } from 'node:crypto';
import type { Database } from '../db/database';
import { cacheFor, GenerationCache } from '../db/generation-cache';
import { findTokenByHash, looksLikeToken, type TokenRecord, tokenHash } from '../db/tokens';

const MAX_CACHED_LOOKUPS = 10_000;

/** An authenticated request's token. */
export interface Principal {
  tokenId: string;
  orgId: string;
  orgName: string;
  scopes: ReadonlySet<string>;
}

const createTokenCache = (db: Database) => new GenerationCache<TokenRecord | null>(db, (hashHex) => findTokenByHash(db, hashHex), MAX_CACHED_LOOKUPS);

/** Why a presented token was refused; `tokenId` when the token is known (revoked or expired). */
export interface AuthFailure {
  reason: 'missing' | 'malformed' | 'unknown' | 'revoked' | 'expired';
  tokenId: string | null;
}

/**
 * The principal a token stands for, or why it is refused. Looked up by its SHA-256 (cached while the
 * change generation is current), compared in constant time, revocation and expiry checked at this use.
 */
export async function authenticateToken(db: Database, token: string, now = Date.now()): Promise<Principal | AuthFailure> {
  if (!looksLikeToken(token)) return { reason: 'malformed', tokenId: null };
  const presented = tokenHash(token);
  const record = await cacheFor(db, createTokenCache).get(presented.toString('hex'));
  if (!record || record.hash.length !== presented.length || !timingSafeEqual(record.hash, presented)) return { reason: 'unknown', tokenId: null };
  if (record.revoked) return { reason: 'revoked', tokenId: record.id };
  if (record.expiresAt !== null && record.expiresAt <= now) return { reason: 'expired', tokenId: record.id };
  return { tokenId: record.id, orgId: record.orgId, orgName: record.orgName, scopes: record.scopes };
}

export function isPrincipal(value: Principal | AuthFailure): value is Principal {
  return 'orgId' in value;
}
