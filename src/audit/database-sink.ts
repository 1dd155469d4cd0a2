// Audit rows in the audit_events table. Standalone events are inserted in small batches (group
// commit: one INSERT for the events of the same moment); each write resolves once its row is stored.
import type { Knex } from 'knex';
import type { Database } from '../db/database';
import { cacheFor } from '../db/generation-cache';
import type { AuditEvent, AuditEventType } from './events';
import type { AuditSink } from './sink';

const MAX_BATCH = 500;
const BASE_COLUMNS: readonly (keyof AuditEvent)[] = [
  'id',
  'event_type',
  'timestamp',
  'org_id',
  'key_id',
  'package_path',
  'package_hash',
  'signer_fingerprint',
  'signature_verified',
  'reason',
];
// `actor` (added by the second migration) is written only by batches that carry one, so runners and CLI
// commands, which never set it, keep writing to a database whose schema predates the column.
const ACTOR_COLUMNS: readonly (keyof AuditEvent)[] = [...BASE_COLUMNS, 'actor'];
const columnsFor = (withActor: boolean) => (withActor ? ACTOR_COLUMNS : BASE_COLUMNS);
const hasActor = (event: AuditEvent) => event.actor !== null && event.actor !== undefined;
const placeholders = (columns: readonly string[]) => `(${columns.map(() => '?').join(', ')})`;
const BASE_ROW = placeholders(BASE_COLUMNS);
const ACTOR_ROW = placeholders(ACTOR_COLUMNS);

// Every audit row is written by this one statement; a batch of them is the hot path of every verification,
// where plain SQL costs a few µs less per row than the query builder.
function insertSql(rows: number, withActor: boolean): string {
  return `insert into audit_events (${columnsFor(withActor).join(', ')}) values ${Array(rows)
    .fill(withActor ? ACTOR_ROW : BASE_ROW)
    .join(', ')}`;
}

function rowValues(event: AuditEvent, withActor: boolean): Knex.RawBinding[] {
  return columnsFor(withActor).map((column) => event[column] ?? null);
}

interface Pending {
  event: AuditEvent;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class DatabaseAuditSink implements AuditSink {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;

  constructor(readonly db: Database) {}

  write(event: AuditEvent): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ event, resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  /** Inserts the row inside the caller's transaction (key operations: the row commits with the change). */
  async insertIn(trx: Knex.Transaction, event: AuditEvent): Promise<void> {
    const withActor = hasActor(event);
    await trx.raw(insertSql(1, withActor), rowValues(event, withActor));
  }

  private async flushLoop(): Promise<void> {
    // Let the events of the same tick join the batch.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      const withActor = batch.some((item) => hasActor(item.event));
      try {
        await this.db.run((knex) =>
          knex.raw(
            insertSql(batch.length, withActor),
            batch.flatMap((item) => rowValues(item.event, withActor)),
          ),
        );
        for (const item of batch) item.resolve();
      } catch (error) {
        for (const item of batch) item.reject(error);
      }
    }
    this.flushing = undefined;
  }
}

const createSink = (db: Database) => new DatabaseAuditSink(db);

/** Rows in the database's audit_events table (one batching writer per database handle). */
export function auditToDatabase(db: Database): AuditSink {
  return cacheFor(db, createSink);
}

/** Events, newest first. */
export async function listAuditEvents(db: Database, options: { orgId?: string; limit?: number; eventType?: AuditEventType } = {}): Promise<AuditEvent[]> {
  const rows = await db.run((knex) => {
    const query = knex('audit_events')
      .select('*')
      .orderBy([
        { column: 'timestamp', order: 'desc' },
        { column: 'id', order: 'desc' },
      ]);
    if (options.orgId) query.where({ org_id: options.orgId });
    if (options.eventType) query.where({ event_type: options.eventType });
    return query.limit(options.limit ?? 100);
  });
  return rows.map((row: AuditEvent) => ({
    ...row,
    signature_verified: row.signature_verified === null ? null : Boolean(row.signature_verified),
    actor: row.actor ?? null,
  }));
}
