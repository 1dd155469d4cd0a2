// The audit trail: every event is one pino JSON line on the configured destination and one
// audit_events row. Standalone events are inserted in small batches (group commit); events that belong
// to a key operation are inserted in that operation's transaction and logged after it commits.
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Database } from '../db/database';
import { newId, nowIso } from '../db/ids';
import { AuditEvent, AuditEventInput, AuditEventType } from './events';

export type AuditDestination = string | NodeJS.WritableStream | false;

export interface AuditLogOptions {
  /** Where rows go; without it only the JSON line is written. */
  db?: Database;
  /** A file path (appended to), a stream, or false for no JSON line. Default: stderr, never stdout. */
  destination?: AuditDestination;
}

const MAX_BATCH = 500;
const COLUMNS: readonly (keyof AuditEvent)[] = ['id', 'event_type', 'timestamp', 'org_id', 'key_id', 'package_path', 'package_hash', 'signer_fingerprint', 'signature_verified', 'reason'];
const ROW = `(${COLUMNS.map(() => '?').join(', ')})`;

// Every audit row is written by this one statement; a batch of them is the hot path of every verification,
// where plain SQL costs a few µs less per row than the query builder.
function insertSql(rows: number): string {
  return `insert into audit_events (${COLUMNS.join(', ')}) values ${Array(rows).fill(ROW).join(', ')}`;
}

function rowValues(event: AuditEvent): Knex.RawBinding[] {
  return COLUMNS.map((column) => event[column]);
}

interface Pending {
  event: AuditEvent;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class AuditLog {
  private readonly db: Database | undefined;
  private readonly logger: Logger | undefined;
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;

  constructor(options: AuditLogOptions = {}) {
    this.db = options.db;
    this.logger = createLogger(options.destination ?? 2);
  }

  /** Writes the event's line and row; resolves once the row is stored (rejects with DATABASE_ERROR if not). */
  async record(input: AuditEventInput): Promise<AuditEvent> {
    const event = AuditLog.event(input);
    this.log(event);
    if (this.db) {
      await new Promise<void>((resolve, reject) => {
        this.queue.push({ event, resolve, reject });
        this.flushing ??= this.flushLoop();
      });
    }
    return event;
  }

  /** Inserts the row inside the caller's transaction; call `log(event)` after it commits. */
  async insertIn(trx: Knex.Transaction, input: AuditEventInput): Promise<AuditEvent> {
    const event = AuditLog.event(input);
    await trx.raw(insertSql(1), rowValues(event));
    return event;
  }

  /** The JSON line of an event (no row). */
  log(event: AuditEvent): void {
    this.logger?.info(event);
  }

  /** Events, newest first. */
  async list(options: { orgId?: string; limit?: number; eventType?: AuditEventType } = {}): Promise<AuditEvent[]> {
    if (!this.db) return [];
    const rows = await this.db.run((knex) => {
      const query = knex('audit_events').select('*').orderBy([{ column: 'timestamp', order: 'desc' }, { column: 'id', order: 'desc' }]);
      if (options.orgId) query.where({ org_id: options.orgId });
      if (options.eventType) query.where({ event_type: options.eventType });
      return query.limit(options.limit ?? 100);
    });
    return rows.map((row: AuditEvent) => ({ ...row, signature_verified: row.signature_verified === null ? null : Boolean(row.signature_verified) }));
  }

  /** Waits for queued rows to be stored. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flushLoop(): Promise<void> {
    // Let the events of the same tick join the batch.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        await this.db!.run((knex) => knex.raw(insertSql(batch.length), batch.flatMap((item) => rowValues(item.event))));
        for (const item of batch) item.resolve();
      } catch (error) {
        for (const item of batch) item.reject(error);
      }
    }
    this.flushing = undefined;
  }

  static event(input: AuditEventInput): AuditEvent {
    return {
      id: newId(),
      event_type: input.eventType,
      timestamp: nowIso(),
      org_id: input.orgId ?? null,
      key_id: input.keyId ?? null,
      package_path: input.packagePath ?? null,
      package_hash: input.packageHash ?? null,
      signer_fingerprint: input.signerFingerprint ?? null,
      signature_verified: input.signatureVerified ?? null,
      reason: input.reason ?? null,
    };
  }
}

function createLogger(destination: AuditDestination | number): Logger | undefined {
  if (destination === false) return undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pino = require('pino') as typeof import('pino');
  const options = { base: undefined, timestamp: false, messageKey: 'message' };
  if (typeof destination === 'number' || typeof destination === 'string') {
    const dest = typeof destination === 'number' ? destination : destination;
    return pino.default(options, pino.destination({ dest, sync: true, append: true, mkdir: typeof dest === 'string' }));
  }
  return pino.default(options, destination);
}
