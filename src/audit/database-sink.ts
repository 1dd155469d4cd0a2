// Audit rows in the audit_events table, each a link of the database's hash chain (chain.ts). Standalone
// events are appended in small batches (group commit: one statement for the events of the same moment,
// their hashes computed here, after the head this sink last wrote; see chain-append.ts); each write
// resolves once its row is stored. Key operations append their row inside their own transaction (insertIn).
import type { Knex } from 'knex';
import type { Database } from '../db/database';
import { cacheFor } from '../db/generation-cache';
import { type ChainHead, HASHED_COLUMNS } from './chain';
import { appendAfter, appendChained, hasChain } from './chain-append';
import type { AuditEvent, AuditEventType } from './events';
import type { AuditSink } from './sink';

const MAX_BATCH = 500;
/** The most event-loop turns a batch waits for more events (see gather). */
const GATHER_TURNS = 4;
// The columns of a row, chained or not, are the ones the row hash covers (chain.ts), in that order.
const BASE_COLUMNS: readonly (keyof AuditEvent)[] = HASHED_COLUMNS.filter((column) => column !== 'actor');
// A database whose schema predates the chain (a library user that opens it without migrating) gets today's
// unchained rows; `actor` (added by the second migration) is then written only by batches that carry one,
// so runners, which never set it, keep writing to a schema that predates that column too.
const ACTOR_COLUMNS: readonly (keyof AuditEvent)[] = HASHED_COLUMNS;
const columnsFor = (withActor: boolean) => (withActor ? ACTOR_COLUMNS : BASE_COLUMNS);
const hasActor = (event: AuditEvent) => event.actor !== null && event.actor !== undefined;
const placeholders = (columns: readonly string[]) => `(${columns.map(() => '?').join(', ')})`;
const BASE_ROW = placeholders(BASE_COLUMNS);
const ACTOR_ROW = placeholders(ACTOR_COLUMNS);

function unchainedSql(rows: number, withActor: boolean): string {
  return `insert into audit_events (${columnsFor(withActor).join(', ')}) values ${Array(rows)
    .fill(withActor ? ACTOR_ROW : BASE_ROW)
    .join(', ')}`;
}

function unchainedValues(events: readonly AuditEvent[]): [string, Knex.RawBinding[]] {
  const withActor = events.some(hasActor);
  return [unchainedSql(events.length, withActor), events.flatMap((event) => columnsFor(withActor).map((column) => event[column] ?? null))];
}

interface Pending {
  event: AuditEvent;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class DatabaseAuditSink implements AuditSink {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  /** Whether the schema has the chain; probed once (again after an unchained write failed: it may have been migrated since). */
  private chained: boolean | undefined;
  /** The head after this sink's last batch: the next one assumes it (and locks the head when it moved). */
  private head: ChainHead | undefined;

  constructor(readonly db: Database) {}

  write(event: AuditEvent): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ event, resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  /** @internal Appends the row inside the caller's transaction (key operations: the row commits with the change). */
  async insertIn(trx: Knex.Transaction, event: AuditEvent): Promise<void> {
    // Probed on the transaction itself: SQLite has one connection, which the transaction holds.
    this.chained ??= await hasChain(trx);
    if (this.chained) {
      await appendChained(trx, this.db.engine, [event]);
      return;
    }
    const [sql, values] = unchainedValues([event]);
    try {
      await trx.raw(sql, values);
    } catch (error) {
      this.chained = undefined;
      throw error;
    }
  }

  /** The batch after the head this sink last wrote, in one statement; if another writer moved it, after the locked head. */
  private async appendToChain(events: readonly AuditEvent[]): Promise<void> {
    const { engine } = this.db;
    const expected = this.head;
    this.head = undefined;
    const moved = expected && (await this.db.run((knex) => appendAfter(knex, engine, expected, events)));
    this.head = moved || (await this.db.run((knex) => knex.transaction((trx) => appendChained(trx, engine, events))));
  }

  private async append(events: readonly AuditEvent[]): Promise<void> {
    this.chained ??= await this.db.run((knex) => hasChain(knex));
    if (this.chained) {
      await this.appendToChain(events);
      return;
    }
    const [sql, values] = unchainedValues(events);
    try {
      await this.db.run((knex) => knex.raw(sql, values));
    } catch (error) {
      // Migrated meanwhile? The database refuses unchained rows from then on: append them to the chain instead.
      this.chained = undefined;
      if (!(await this.db.run((knex) => hasChain(knex)).catch(() => false))) throw error;
      this.chained = true;
      await this.appendToChain(events);
    }
  }

  /**
   * Lets the events of the same moment join the batch: GATHER_TURNS turns of the event loop, each bringing
   * the I/O finished meanwhile (verifications whose hashing completed while the last batch committed). On an
   * idle loop the turns pass at once; under load each brings more events, and fewer, larger commits cost
   * less per row.
   */
  private async gather(): Promise<void> {
    for (let turn = 0; turn < GATHER_TURNS && this.queue.length < MAX_BATCH; turn += 1) await new Promise((resolve) => setImmediate(resolve));
  }

  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0) {
      await this.gather();
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        await this.append(batch.map((item) => item.event));
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
  // The event's fields only (not the chain's seq, prev_hash and row_hash: `audit verify` reads those).
  return rows.map((row: AuditEvent) => ({
    id: row.id,
    event_type: row.event_type,
    timestamp: row.timestamp,
    org_id: row.org_id,
    key_id: row.key_id,
    package_path: row.package_path,
    package_hash: row.package_hash,
    signer_fingerprint: row.signer_fingerprint,
    signature_verified: row.signature_verified === null ? null : Boolean(row.signature_verified),
    reason: row.reason,
    actor: row.actor ?? null,
  }));
}
