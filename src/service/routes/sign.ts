// POST /v1/sign { keyId, packageHash, store?, statement? }: the signature document (version 1, or with
// `statement` version 2), byte for byte what offline signing writes. The key is unsealed and used inside
// Rust only; the package never travels.
import type { FastifyInstance } from 'fastify';
import { storeSignature } from '../../db/packages';
import { CloacinaSignError } from '../../errors';
import { DetachedSignature } from '../../formats/v1';
import { quoted, checkName } from '../../names';
import { SIGNATURE_ID_HEADER } from '../../signing/api-client';
import { signPackage } from '../../signing/sign';
import { databaseSigner } from '../../signing/signers/database-signer';
import { refuseRevoked, revokedPackagesOf } from '../../trust/revoked-packages';
import { authenticate, keyForToken } from '../auth';
import type { ServiceContext } from '../context';
import { forbidden } from '../http-errors';
import { signSchema } from '../schemas';
import { recordSigned } from '../signed-metrics';

interface SignBody {
  keyId: string;
  packageHash: string;
  store?: boolean;
  /** Version 2: what the statement says besides the digest (issued_at is the service's clock). */
  statement?: { name: string; version: string; organization?: string; size: number; digestAlgorithm?: 'blake3' | 'sha256'; expiresAt?: string };
}

export function signRoute(app: FastifyInstance, ctx: ServiceContext): void {
  app.post<{ Body: SignBody }>(
    '/v1/sign',
    { schema: signSchema, config: { audit: 'sign', auth: true }, onRequest: authenticate(ctx) },
    async (request, reply) => {
      const started = process.hrtime.bigint();
      const principal = request.principal!;
      const audit = request.audit!;
      const keyId = request.body.keyId.toLowerCase();
      const packageHash = request.body.packageHash;
      audit.keyId = keyId;
      audit.packageHash = packageHash;
      const key = await keyForToken(ctx, principal, keyId);
      audit.signerFingerprint = key.fingerprint;
      const statement = request.body.statement;
      if (statement && request.body.store)
        throw new CloacinaSignError('INVALID_INPUT', "version-2 signatures travel as .sig files: the database stores version-1 signatures (Cloacina's format)");
      if (statement) {
        // Signed as given (a runner compares it exactly), but only a name the name rule accepts.
        checkName(statement.name, 'a statement name');
        // A statement speaks for the token's organization or for none: a runner of another organization that
        // trusts this one's keys (a grant) and expects its own name must never be handed a statement naming it.
        if (statement.organization !== undefined && statement.organization !== principal.orgName) {
          throw forbidden(
            `this token belongs to organization ${quoted(principal.orgName)}: it may not sign a statement naming organization ${quoted(statement.organization)}`,
          );
        }
      }
      // Never a signature for a package the organization revoked (403 PACKAGE_REVOKED, audited as a refused signing).
      const digestAlgorithm = statement ? (statement.digestAlgorithm ?? 'blake3') : 'sha256';
      refuseRevoked(await revokedPackagesOf(ctx.trust(principal.orgId)), { [digestAlgorithm]: packageHash.toLowerCase() }, `package ${packageHash}`);
      // The key's revocation and the KEK are checked by the signer; the canonical document is Rust's.
      const signer = databaseSigner({ keys: (id) => ctx.signingKey(id), keyId, kek: ctx.kek });
      const target = { digests: { size: statement?.size, [digestAlgorithm]: packageHash } };
      const signed = statement
        ? await signPackage(target, signer, {
            format: 'v2',
            statement: {
              name: statement.name,
              version: statement.version,
              organization: statement.organization,
              digest: statement.digestAlgorithm,
              expires: statement.expiresAt,
            },
          })
        : await signPackage(target, signer);
      const event = ctx.audit.event(audit, 'package.signed', { signerFingerprint: key.fingerprint, packageHash });
      audit.recorded = true;
      try {
        if (request.body.store) {
          const stored = await ctx.audit.track(
            storeSignature(ctx.db, DetachedSignature.parse(signed.document), { signingKeyId: keyId, audit: { rows: ctx.audit.rows, event } }),
          );
          reply.header(SIGNATURE_ID_HEADER, stored.signatureId);
          await ctx.audit.lineOf(event);
        } else {
          await ctx.audit.record(event);
        }
      } catch (error) {
        // Not audited (or not stored): the signature is not handed out. The failure gets its own row, if it can.
        audit.recorded = false;
        throw error;
      }
      recordSigned(ctx, 1, started);
      return reply.type('application/json').send(`${signed.document}\n`);
    },
  );
}
