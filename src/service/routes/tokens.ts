// DELETE /v1/tokens/self: the bearer revokes its own token (a CI job ends its token when it is done).
// Revoked and audited in one transaction (token.revoked, the token's id as the actor); 204. Like every
// revocation it moves the change counter, so every service process sharing the database refuses the token
// within 1 s (this one at once). Never rate limited: ending a token is not refused for being busy.
import type { FastifyInstance } from 'fastify';
import { CloacinaSignError } from '../../errors';
import { authenticate, INVALID_TOKEN_MESSAGE } from '../auth';
import type { ServiceContext } from '../context';
import { unauthorized } from '../http-errors';
import { revokeSelfSchema } from '../schemas';

export function tokensRoute(app: FastifyInstance, ctx: ServiceContext): void {
  app.delete(
    '/v1/tokens/self',
    { schema: revokeSelfSchema, config: { audit: 'token', auth: true }, onRequest: authenticate(ctx, { rateLimit: false }) },
    async (request, reply) => {
      const principal = request.principal!;
      const audit = request.audit!;
      // The token.revoked row is written in the revoking transaction: no second row for this request.
      audit.recorded = true;
      try {
        await ctx.audit.track(ctx.tokens.revoke(principal.tokenId, { actor: principal.tokenId }));
      } catch (error) {
        audit.recorded = false;
        // Revoked meanwhile (by another request, another process or the CLI): the token is no longer valid.
        if (error instanceof CloacinaSignError && (error.code === 'NOT_FOUND' || error.code === 'INVALID_INPUT')) {
          throw unauthorized(INVALID_TOKEN_MESSAGE, `token ${principal.tokenId} was revoked meanwhile`);
        }
        throw error;
      }
      return reply.code(204).send();
    },
  );
}
