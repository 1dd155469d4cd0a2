// API tokens of the signing service: who may sign with which key, and upload for which organization.
// A token is `cst_` + 256 random bits (base64url), shown once at creation; only its SHA-256 is stored.
// Creating and revoking a token is audited in the same transaction (token.created, token.revoked), and,
// being a write transaction, moves the change counter: every service process drops its cached token
// lookups within 250 ms (see ChangeFeed), so a revoked token is refused everywhere within 1 s. Expiry is
// checked at every use.
import { createHash, randomBytes } from 'node:crypto';
import { CloacinaSignError } from '../errors';
import { checkName } from '../names';
import { futureExpiryTime } from '../time';
import type { Database } from './database';
import { newId, nowIso } from './ids';
import { requireOrganization, uuidOf } from './organizations';
import type { Row } from './rows';
import type { AuditedWrites } from './transaction';

export const TOKEN_PREFIX = 'cst_';
/** `cst_` and 43 base64url characters (32 bytes). Anything else is refused before any lookup. */
const TOKEN_FORMAT = /^cst_[A-Za-z0-9_-]{43}$/;
export const UPLOAD_SCOPE = 'upload';
const SIGN_SCOPE = /^sign:(.+)$/;
/** Longest lifetime `--expires` accepts: ten years. */
const MAX_LIFETIME_MS = 10 * 365 * 24 * 3600 * 1000;

export type TokenStatus = 'active' | 'revoked' | 'expired';

/** A token as listed: never the token, never its hash. */
export interface ApiTokenInfo {
  id: string;
  orgId: string;
  name: string | null;
  scopes: string[];
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  status: TokenStatus;
}

/** A stored token, as an authentication looks it up by its hash. */
export interface TokenRecord {
  id: string;
  orgId: string;
  orgName: string;
  hash: Buffer;
  scopes: ReadonlySet<string>;
  /** ms since the epoch; null: never expires. */
  expiresAt: number | null;
  revoked: boolean;
}

/** The audit events of token changes. */
export interface TokenEvent {
  eventType: 'token.created' | 'token.revoked';
  orgId: string;
  reason: string;
  /** Who made the change: the token's own id when a token revokes itself through the service; null from the CLI. */
  actor?: string | null;
}

export function newTokenSecret(): string {
  return `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/** SHA-256 of the whole token text: what is stored and looked up. */
export function tokenHash(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function looksLikeToken(text: string): boolean {
  return TOKEN_FORMAT.test(text);
}

function statusOf(row: { revoked_at: unknown; expires_at: unknown }, now = Date.now()): TokenStatus {
  if (row.revoked_at) return 'revoked';
  if (row.expires_at && Date.parse(String(row.expires_at)) <= now) return 'expired';
  return 'active';
}

function parseScopes(text: unknown): string[] {
  try {
    const scopes = JSON.parse(String(text));
    return Array.isArray(scopes) ? scopes.map(String) : [];
  } catch {
    return [];
  }
}

function infoFromRow(row: Row): ApiTokenInfo {
  return {
    id: String(row.id),
    orgId: String(row.org_id),
    name: row.name === null || row.name === undefined ? null : String(row.name),
    scopes: parseScopes(row.scopes),
    createdAt: String(row.created_at),
    expiresAt: row.expires_at ? String(row.expires_at) : null,
    revokedAt: row.revoked_at ? String(row.revoked_at) : null,
    status: statusOf(row as { revoked_at: unknown; expires_at: unknown }),
  };
}

/**
 * `30d`, `12h`, `45m`, `3600s` (from now) or an RFC 3339 time (a date that does not exist, such as
 * 2027-02-30, is refused); the expiry as ISO 8601 UTC. INVALID_INPUT for anything else, a time not in the
 * future, or more than ten years ahead.
 */
export function parseExpiry(text: string, now = Date.now()): string {
  let expiresAt: string;
  try {
    expiresAt = futureExpiryTime(text, new Date(now));
  } catch (error) {
    if (!(error instanceof CloacinaSignError && error.code === 'INVALID_INPUT')) throw error;
    throw new CloacinaSignError('INVALID_INPUT', `--expires: ${error.message}`);
  }
  if (Date.parse(expiresAt) - now > MAX_LIFETIME_MS) throw new CloacinaSignError('INVALID_INPUT', 'a token may live at most ten years');
  return expiresAt;
}

/** The canonical form of a scope (`sign:<key id>` with the id lower-case and hyphenated, or `upload`); INVALID_INPUT otherwise. */
export function normalizeScope(scope: string): string {
  const text = scope.trim();
  if (text === UPLOAD_SCOPE) return UPLOAD_SCOPE;
  const sign = SIGN_SCOPE.exec(text);
  if (sign) {
    const id = uuidOf(sign[1].trim());
    if (!id) throw new CloacinaSignError('INVALID_INPUT', `scope ${JSON.stringify(text)}: sign:<key-id> needs the id of a signing key`);
    return `sign:${id}`;
  }
  throw new CloacinaSignError('INVALID_INPUT', `unknown scope ${JSON.stringify(text)}: use sign:<key-id> (repeatable) or upload`);
}

export interface CreateTokenOptions {
  orgId: string;
  scopes: readonly string[];
  /** ISO 8601 UTC; null or absent: the token does not expire. */
  expiresAt?: string | null;
  name?: string | null;
}

/** Tokens in the database, each change written with its audit event (DbKeyManager's audited writes). */
export class TokenManager {
  constructor(private readonly keys: AuditedWrites<TokenEvent>) {}

  /**
   * Creates a token and returns it (the only time it is ever available) with its record. Every
   * `sign:<key-id>` scope must name an active signing key of the organization (checked inside the
   * transaction that stores the token).
   */
  async create(options: CreateTokenOptions): Promise<{ token: string; info: ApiTokenInfo }> {
    const scopes = [...new Set(options.scopes.map(normalizeScope))].sort();
    if (scopes.length === 0) throw new CloacinaSignError('INVALID_INPUT', 'a token needs at least one scope: --scope sign:<key-id> or --scope upload');
    const name = options.name === undefined || options.name === null ? null : checkName(options.name, 'a token name');
    const token = newTokenSecret();
    const row = {
      id: newId(),
      org_id: options.orgId,
      name,
      token_hash: tokenHash(token).toString('hex'),
      scopes: JSON.stringify(scopes),
      created_at: nowIso(),
      expires_at: options.expiresAt ?? null,
      revoked_at: null,
    };
    await this.keys.write('', async (trx) => {
      await requireOrganization(trx, options.orgId);
      for (const scope of scopes) {
        if (!scope.startsWith('sign:')) continue;
        const keyId = scope.slice('sign:'.length);
        const key = await trx('signing_keys').where({ id: keyId }).first('org_id', 'revoked_at');
        if (!key || key.org_id !== options.orgId) {
          throw new CloacinaSignError('INVALID_INPUT', `scope ${scope}: organization ${options.orgId} has no signing key ${keyId}`);
        }
        if (key.revoked_at) throw new CloacinaSignError('KEY_REVOKED', `scope ${scope}: signing key ${keyId} is revoked`);
      }
      await trx('api_tokens').insert(row);
      return [
        {
          eventType: 'token.created',
          orgId: options.orgId,
          reason: `API token ${row.id}${name ? ` "${name}"` : ''} created with scopes ${scopes.join(' ')}${row.expires_at ? `, expires ${row.expires_at}` : ', no expiry'}`,
        },
      ];
    });
    return { token, info: infoFromRow(row) };
  }

  async list(orgId: string): Promise<ApiTokenInfo[]> {
    const rows = await this.keys.db.run((knex) =>
      knex('api_tokens')
        .where({ org_id: orgId })
        .orderBy(['created_at', 'id'])
        .select('id', 'org_id', 'name', 'scopes', 'created_at', 'expires_at', 'revoked_at'),
    );
    return rows.map(infoFromRow);
  }

  /** Revokes a token; `actor` is recorded in its token.revoked row (the token's own id when it revokes itself). */
  async revoke(tokenId: string, options: { actor?: string } = {}): Promise<ApiTokenInfo> {
    const id = uuidOf(tokenId.trim());
    if (!id) throw new CloacinaSignError('NOT_FOUND', `API token ${JSON.stringify(tokenId)} not found (a token id is a UUID: see tokens list)`);
    return this.keys.write('', async (trx) => {
      const current = await trx('api_tokens').where({ id }).first('id', 'org_id', 'name', 'scopes', 'created_at', 'expires_at', 'revoked_at');
      if (!current) throw new CloacinaSignError('NOT_FOUND', `API token ${id} not found`);
      if (current.revoked_at) throw new CloacinaSignError('INVALID_INPUT', `API token ${id} is already revoked`);
      const revokedAt = nowIso();
      await trx('api_tokens').where({ id }).update({ revoked_at: revokedAt });
      return [
        { eventType: 'token.revoked', orgId: current.org_id, reason: `API token ${id} revoked`, actor: options.actor ?? null },
        infoFromRow({ ...current, revoked_at: revokedAt }),
      ];
    });
  }
}

/** The token with this SHA-256 (hex) and its organization's name; null when there is none. */
export async function findTokenByHash(db: Database, hashHex: string): Promise<TokenRecord | null> {
  const row = await db.run((knex) =>
    knex('api_tokens')
      .join('organizations', 'organizations.id', 'api_tokens.org_id')
      .where('api_tokens.token_hash', hashHex)
      .first(
        'api_tokens.id',
        'api_tokens.org_id',
        'organizations.name as org_name',
        'api_tokens.token_hash',
        'api_tokens.scopes',
        'api_tokens.expires_at',
        'api_tokens.revoked_at',
      ),
  );
  if (!row) return null;
  return {
    id: String(row.id),
    orgId: String(row.org_id),
    orgName: String(row.org_name),
    hash: Buffer.from(String(row.token_hash), 'hex'),
    scopes: new Set(parseScopes(row.scopes)),
    expiresAt: row.expires_at ? Date.parse(String(row.expires_at)) : null,
    revoked: Boolean(row.revoked_at),
  };
}
