// The audit of service requests: one row per request that signs, uploads or is refused, with the API token's
// id as the actor (never the token). A response is sent only once its row is written; a request whose row
// cannot be written fails with 503 AUDIT_FAILED (the Vault rule). Every write is tracked, so a shutdown
// waits for the last of them.
import { auditEvent, writeAll } from '../audit/audit-trail';
import type { DatabaseAuditSink } from '../audit/database-sink';
import type { AuditEvent, AuditEventInput, AuditEventType } from '../audit/events';
import type { AuditSink } from '../audit/sink';

export type AuditKind = 'sign' | 'upload' | 'key' | 'token';

/** What is known of a request so far, for its audit row. */
export interface RequestAudit {
  kind: AuditKind;
  actor: string | null;
  orgId: string | null;
  keyId: string | null;
  packageHash: string | null;
  signerFingerprint: string | null;
  packagePath: string | null;
  /** Set once the request's row is written (or attempted): never two rows for one request. */
  recorded: boolean;
}

export function requestAudit(kind: AuditKind): RequestAudit {
  return { kind, actor: null, orgId: null, keyId: null, packageHash: null, signerFingerprint: null, packagePath: null, recorded: false };
}

/** The event type of a failed (not refused) request of this kind. */
export function failureEvent(kind: AuditKind): AuditEventType {
  return kind === 'sign' ? 'package.sign.failure' : kind === 'upload' ? 'package.upload.failure' : 'api.request.refused';
}

export class ServiceAudit {
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    readonly rows: DatabaseAuditSink,
    private readonly lines: readonly AuditSink[] = [],
  ) {}

  /** The event of a request, with what is known of it. */
  event(audit: RequestAudit, eventType: AuditEventType, extra: Partial<AuditEventInput> = {}): AuditEvent {
    return auditEvent({
      eventType,
      actor: audit.actor,
      orgId: audit.orgId,
      keyId: audit.keyId,
      packageHash: audit.packageHash,
      signerFingerprint: audit.signerFingerprint,
      packagePath: audit.packagePath,
      ...extra,
    });
  }

  /** Writes the row (and the JSON lines, if any); rejects with AUDIT_FAILED when any sink could not take it. */
  record(event: AuditEvent): Promise<void> {
    return this.track(writeAll(event, [this.rows, ...this.lines]));
  }

  /** The JSON lines of an event whose row was written in a transaction. */
  lineOf(event: AuditEvent): Promise<void> {
    return this.lines.length === 0 ? Promise.resolve() : this.track(writeAll(event, this.lines));
  }

  /** Tracks any work that writes audit rows (a store transaction), for `drained`. */
  track<T>(work: Promise<T>): Promise<T> {
    this.pending.add(work);
    const done = () => this.pending.delete(work);
    work.then(done, done);
    return work;
  }

  /** Resolves once every audit write started so far has settled. */
  async drained(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }
}
