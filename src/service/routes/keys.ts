// GET /v1/keys/:id/public: the public half of a signing or trusted key of the token's organization, as PEM
// (default) or the raw 32 bytes (?format=raw, or Accept: application/octet-stream). Another organization's
// key and no key at all get the same 403.
import type { FastifyInstance } from 'fastify';
import { readTrustedKey } from '../../db/trusted-keys';
import { publicKeyToPem } from '../../keys/keypair';
import { authenticate } from '../auth';
import type { ServiceContext } from '../context';
import { forbidden } from '../http-errors';
import { publicKeySchema } from '../schemas';

interface PublicKeyRequest {
  Params: { id: string };
  Querystring: { format?: 'pem' | 'raw' };
}

export function keysRoute(app: FastifyInstance, ctx: ServiceContext): void {
  app.get<PublicKeyRequest>(
    '/v1/keys/:id/public',
    { schema: publicKeySchema, config: { audit: 'key', auth: true }, onRequest: authenticate(ctx) },
    async (request, reply) => {
      const principal = request.principal!;
      const audit = request.audit!;
      const keyId = request.params.id.toLowerCase();
      audit.keyId = keyId;
      const signing = await ctx.signingKey(keyId);
      const row = signing ?? (await readTrustedKey(ctx.db, keyId));
      if (!row || row.orgId !== principal.orgId) throw forbidden(`this token may not read key ${keyId}`);
      audit.signerFingerprint = row.fingerprint;
      const raw =
        request.query.format === 'raw' || (request.query.format === undefined && /^application\/octet-stream\b/i.test(String(request.headers.accept ?? '')));
      audit.recorded = true;
      try {
        await ctx.audit.record(ctx.audit.event(audit, 'key.exported'));
      } catch (error) {
        audit.recorded = false;
        throw error;
      }
      reply.header('x-key-fingerprint', row.fingerprint);
      return raw
        ? reply.type('application/octet-stream').send(Buffer.from(row.publicKey))
        : reply.type('application/x-pem-file').send(publicKeyToPem(row.publicKey));
    },
  );
}
