// `Authorization: Bearer <token>` on every route that signs, uploads or reads keys. 401 without a token or
// with a wrong, revoked or expired one (one message for all three: the audit row says which), then the
// token's rate limit (429).
//
// Failed authentications are throttled where they come from, never in a valid token's way: a presented
// token that fails counts against its own SHA-256 (over the limit it is answered 429 before it is even
// looked up, so retrying it costs the database nothing), and a request with no usable token (none, or not
// shaped like one) counts against the client address. A valid token has a hash of its own that only its
// own failures fill, so no other client's failures, from the same address or a proxy's, ever refuse it.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { SealedSigningKey } from '../db/keys';
import type { ServiceContext } from './context';
import { forbidden, rateLimited, unauthorized } from './http-errors';
import { looksLikeToken, tokenHash } from '../db/tokens';
import { authenticateToken, isPrincipal, type Principal } from './tokens';

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;
export const INVALID_TOKEN_MESSAGE = 'the API token is not valid (unknown, revoked or expired)';

/**
 * The route's authentication hook. `rateLimit: false` skips the token's request bucket (failed
 * authentications are still limited): revoking one's own token is never refused for being busy.
 */
export function authenticate(ctx: ServiceContext, options: { rateLimit?: boolean } = {}) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const header = request.headers.authorization;
    const token = typeof header === 'string' ? BEARER.exec(header)?.[1] : undefined;
    if (!token) {
      throw refuse(
        ctx,
        addressKey(request),
        unauthorized('an API token is required: Authorization: Bearer <token> (CLOACINA_API_TOKEN for the CLI)', 'no bearer token'),
      );
    }
    // A token not shaped like one is never looked up: it counts against the address, as no token does.
    const throttleKey = looksLikeToken(token) ? `token-hash:${tokenHash(token).toString('hex')}` : addressKey(request);
    const blocked = ctx.authLimiter.blocked(throttleKey);
    if (blocked > 0) throw rateLimited(blocked);
    const result = await authenticateToken(ctx.db, token);
    if (!isPrincipal(result)) {
      if (request.audit) request.audit.actor = result.tokenId;
      throw refuse(
        ctx,
        throttleKey,
        unauthorized(INVALID_TOKEN_MESSAGE, result.tokenId ? `token ${result.tokenId} is ${result.reason}` : `${result.reason} token`),
      );
    }
    request.principal = result;
    if (request.audit) {
      request.audit.actor = result.tokenId;
      request.audit.orgId = result.orgId;
    }
    if (options.rateLimit === false) return;
    const wait = ctx.limiter.take(`token:${result.tokenId}`);
    if (wait > 0) throw rateLimited(wait);
  };
}

/** The client address (behind a proxy, X-Forwarded-For's client only with trustProxy). */
function addressKey(request: FastifyRequest): string {
  return `address:${request.ip}`;
}

/** A failed authentication counts against `key`; over its limit the answer is 429. */
function refuse(ctx: ServiceContext, key: string, error: Error): Error {
  const wait = ctx.authLimiter.take(key);
  return wait > 0 ? rateLimited(wait) : error;
}

/**
 * The signing key `keyId` when the principal may sign with it: in the token's scopes and of its
 * organization. One answer (403) for "not in the token's scopes", "another organization's key" and
 * "no such key", so a token learns nothing about keys it may not use.
 */
export async function keyForToken(ctx: ServiceContext, principal: Principal, keyId: string): Promise<SealedSigningKey> {
  const refused = () => forbidden(`this token may not sign with key ${keyId}`);
  if (!principal.scopes.has(`sign:${keyId}`)) throw refused();
  const key = await ctx.signingKey(keyId);
  if (!key || key.orgId !== principal.orgId) throw refused();
  return key;
}
