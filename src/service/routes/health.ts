// GET /healthz (the process answers), GET /readyz (the database answers and is migrated, and a token KEK
// answers; 503 otherwise),
// GET /metrics (Prometheus text format). None needs a token; none says anything secret.
import type { FastifyInstance } from 'fastify';
import { pendingMigrations } from '../../db/migrate';
import { probeKek } from '../../keys/kek';
import type { ServiceContext } from '../context';
import { healthSchema, metricsSchema, readySchema } from '../schemas';

/** A readiness probe must answer quickly: the database gets this long, not the full operation bound. */
const READY_TIMEOUT_MS = 2000;

export function healthRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  app.get('/healthz', { schema: healthSchema }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: readySchema }, async (_request, reply) => {
    try {
      await ctx.db.run((knex) => knex.raw('select 1'), { timeoutMs: Math.min(READY_TIMEOUT_MS, ctx.db.timeoutMs) });
      const pending = await pendingMigrations(ctx.db);
      if (pending.length > 0) {
        return reply.code(503).send({ status: 'unready', reason: `${pending.length} pending migration(s): run \`cloacina-sign db migrate\`` });
      }
      try {
        await probeKek(ctx.kek, READY_TIMEOUT_MS);
      } catch (error) {
        const code = (error as { code?: string }).code ?? 'INTERNAL';
        return reply.code(503).send({ status: 'unready', reason: `the key-encryption key is not available (${code})` });
      }
      return { status: 'ready' };
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'INTERNAL';
      return reply.code(503).send({ status: 'unready', reason: `the database is not available (${code})` });
    }
  });

  app.get('/metrics', { schema: metricsSchema }, async (_request, reply) => reply.type(ctx.metrics.contentType).send(await ctx.metrics.render()));
}
