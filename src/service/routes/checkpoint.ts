// GET /v1/audit/checkpoint: the latest checkpoint of the audit chain (the one covering the most rows; of
// those, the newest) as its signed note, for witnesses and monitors, as a transparency log serves its
// checkpoint. No token: a checkpoint is public and signed. Rate limited per client address, as failed
// authentications are; 404 NOT_FOUND while none was issued.
import type { FastifyInstance } from 'fastify';
import { latestCheckpoint } from '../../audit/checkpoint-issue';
import type { ServiceContext } from '../context';
import { ApiError, rateLimited } from '../http-errors';
import { checkpointSchema } from '../schemas';

export function checkpointRoute(app: FastifyInstance, ctx: ServiceContext): void {
  app.get(
    '/v1/audit/checkpoint',
    {
      schema: checkpointSchema,
      onRequest: async (request) => {
        const wait = ctx.authLimiter.take(`checkpoint-address:${request.ip}`);
        if (wait > 0) throw rateLimited(wait);
      },
    },
    async (_request, reply) => {
      const checkpoint = await latestCheckpoint(ctx.db);
      reply.header('cache-control', 'no-store');
      if (!checkpoint) throw new ApiError(404, 'NOT_FOUND', 'no audit checkpoint has been issued yet');
      return reply.type('text/plain; charset=utf-8').send(checkpoint.note);
    },
  );
}
