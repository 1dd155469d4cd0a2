// Where audit events go. A sink resolves once the event is written and rejects if it could not be:
// callers that must not proceed unaudited (loading, key operations) wait for it.
import { constants, open, write } from 'node:fs';
import { ecsFields } from './ecs';
import type { AuditEvent } from './events';

export interface AuditSink {
  write(event: AuditEvent): Promise<void>;
}

/**
 * One event per line: the flat snake_case fields of the audit_events row (as always), then the same event
 * in ECS form (`@timestamp`, `event.*`, `file.*`, `organization.id`, `user.id`; see ecs.ts).
 */
export function auditLine(event: AuditEvent): string {
  const line = {
    id: event.id,
    event_type: event.event_type,
    timestamp: event.timestamp,
    org_id: event.org_id,
    key_id: event.key_id,
    package_path: event.package_path,
    package_hash: event.package_hash,
    signer_fingerprint: event.signer_fingerprint,
    signature_verified: event.signature_verified,
    reason: event.reason,
    actor: event.actor,
    ...ecsFields(event),
  };
  return `${JSON.stringify(line)}\n`;
}

/** JSON lines on a stream (for example process.stderr); a write error rejects. */
export function auditToStream(stream: NodeJS.WritableStream): AuditSink {
  return {
    write: (event) =>
      new Promise((resolve, reject) => {
        stream.write(auditLine(event), (error) => (error ? reject(error) : resolve()));
      }),
  };
}

const APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOCTTY;

/** JSON lines appended to a file (created with mode 0600, kept open for the life of the process). */
export function auditToFile(path: string): AuditSink {
  let fd: Promise<number> | undefined;
  // Lines are written one after another, in the order they were recorded.
  let tail: Promise<void> = Promise.resolve();
  const descriptor = () =>
    (fd ??= new Promise<number>((resolve, reject) => open(path, APPEND, 0o600, (error, opened) => (error ? reject(error) : resolve(opened)))).catch(
      (error: unknown) => {
        fd = undefined; // try again on the next event
        throw error;
      },
    ));
  const append = async (line: Buffer) => {
    const target = await descriptor();
    let offset = 0;
    while (offset < line.length) {
      offset += await new Promise<number>((resolve, reject) =>
        write(target, line, offset, line.length - offset, null, (error, written) => (error ? reject(error) : resolve(written))),
      );
    }
  };
  return {
    write(event) {
      const done = tail.then(() => append(Buffer.from(auditLine(event))));
      tail = done.catch(() => undefined);
      return done;
    },
  };
}
