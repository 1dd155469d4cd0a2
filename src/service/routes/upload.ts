// POST /v1/orgs/:org/packages: the raw package as the body (application/octet-stream), its signature
// document in the Cloacina-Signature header (base64). The body is streamed, never buffered: hashed as it
// arrives and counted against the limit (413 and the connection closed as soon as it is exceeded). The
// digest is then verified against the organization's trust, and the package record and its signature are
// stored with the request's audit row in one transaction. A failed verification is 403 with its code, and
// nothing is stored.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { CloacinaSignError, MalformedSignature, SignatureNotFound } from '../../errors';
import { native, NativeStreamHasher, nativeMethods } from '../../native';
import { uuidOf, normalizeName } from '../../db/organizations';
import type { NameConflict } from '../../db/packages';
import { checkName, quoted } from '../../names';
import { DetachedSignature } from '../../formats/v1';
import { uploadVerified, type VerifiedUpload } from '../../verification/upload';
import { authenticate } from '../auth';
import type { ServiceContext } from '../context';
import { ApiError, forbidden, tooLarge } from '../http-errors';
import { uploadSchema } from '../schemas';
import { UPLOAD_SCOPE } from '../../db/tokens';

export const SIGNATURE_HEADER = 'cloacina-signature';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

interface UploadRequest {
  Params: { org: string };
  Querystring: { name?: string; name_conflict?: NameConflict };
  Headers: { 'cloacina-signature'?: string };
}

/** The signature document of the header: SignatureNotFound without one, MalformedSignature when it is not valid. */
export function signatureFromHeader(value: string | undefined): DetachedSignature {
  if (value === undefined || value.trim() === '') throw new SignatureNotFound(`no signature: send the .sig document, base64, in the Cloacina-Signature header`);
  const text = value.trim();
  if (!BASE64.test(text) || text.length % 4 !== 0) throw new MalformedSignature('the Cloacina-Signature header is not standard base64');
  return DetachedSignature.parse(Buffer.from(text, 'base64'));
}

/**
 * Hashes the body as it arrives; rejects with 413 once past `limit`, with UPLOAD_ABORTED when the connection
 * closes first. This thread only copies each read into the native hasher, whose own thread hashes: receiving
 * and hashing overlap instead of taking turns on one core. When the hasher falls behind, the body is paused
 * until it catches up, so memory stays bounded whatever the client's speed.
 */
function hashBody(stream: IncomingMessage, limit: number, onBytes: (bytes: number) => void): Promise<{ packageHash: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const hasher = new NativeStreamHasher();
    let bytes = 0;
    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onClosed);
      stream.off('close', onClosed);
      outcome();
    };
    const fail = (error: Error) =>
      settle(() => {
        hasher.abandon();
        reject(error);
      });
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > limit) {
        // Not read any further: the response closes the connection.
        stream.pause();
        fail(tooLarge(limit));
        return;
      }
      onBytes(chunk.length);
      if (!hasher.update(chunk)) {
        stream.pause();
        hasher.room().then(
          () => {
            if (!settled) stream.resume();
          },
          (error: Error) => fail(error),
        );
      }
    };
    const onEnd = () =>
      settle(() => {
        nativeMethods.streamHasherFinish(hasher).then((packageHash) => resolve({ packageHash, bytes }), reject);
      });
    const onClosed = () =>
      fail(
        new CloacinaSignError(
          'UPLOAD_ABORTED',
          `the connection closed after ${bytes} bytes, before the upload ended (idle or interrupted): nothing was stored`,
        ),
      );
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onClosed);
    stream.on('close', onClosed);
    if (stream.readableEnded) onEnd();
  });
}

export function uploadRoute(app: FastifyInstance, ctx: ServiceContext): void {
  // This scope alone takes octet-stream bodies, handed through as the request stream (never buffered).
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
    scope.post<UploadRequest>(
      '/v1/orgs/:org/packages',
      {
        schema: uploadSchema,
        config: {
          audit: 'upload',
          auth: true,
          openapi: { requestBody: { required: true, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } } },
        },
        onRequest: authenticate(ctx),
      },
      async (request, reply) => {
        const started = process.hrtime.bigint();
        const principal = request.principal!;
        const audit = request.audit!;
        // Checked before it is recorded anywhere: a name that could forge a line or hold a NUL never reaches the audit trail.
        audit.packagePath = request.query.name === undefined ? null : checkName(request.query.name, 'a package name');
        // By id or by name, the token's own organization only; one answer for every other.
        const org = request.params.org;
        const asId = uuidOf(org.trim());
        const own = asId ? asId === principal.orgId : normalizeName(org) === principal.orgName;
        if (!principal.scopes.has(UPLOAD_SCOPE) || !own) throw forbidden(`this token may not upload packages to organization ${quoted(org)}`);
        // A missing or malformed signature is a failed verification of the upload (as in a loader), before its body is read.
        const headerStartedAt = performance.now();
        let document: DetachedSignature;
        try {
          document = signatureFromHeader(request.headers[SIGNATURE_HEADER]);
        } catch (error) {
          ctx.metrics.verifications.failed('upload', error, headerStartedAt);
          throw error;
        }
        audit.signerFingerprint = document.keyFingerprint;
        const declared = Number(request.headers['content-length']);
        if (Number.isFinite(declared) && declared > ctx.maxUploadBytes) throw tooLarge(ctx.maxUploadBytes);
        const body = request.body as IncomingMessage | undefined;
        if (body !== undefined && typeof body.on !== 'function') {
          throw new ApiError(415, 'INVALID_INPUT', 'an upload is the raw package: Content-Type: application/octet-stream');
        }
        ctx.metrics.uploadsInProgress.inc();
        let received: { packageHash: string; bytes: number };
        try {
          received = body
            ? await hashBody(body, ctx.maxUploadBytes, (bytes) => ctx.metrics.uploadBytes.inc(bytes))
            : { packageHash: createHash('sha256').digest('hex'), bytes: 0 };
        } finally {
          ctx.metrics.uploadsInProgress.dec();
        }
        audit.packageHash = received.packageHash;
        const verifyStartedAt = performance.now();
        let uploaded: VerifiedUpload;
        try {
          uploaded = await ctx.audit.track(
            uploadVerified(
              ctx.db,
              ctx.trust(principal.orgId),
              native.parseSignatureDocument(Buffer.from(document.toString())),
              { label: audit.packagePath ?? `the upload (${received.bytes} bytes)`, sha256: received.packageHash },
              {
                name: audit.packagePath,
                nameConflict: request.query.name_conflict,
                rows: ctx.audit.rows,
                event: (verified) => {
                  ctx.metrics.verifications.verified('upload', verified.documentVersion === 2 ? 2 : 1, verifyStartedAt, received.bytes);
                  audit.recorded = true;
                  return ctx.audit.event(audit, 'package.uploaded', { signatureVerified: true, signerFingerprint: verified.keyFingerprint });
                },
              },
            ),
          );
          await ctx.audit.lineOf(uploaded.event);
        } catch (error) {
          // Refused before the store: a failed verification. Verified but not stored: the request's row is still to be written.
          if (audit.recorded) audit.recorded = false;
          else ctx.metrics.verifications.failed('upload', error, verifyStartedAt);
          throw error;
        }
        const { stored, verified } = uploaded;
        ctx.metrics.uploads.inc({ outcome: 'uploaded' });
        ctx.metrics.uploadDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
        return reply.code(201).send({
          packageId: stored.packageId,
          signatureId: stored.signatureId,
          orgId: principal.orgId,
          packageHash: received.packageHash,
          keyFingerprint: verified.keyFingerprint,
          signedAt: verified.signedAt,
          name: stored.name,
          bytes: received.bytes,
        });
      },
    );
  });
}
