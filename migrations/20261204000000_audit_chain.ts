// Tamper evidence for the audit trail: every audit_events row is a link of one hash chain per database
// (src/audit/chain.ts defines the row hash). `seq` numbers the rows 1, 2, 3, ... without gaps; `prev_hash`
// is the row_hash of seq - 1 (64 zeros for seq 1); audit_chain_head holds the seq and hash of the last row,
// and is the row every writer locks.
//
// Rows written before this migration are back-filled: chained in (timestamp, id) order, the order they were
// written in as far as the table can tell. From then on they are as tamper-evident as new rows; a change made
// to them before the migration cannot be detected (nothing recorded them then). The head records how many
// rows the migration chained (`backfilled_rows`) and when (`started_at`), which `audit verify` reports.
//
// From here on a row without its chain fields is refused by the database itself: a writer that predates the
// chain (an older runner on the same database) fails closed instead of writing rows outside it. On SQLite,
// triggers also refuse a row that does not continue the head and move the head after each row, so one
// INSERT appends a batch atomically (src/audit/chain-append.ts).
import type { Knex } from 'knex';
import { GENESIS_HASH, HASHED_COLUMNS, hashedValuesOf, rowHash } from '../src/audit/chain';
import { NOT_CONTINUING } from '../src/audit/chain-append';

const TIME = 32;
/** Rows read and updated per statement (4 bindings each: well within both engines' limits). */
const PAGE = 500;

interface StoredRow extends Record<string, unknown> {
  id: string;
  timestamp: string;
}

/** Chains the existing rows in (timestamp, id) order, a page at a time; returns the head. */
async function backfill(knex: Knex): Promise<{ seq: number; hash: string }> {
  let seq = 0;
  let prev = GENESIS_HASH;
  let after: StoredRow | undefined;
  for (;;) {
    const query = knex('audit_events')
      .select('id', ...HASHED_COLUMNS.filter((column) => column !== 'id'))
      .orderBy([{ column: 'timestamp' }, { column: 'id' }])
      .limit(PAGE);
    if (after) {
      const last = after;
      // `timestamp >= ?` first, so each page is a range scan of audit_events_backfill from where the last
      // one ended (with the OR alone, both engines rescan from the start: quadratic in the rows).
      query
        .where('timestamp', '>=', last.timestamp)
        .where((where) => where.where('timestamp', '>', last.timestamp).orWhere((same) => same.where('timestamp', last.timestamp).where('id', '>', last.id)));
    }
    const rows = (await query) as StoredRow[];
    if (rows.length === 0) return { seq, hash: prev };
    const links: (string | number)[] = [];
    for (const row of rows) {
      const values = hashedValuesOf(row);
      if (typeof values === 'string') throw new Error(`audit_events row ${row.id} cannot be chained: ${values}`);
      seq += 1;
      const hash = rowHash(prev, seq, values);
      links.push(row.id, seq, prev, hash);
      prev = hash;
    }
    // One UPDATE per page, on both engines (SQLite has UPDATE ... FROM since 3.33).
    await knex.raw(
      `with v(id, seq, prev_hash, row_hash) as (values ${rows.map(() => '(?, ?, ?, ?)').join(', ')})
       update audit_events set seq = cast(v.seq as bigint), prev_hash = v.prev_hash, row_hash = v.row_hash
       from v where audit_events.id = v.id`,
      links,
    );
    after = rows[rows.length - 1];
  }
}

export async function up(knex: Knex): Promise<void> {
  const postgres = knex.client.dialect === 'postgresql';
  // PostgreSQL: this ALTER TABLE holds audit_events exclusively until the migration commits, so no row can be
  // written between the back-fill and the chain's head; SQLite: the whole migration run holds the write lock.
  await knex.schema.alterTable('audit_events', (t) => {
    t.bigInteger('seq').nullable();
    t.string('prev_hash', 64).nullable();
    t.string('row_hash', 64).nullable();
  });
  // The back-fill's order, indexed for the time of the migration only.
  await knex.raw('create index audit_events_backfill on audit_events (timestamp, id)');
  const head = await backfill(knex);
  await knex.raw('drop index audit_events_backfill');
  await knex.raw('create unique index audit_events_seq on audit_events (seq)');

  await knex.schema.createTable('audit_chain_head', (t) => {
    // One row, id 1.
    t.integer('id').primary();
    // The seq and row_hash of the last row (0 and GENESIS_HASH while the chain is empty).
    t.bigInteger('seq').notNullable();
    t.string('head_hash', 64).notNullable();
    // How many rows this migration chained, and when: they were written before the chain existed.
    t.bigInteger('backfilled_rows').notNullable();
    t.string('started_at', TIME).notNullable();
  });
  await knex('audit_chain_head').insert({ id: 1, seq: head.seq, head_hash: head.hash, backfilled_rows: head.seq, started_at: new Date().toISOString() });

  if (postgres) {
    await knex.raw('alter table audit_events add constraint audit_events_chained check (seq is not null and prev_hash is not null and row_hash is not null)');
    return;
  }
  await knex.raw(
    `create trigger audit_events_chained before insert on audit_events
     when new.seq is null or new.prev_hash is null or new.row_hash is null
     begin select raise(abort, 'audit_events rows must carry seq, prev_hash and row_hash: this writer predates the audit chain'); end`,
  );
  await knex.raw(
    `create trigger audit_events_linked before insert on audit_events
     when new.seq is not null and new.prev_hash is not null and (new.seq is not (select seq + 1 from audit_chain_head where id = 1) or new.prev_hash is not (select head_hash from audit_chain_head where id = 1))
     begin select raise(abort, 'the audit_events row ${NOT_CONTINUING}'); end`,
  );
  await knex.raw(
    `create trigger audit_chain_advance after insert on audit_events
     begin update audit_chain_head set seq = new.seq, head_hash = new.row_hash where id = 1; end`,
  );
}

export async function down(knex: Knex): Promise<void> {
  const postgres = knex.client.dialect === 'postgresql';
  await knex.schema.dropTableIfExists('audit_chain_head');
  if (postgres) await knex.raw('alter table audit_events drop constraint if exists audit_events_chained');
  else for (const trigger of ['audit_chain_advance', 'audit_events_linked', 'audit_events_chained']) await knex.raw(`drop trigger if exists ${trigger}`);
  await knex.raw('drop index if exists audit_events_seq');
  await knex.schema.alterTable('audit_events', (t) => {
    t.dropColumn('row_hash');
    t.dropColumn('prev_hash');
    t.dropColumn('seq');
  });
}
