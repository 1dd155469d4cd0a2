// `Authorization: Bearer <token>` on every route that signs, uploads or reads keys. 401 without a token or
// with a wrong, revoked or expired one (one message for all three: the audit row says which), then the
// token's rate limit (429). Failed authentications are limited per client address too, before the token is
// even looked up, so guessing costs the database nothing once a client is over its limit.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { rateLimited, unauthorized } from './http-errors';
import type { ServiceContext } from './context';
import { authenticateToken, isPrincipal } from './tokens';

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;
const INVALID = 'the API token is not valid (unknown, revoked or expired)';

export function authenticate(ctx: ServiceContext) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const client = `address:${request.ip}`;
    const header = request.headers.authorization;
    const token = typeof header === 'string' ? BEARER.exec(header)?.[1] : undefined;
    if (!token) {
      throw refuse(ctx, client, unauthorized('an API token is required: Authorization: Bearer <token> (CLOACINA_API_TOKEN for the CLI)', 'no bearer token'));
    }
    const blocked = ctx.authLimiter.blocked(client);
    if (blocked > 0) throw rateLimited(blocked);
    const result = await authenticateToken(ctx.db, token);
    if (!isPrincipal(result)) {
      if (request.audit) request.audit.actor = result.tokenId;
      throw refuse(ctx, client, unauthorized(INVALID, result.tokenId ? `token ${result.tokenId} is ${result.reason}` : `${result.reason} token`));
    }
    request.principal = result;
    if (request.audit) {
      request.audit.actor = result.tokenId;
      request.audit.orgId = result.orgId;
    }
    const wait = ctx.limiter.take(`token:${result.tokenId}`);
    if (wait > 0) throw rateLimited(wait);
  };
}

/** A failed authentication counts against the client's address; over its limit the answer is 429. */
function refuse(ctx: ServiceContext, client: string, error: Error): Error {
  const wait = ctx.authLimiter.take(client);
  return wait > 0 ? rateLimited(wait) : error;
}
