// One audit event, written to every sink. An event that any sink could not take is an AUDIT_FAILED
// error: the callers that must not act unaudited (loading, signing, key operations) stop there.
import { newOrderedId, nowIso } from '../db/ids';
import { CloacinaSignError } from '../errors';
import type { AuditEvent, AuditEventInput } from './events';
import type { AuditSink } from './sink';

export class AuditTrail {
  readonly sinks: readonly AuditSink[];

  constructor(sinks: AuditSink | readonly AuditSink[]) {
    this.sinks = Array.isArray(sinks) ? [...sinks] : [sinks as AuditSink];
  }

  /** Writes the event to every sink; resolves with it once all have it. Without sinks (`audit: []`) no event is made. */
  async record(input: AuditEventInput): Promise<AuditEvent | undefined> {
    if (this.sinks.length === 0) return undefined;
    const event = auditEvent(input);
    await writeAll(event, this.sinks);
    return event;
  }
}

export async function writeAll(event: AuditEvent, sinks: readonly AuditSink[]): Promise<void> {
  if (sinks.length === 1) {
    // The common case, without the bookkeeping of several sinks.
    return sinks[0].write(event).catch((error: unknown) => {
      throw auditFailed(event, error);
    });
  }
  const results = await Promise.allSettled(sinks.map((sink) => sink.write(event)));
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw auditFailed(event, failed.reason);
}

function auditFailed(event: AuditEvent, error: unknown): CloacinaSignError {
  const reason = error instanceof Error ? error.message : String(error);
  return new CloacinaSignError('AUDIT_FAILED', `the ${event.event_type} event could not be audited: ${reason}`, { cause: error });
}

export function auditEvent(input: AuditEventInput): AuditEvent {
  const event: AuditEvent = {
    id: newOrderedId(),
    event_type: input.eventType,
    timestamp: nowIso(),
    org_id: input.orgId ?? null,
    key_id: input.keyId ?? null,
    package_path: input.packagePath ?? null,
    package_hash: input.packageHash ?? null,
    signer_fingerprint: input.signerFingerprint ?? null,
    signature_verified: input.signatureVerified ?? null,
    reason: input.reason ?? null,
    actor: input.actor ?? null,
  };
  if (input.digestAlgorithm) event.digest_algorithm = input.digestAlgorithm;
  return event;
}

/** The reason an audit event gives for an error: its code and message. */
export function failureReason(error: unknown): string {
  return error instanceof CloacinaSignError ? `${error.code}: ${error.message}` : `INTERNAL: ${error instanceof Error ? error.message : String(error)}`;
}

/**
 * Audits a failure. The failure stays what the caller throws: if its event cannot be written, the
 * audit error becomes the failure's `cause` (when it has none), so nothing is hidden.
 */
export async function recordFailure(trail: AuditTrail, input: AuditEventInput, failure: unknown): Promise<void> {
  try {
    await trail.record({ ...input, reason: failureReason(failure) });
  } catch (auditError) {
    if (failure instanceof Error && failure.cause === undefined) {
      Object.defineProperty(failure, 'cause', { value: auditError, configurable: true, writable: true });
    }
  }
}
