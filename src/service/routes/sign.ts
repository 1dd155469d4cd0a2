// POST /v1/sign { keyId, packageHash, store? }: the version-1 signature document, byte for byte what
// offline signing writes. The key is unsealed and used inside Rust only; the package never travels.
import type { FastifyInstance } from 'fastify';
import { CloacinaSignError } from '../../errors';
import { native } from '../../native';
import { DetachedSignature } from '../../signing/detached-signature';
import { rfc3339Now } from '../../signing/sign';
import { authenticate } from '../auth';
import type { ServiceContext } from '../context';
import { forbidden } from '../http-errors';
import { storeSignedPackage } from '../package-store';
import { signSchema } from '../schemas';

interface SignBody {
  keyId: string;
  packageHash: string;
  store?: boolean;
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
      // One answer for "not in the token's scopes", "another organization's key" and "no such key".
      const refused = () => forbidden(`this token may not sign with key ${keyId}`);
      if (!principal.scopes.has(`sign:${keyId}`)) throw refused();
      const key = await ctx.signingKey(keyId);
      if (!key || key.orgId !== principal.orgId) throw refused();
      audit.signerFingerprint = key.fingerprint;
      if (key.revokedAt) throw new CloacinaSignError('KEY_REVOKED', `signing key ${keyId} was revoked at ${key.revokedAt} and cannot sign`);
      if (key.kekId !== ctx.kekId) throw new CloacinaSignError('KEY_UNSEAL_FAILED', `this service's key-encryption key does not seal key ${keyId}`);
      const signed = await native.signDigestWithSealedKey(packageHash, ctx.kek, key.sealedPrivateKey, { keyId, orgId: key.orgId }, key.publicKey);
      // The canonical document, formatted in Rust from fields Rust made (what DetachedSignature.toString() gives).
      const text = native.formatSignature({ ...signed, signedAt: rfc3339Now() });
      const event = ctx.audit.event(audit, 'package.signed', { signerFingerprint: signed.keyFingerprint, packageHash: signed.packageHash });
      audit.recorded = true;
      try {
        if (request.body.store) {
          await ctx.audit.track(storeSignedPackage(ctx.db, ctx.audit.rows, DetachedSignature.parse(text), { signingKeyId: keyId, event }));
          await ctx.audit.lineOf(event);
        } else {
          await ctx.audit.record(event);
        }
      } catch (error) {
        // Not audited (or not stored): the signature is not handed out. The failure gets its own row, if it can.
        audit.recorded = false;
        throw error;
      }
      ctx.metrics.signatures.inc({ outcome: 'signed' });
      ctx.metrics.signDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
      return reply.type('application/json').send(`${text}\n`);
    },
  );
}
