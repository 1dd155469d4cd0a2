// Appending to the audit hash chain (chain.ts defines it), by any number of writers in any number of
// processes, one after another.
//
// Two ways, one outcome:
//  - appendChained: inside a transaction that first locks the head (PostgreSQL: SELECT ... FOR UPDATE;
//    SQLite: an UPDATE of the head as the transaction's first statement, which takes the database's write
//    lock, so the transaction never upgrades a read lock). Key operations use it inside their own write
//    transaction; batches use it when they do not know the head.
//  - appendAfter: one autocommitted statement that assumes the head this writer last saw, and writes
//    nothing if another writer has moved it since (then the batch takes appendChained). A process that is
//    the only writer most of the time pays one statement per batch, as before the chain, instead of a
//    transaction of four or five.
// Either way the database checks the assumption inside the statement itself:
//  - PostgreSQL: the INSERT runs only if its WITH clause moved the head from exactly (seq, hash) (the
//    UPDATE waits for, then re-reads, a head another transaction holds);
//  - SQLite: triggers made by the migration check every row against the head before it is inserted (its
//    seq must be the head's + 1, its prev_hash the head's hash) and move the head after it, row by row;
//    a row that does not continue the head aborts the whole statement.
import type { Knex } from 'knex';
import { runStatement } from '../db/raw-connection';
import type { Engine } from '../db/url';
import { CHAIN_COLUMNS, type ChainHead, HASHED_COLUMNS, HEAD_TABLE, isHash, rowHash, seqOf } from './chain';
import type { AuditEvent } from './events';

/** The message of the SQLite trigger refusing a row that does not continue the head (the migration's). */
export const NOT_CONTINUING = 'does not continue the audit chain head';

function headOf(row: { seq?: unknown; head_hash?: unknown } | undefined): ChainHead {
  const seq = seqOf(row?.seq);
  if (!row || seq === undefined || seq < 0 || !isHash(row.head_hash)) {
    throw new Error(`the audit chain head (${HEAD_TABLE}) is ${row ? 'malformed' : 'missing'}: run \`cloacina-sign audit verify\``);
  }
  return { seq, hash: row.head_hash };
}

/** Locks the chain head for the rest of `trx` and returns it (see the top of this file). */
export async function lockHead(trx: Knex.Transaction, engine: Engine): Promise<ChainHead> {
  if (engine === 'postgres') {
    const result = (await trx.raw(`select seq, head_hash from ${HEAD_TABLE} where id = 1 for update`)) as { rows: { seq: unknown; head_hash: unknown }[] };
    return headOf(result.rows[0]);
  }
  const rows = (await trx.raw(`update ${HEAD_TABLE} set seq = seq where id = 1 returning seq, head_hash`)) as { seq: unknown; head_hash: unknown }[];
  return headOf(rows[0]);
}

interface Links {
  /** The rows, in CHAIN_COLUMNS order, as one JSON array of arrays: a single bound parameter for any batch. */
  rows: string;
  /** The head after them. */
  head: ChainHead;
}

// JSON escapes a lone UTF-16 surrogate as \udXXX, which neither engine stores as the UTF-8 the row hash
// covers; an escaped backslash before "ud8" also matches, and only costs the rewrite below.
const ESCAPED_SURROGATE = /\\ud[89a-f]/i;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
// What UTF-8 encoding makes of a lone surrogate, in the hash as it was in a bound parameter.
const wellFormed = (value: unknown) => (typeof value === 'string' ? value.replace(LONE_SURROGATE, '\ufffd') : value);

/** The events as the rows that follow `head`, their hashes computed here. */
function links(head: ChainHead, events: readonly AuditEvent[]): Links {
  let seq = head.seq;
  let prev = head.hash;
  const rows: unknown[][] = [];
  for (const event of events) {
    seq += 1;
    const hash = rowHash(prev, seq, event);
    const row: unknown[] = [];
    for (const column of HASHED_COLUMNS) row.push(event[column] ?? null);
    row.push(seq, prev, hash);
    rows.push(row);
    prev = hash;
  }
  let json = JSON.stringify(rows);
  if (ESCAPED_SURROGATE.test(json)) json = JSON.stringify(rows.map((row) => row.map(wellFormed)));
  return { rows: json, head: { seq, hash: prev } };
}

const COLUMNS = CHAIN_COLUMNS.join(', ');
// The rows unpacked from their JSON in one INSERT: the same statement whatever the batch size (prepared once
// per connection, and binding one string costs the driver less than fourteen values a row). The JSON is read
// as JSONB, parsed once: with json_each/json (text), every ->> of a row would parse that row's text again.
// SQLite: ->> gives text, integers, and 1/0 for true/false, as bound values were stored; jsonb_each keeps the
// array's order, in which the triggers check each row against the head.
const SQLITE_ROWS = `select ${CHAIN_COLUMNS.map((_, index) => `value ->> ${index}`).join(', ')} from jsonb_each(?) order by key`;
// PostgreSQL: ->> gives text; the two columns that are not text say their type.
const POSTGRES_ROWS = `select ${CHAIN_COLUMNS.map((column, index) => `(r ->> ${index})${column === 'seq' ? '::bigint' : column === 'signature_verified' ? '::boolean' : ''}`).join(', ')} from jsonb_array_elements(?::jsonb) as r`;
const MOVE_HEAD = `update ${HEAD_TABLE} set seq = ?, head_hash = ? where id = 1`;
const APPEND_SQLITE = `insert into audit_events (${COLUMNS}) ${SQLITE_ROWS}`;
// The batch statement of a writer that knows the head, run outside knex (see runStatement): with PostgreSQL's
// own placeholders.
const APPEND_AFTER_POSTGRES = numbered(
  `with moved as (${MOVE_HEAD} and seq = ? and head_hash = ? returning id)
   insert into audit_events (${COLUMNS}) ${POSTGRES_ROWS} where exists (select 1 from moved)`,
);

/** `sql` with its ? placeholders numbered $1, $2, ... (none of these statements has a ? anywhere else). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** Appends `events` after the head it locks inside `trx`; returns the new head. */
export async function appendChained(trx: Knex.Transaction, engine: Engine, events: readonly AuditEvent[]): Promise<ChainHead> {
  const { rows, head } = links(await lockHead(trx, engine), events);
  if (engine === 'postgres') {
    // A data-modifying WITH runs exactly once, whether or not the INSERT reads it.
    await trx.raw(`with moved as (${MOVE_HEAD}) insert into audit_events (${COLUMNS}) ${POSTGRES_ROWS}`, [head.seq, head.hash, rows]);
  } else {
    // The triggers move the head.
    await trx.raw(APPEND_SQLITE, [rows]);
  }
  return head;
}

/**
 * Appends `events` after `expected` in one autocommitted statement; returns the new head, or undefined when
 * the head is no longer `expected` (nothing was written). Any other failure throws.
 */
export async function appendAfter(knex: Knex, engine: Engine, expected: ChainHead, events: readonly AuditEvent[]): Promise<ChainHead | undefined> {
  const { rows, head } = links(expected, events);
  if (engine === 'postgres') {
    const changed = await runStatement(knex, engine, APPEND_AFTER_POSTGRES, [head.seq, head.hash, expected.seq, expected.hash, rows]);
    return changed === events.length ? head : undefined;
  }
  try {
    await runStatement(knex, engine, APPEND_SQLITE, [rows]);
    return head;
  } catch (error) {
    if (error instanceof Error && error.message.includes(NOT_CONTINUING)) return undefined;
    throw error;
  }
}

/** Whether the database has the chain (its schema may predate the migration that made it). */
export async function hasChain(knex: Knex | Knex.Transaction): Promise<boolean> {
  return knex.schema.hasTable(HEAD_TABLE);
}
