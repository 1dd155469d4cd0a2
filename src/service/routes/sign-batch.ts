// POST /v1/sign/batch { keyId, packageHashes }: up to 256 version-1 signatures with one database key in one
// request. Every digest is checked before anything is signed (the token's scope and the key once, the
// rate limit once per signature, each digest against the organization's revoked packages), then all are
// signed in one native call (the sealed key opened once) or none is. One package.signed row per signature,
// all of the batch's rows in one transaction, written before the answer.
import type { FastifyInstance } from 'fastify';
import { appendChained } from '../../audit/chain-append';
import { nowIso } from '../../db/ids';
import { CloacinaSignError } from '../../errors';
import { databaseSigner } from '../../signing/signers/database-signer';
import { refuseRevoked, revokedPackagesOf } from '../../trust/revoked-packages';
import { authenticate, keyForToken } from '../auth';
import type { ServiceContext } from '../context';
import { ApiError, rateLimited } from '../http-errors';
import { signBatchSchema } from '../schemas';
import { recordSigned } from '../signed-metrics';

interface SignBatchBody {
  keyId: string;
  packageHashes: string[];
}

export function signBatchRoute(app: FastifyInstance, ctx: ServiceContext): void {
  app.post<{ Body: SignBatchBody }>(
    '/v1/sign/batch',
    { schema: signBatchSchema, config: { audit: 'sign', auth: true }, onRequest: authenticate(ctx) },
    async (request, reply) => {
      const started = process.hrtime.bigint();
      const principal = request.principal!;
      const audit = request.audit!;
      const keyId = request.body.keyId.toLowerCase();
      const packageHashes = request.body.packageHashes;
      audit.keyId = keyId;
      // Each signature is one request of the token's rate limit: authentication took the first.
      const extra = packageHashes.length - 1;
      if (extra > 0) {
        const { burst } = ctx.limiter.limit;
        if (packageHashes.length > burst) {
          throw new ApiError(
            429,
            'API_RATE_LIMITED',
            `a batch of ${packageHashes.length} signatures exceeds this token's burst of ${burst}: send at most ${burst} per request`,
            {
              refusal: true,
            },
          );
        }
        const wait = ctx.limiter.take(`token:${principal.tokenId}`, Date.now(), extra);
        if (wait > 0) throw rateLimited(wait);
      }
      const key = await keyForToken(ctx, principal, keyId);
      audit.signerFingerprint = key.fingerprint;
      // Never a signature for a package the organization revoked: the first one found refuses the whole batch.
      const revoked = await revokedPackagesOf(ctx.trust(principal.orgId));
      packageHashes.forEach((packageHash, index) => {
        refuseRevoked(revoked, { sha256: packageHash }, `package ${packageHash} (item ${index} of the batch; nothing was signed)`);
      });
      // The key's revocation and the KEK are checked by the signer, for the whole batch at once.
      const signer = databaseSigner({ keys: (id) => ctx.signingKey(id), keyId, kek: ctx.kek });
      const documents = await signer.signDigests(packageHashes, nowIso());
      const events = packageHashes.map((packageHash) => ctx.audit.event(audit, 'package.signed', { signerFingerprint: key.fingerprint, packageHash }));
      audit.recorded = true;
      try {
        await ctx.audit.track(ctx.db.run((knex) => knex.transaction((trx) => appendChained(trx, ctx.db.engine, events))));
        await Promise.all(events.map((event) => ctx.audit.lineOf(event)));
      } catch (error) {
        // Not audited: no signature is handed out. The failure gets its own row, if it can.
        audit.recorded = false;
        throw error instanceof CloacinaSignError ? error : new CloacinaSignError('AUDIT_FAILED', 'the signatures could not be audited', { cause: error });
      }
      recordSigned(ctx, packageHashes.length, started);
      return reply.send({ signatures: packageHashes.map((packageHash, index) => ({ packageHash, document: documents[index] })) });
    },
  );
}
