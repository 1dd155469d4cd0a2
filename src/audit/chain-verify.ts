// `audit verify`: walks the audit hash chain in seq order, in one read snapshot, and reports the first row
// that was changed, removed, or inserted out of order; or that the chain is intact up to its head. Reads
// only (works on a read-only SQLite file). See chain.ts for what a row hash covers.
import type { Knex } from 'knex';
import type { Database } from '../db/database';
import { CloacinaSignError } from '../errors';
import { type ChainHead, GENESIS_HASH, HASHED_COLUMNS, type HashedValues, HEAD_TABLE, hashedValuesOf, isHash, rowHash, seqOf } from './chain';
import { hasChain } from './chain-append';

export type ChainProblemKind =
  /** A row's columns no longer match its row_hash, or a row was replaced. */
  | 'changed'
  /** Rows are missing (a gap in seq, or the chain ends before its head). */
  | 'removed'
  /** Rows that were never appended through the chain (a forged seq, rows after the head, rows without a seq). */
  | 'inserted'
  /** A row sits at another position than the one it was written at. */
  | 'out_of_order'
  /** The head row is missing or malformed, or disagrees with the last row. */
  | 'head'
  /** The chain no longer has the head recorded earlier (`expectHead`): rewritten consistently from there, or cut short. */
  | 'rewritten';

export interface ChainProblem {
  kind: ChainProblemKind;
  /** The chain position named (the first one that is wrong); null when none applies (rows without a seq, the head row). */
  seq: number | null;
  /** The row named: the one at that position, or for removed rows the row the chain continues with; null when there is none. */
  id: string | null;
  message: string;
}

export interface ChainReport {
  intact: boolean;
  /** Chained rows walked before the verdict (all of them when intact). */
  rows: number;
  /** The head as stored: the seq and row_hash of the last row. */
  headSeq: number | null;
  headHash: string | null;
  /** Rows written before the chain existed, which the migration chained (the first ones). */
  backfilledRows: number | null;
  /** When the chain started (the migration). */
  startedAt: string | null;
  problem: ChainProblem | null;
}

const PAGE = 2000;
/** How far a moved row is looked for (positions either side), to say where it was written. */
const MAX_SHIFT = 16;
/** How many of the latest rows are remembered, to name the row a link points back to. */
const WINDOW = 4096;

interface StoredRow extends Record<string, unknown> {
  id: unknown;
  seq: unknown;
  prev_hash: unknown;
  row_hash: unknown;
}

interface Link {
  seq: number;
  id: string;
  hash: string;
}

const TEXT_COLUMNS = HASHED_COLUMNS.filter((column) => column !== 'signature_verified');
const HEX_SUFFIX = '__stored_hex';
const SELECT = [...HASHED_COLUMNS, 'seq', 'prev_hash', 'row_hash'].join(', ');
// SQLite stores whatever bytes it is given as text, and the driver reads bytes that are not UTF-8 back as
// U+FFFD: two different stored values could read as the same string. So on SQLite the stored bytes of every
// text column are read too (hex() of a text value is the hex of its bytes), and must be the UTF-8 of the
// string the hash was computed over. PostgreSQL only ever stores valid text in the database's encoding.
const SELECT_SQLITE = `${SELECT}, ${TEXT_COLUMNS.map((column) => `hex(${column}) as ${column}${HEX_SUFFIX}`).join(', ')}`;

/** The row's hashed values and chain hashes, checked against what writers store; a string saying what is wrong otherwise. */
function hashedValues(row: StoredRow): HashedValues | string {
  if (!isHash(row.prev_hash)) return 'prev_hash is not 64 lowercase hex digits';
  if (!isHash(row.row_hash)) return 'row_hash is not 64 lowercase hex digits';
  for (const column of TEXT_COLUMNS) {
    const stored = row[`${column}${HEX_SUFFIX}`];
    const value = row[column];
    if (stored === undefined || typeof value !== 'string') continue;
    if (stored !== Buffer.from(value, 'utf8').toString('hex').toUpperCase()) return `${column} holds bytes that are not the UTF-8 text they read as`;
  }
  return hashedValuesOf(row);
}

const idOf = (row: StoredRow | undefined): string | null => (row && typeof row.id === 'string' ? row.id : row ? String(row.id) : null);
const range = (from: number, to: number) => (from === to ? `seq ${from}` : `seqs ${from}..${to}`);

/** The recent links, by seq and by hash. */
class Window {
  private readonly bySeq = new Map<number, Link>();
  private readonly byHash = new Map<string, Link>();

  add(link: Link): void {
    this.bySeq.set(link.seq, link);
    this.byHash.set(link.hash, link);
    const old = this.bySeq.get(link.seq - WINDOW);
    if (old) {
      this.bySeq.delete(old.seq);
      if (this.byHash.get(old.hash) === old) this.byHash.delete(old.hash);
    }
  }

  seq(seq: number): Link | undefined {
    return this.bySeq.get(seq);
  }

  hash(hash: string): Link | undefined {
    return this.byHash.get(hash);
  }
}

/** Rows in seq order, page by page, with one row of lookahead. */
class Rows {
  private buffer: StoredRow[] = [];
  private after: unknown;
  private done = false;

  constructor(private readonly read: (after: unknown) => Promise<StoredRow[]>) {}

  private async fill(): Promise<void> {
    if (this.buffer.length > 0 || this.done) return;
    const page = await this.read(this.after);
    if (page.length < PAGE) this.done = true;
    if (page.length > 0) this.after = page[page.length - 1].seq;
    this.buffer = page;
  }

  async next(): Promise<StoredRow | undefined> {
    await this.fill();
    return this.buffer.shift();
  }

  async peek(): Promise<StoredRow | undefined> {
    await this.fill();
    return this.buffer[0];
  }
}

/** Whether `row` was written at `seq` (its hash verifies there). */
function writtenAt(row: StoredRow, values: HashedValues, seq: number): boolean {
  return seq >= 1 && rowHash(row.prev_hash as string, seq, values) === row.row_hash;
}

/** Walks the chain. Never throws for what it finds in the rows; throws only when the database cannot be read. */
export interface VerifyChainOptions {
  /**
   * A head recorded earlier (from a previous report, kept outside the database): the chain must still have
   * this hash at this seq. The row hash has no key, so only such a copy catches a chain rewritten consistently.
   */
  expectHead?: ChainHead;
}

export async function verifyAuditChain(db: Database, options: VerifyChainOptions = {}): Promise<ChainReport> {
  const report: ChainReport = { intact: false, rows: 0, headSeq: null, headHash: null, backfilledRows: null, startedAt: null, problem: null };
  if (!(await db.run((knex) => hasChain(knex)))) {
    report.problem = { kind: 'head', seq: null, id: null, message: `the database ${db.target.display} has no audit chain: run \`cloacina-sign db migrate\`` };
    return report;
  }
  // One snapshot for the whole walk (writers may keep appending meanwhile), each statement within the bound.
  // A read transaction: on SQLite it writes nothing, so it works on a read-only file too.
  const starting = db.knex.transaction();
  let trx: Knex.Transaction;
  try {
    trx = await db.run(() => starting);
  } catch (error) {
    starting.then((late) => late.rollback()).catch(() => undefined);
    throw error;
  }
  try {
    if (db.engine === 'postgres') await db.run(() => trx.raw('set transaction isolation level repeatable read, read only'));
    await walkChain(db, trx, report, options);
  } finally {
    await trx.rollback().catch(() => undefined);
  }
  report.intact = report.problem === null;
  return report;
}

async function walkChain(db: Database, reader: Knex.Transaction, report: ChainReport, { expectHead }: VerifyChainOptions): Promise<void> {
  const run = <T>(work: () => Promise<T> | Knex.QueryBuilder | Knex.Raw) => db.run(() => work() as Promise<T>);
  const head = (await run(() => reader(HEAD_TABLE).where({ id: 1 }).first())) as Record<string, unknown> | undefined;
  const headSeq = seqOf(head?.seq);
  if (!head || headSeq === undefined || headSeq < 0 || !isHash(head.head_hash)) {
    report.problem = { kind: 'head', seq: null, id: null, message: `the chain head (${HEAD_TABLE}) is ${head ? 'malformed' : 'missing'}` };
    return;
  }
  report.headSeq = headSeq;
  report.headHash = head.head_hash;
  report.backfilledRows = seqOf(head.backfilled_rows) ?? null;
  // The back-filled rows are the chain's first ones: a head claiming more of them than the chain holds was edited.
  if (report.backfilledRows === null || report.backfilledRows < 0 || report.backfilledRows > headSeq) {
    report.problem = {
      kind: 'head',
      seq: headSeq,
      id: null,
      message: `the chain head (${HEAD_TABLE}) is malformed: it says ${JSON.stringify(head.backfilled_rows)} row(s) were back-filled, but the chain ends at seq ${headSeq}`,
    };
    return;
  }
  report.startedAt = typeof head.started_at === 'string' ? head.started_at : null;

  const rows = new Rows((after) =>
    run(() => {
      const query = reader('audit_events')
        .select(db.knex.raw(db.engine === 'sqlite' ? SELECT_SQLITE : SELECT))
        .whereNotNull('seq')
        .orderBy('seq')
        .limit(PAGE);
      return after === undefined ? query : query.where('seq', '>', after as number);
    }),
  );
  const window = new Window();
  window.add({ seq: 0, id: '', hash: GENESIS_HASH });
  let expected = 1;
  let prev = GENESIS_HASH;
  const fail = (kind: ChainProblemKind, seq: number | null, id: string | null, message: string) => {
    report.problem = { kind, seq, id, message };
  };

  for (let row = await rows.next(); row; row = await rows.next()) {
    const id = idOf(row);
    const seq = seqOf(row.seq);
    if (seq === undefined || seq < expected) {
      return fail(
        'inserted',
        seq ?? null,
        id,
        `row ${id} has seq ${JSON.stringify(row.seq)}, which is not a position of the chain: it was inserted with a forged seq`,
      );
    }
    if (seq > expected) {
      return fail(
        'removed',
        expected,
        id,
        `${range(expected, seq - 1)} ${seq - 1 === expected ? 'is' : 'are'} missing: removed (the chain continues at seq ${seq}, row ${id})`,
      );
    }
    const values = hashedValues(row);
    if (typeof values === 'string') return fail('changed', seq, id, `row ${id} at seq ${seq} was changed: ${values}`);
    if (!writtenAt(row, values, seq)) {
      // Not written here: changed in place, or moved (its hash verifies at another position)?
      for (let d = 1; d <= MAX_SHIFT; d += 1) {
        for (const at of [seq - d, seq + d]) {
          if (!writtenAt(row, values, at)) continue;
          const before = window.seq(at - 1);
          if (at < seq && before?.hash === row.prev_hash) {
            const first = window.seq(at);
            return fail(
              'inserted',
              at,
              first?.id ?? null,
              `${range(at, seq - 1)} ${seq - 1 === at ? 'was' : 'were'} inserted: row ${id}, written at seq ${at} after seq ${at - 1}, now sits at seq ${seq}`,
            );
          }
          return fail('out_of_order', seq, id, `row ${id} was written at seq ${at} and now sits at seq ${seq}: rows were reordered`);
        }
      }
      // Or inserted here, with a made-up hash: the row after it was written at this position, after the row before it.
      const next = await rows.peek();
      const nextValues = next ? hashedValues(next) : undefined;
      if (next && typeof nextValues === 'object' && seqOf(next.seq) === seq + 1 && next.prev_hash === prev && writtenAt(next, nextValues, seq)) {
        return fail('inserted', seq, id, `row ${id} at seq ${seq} was inserted: the row now at seq ${seq + 1} (${idOf(next)}) was written at seq ${seq}`);
      }
      return fail('changed', seq, id, `row ${id} at seq ${seq} was changed: its columns no longer match its row_hash`);
    }
    if (row.prev_hash !== prev) {
      // Intact itself, but not written after the row before it.
      const linked = window.hash(row.prev_hash as string);
      if (linked && linked.seq < seq - 1) {
        const first = window.seq(linked.seq + 1);
        return fail(
          'inserted',
          linked.seq + 1,
          first?.id ?? null,
          `${range(linked.seq + 1, seq - 1)} ${seq - 1 === linked.seq + 1 ? 'was' : 'were'} inserted: row ${id} at seq ${seq} was written right after seq ${linked.seq}`,
        );
      }
      const before = window.seq(seq - 1);
      return fail(
        'changed',
        seq - 1,
        before?.id ?? null,
        `row ${before?.id ?? '?'} at seq ${seq - 1} was replaced (or rows were reordered): row ${id} at seq ${seq} was written after another row`,
      );
    }
    const hash = row.row_hash as string;
    if (expectHead?.seq === seq && expectHead.hash !== hash) {
      return fail('rewritten', seq, id, `row ${id} at seq ${seq} has hash ${hash}, not the recorded ${expectHead.hash}: the chain was rewritten up to there`);
    }
    prev = hash;
    window.add({ seq, id: id ?? '', hash });
    expected += 1;
    report.rows += 1;
  }

  const last = expected - 1;
  if (expectHead && expectHead.seq > last) {
    return fail(
      'rewritten',
      expectHead.seq,
      null,
      `the recorded head is at seq ${expectHead.seq}, but the chain ends at seq ${last}: rows were removed and the chain rewritten`,
    );
  }
  if (last < headSeq) {
    return fail(
      'removed',
      last + 1,
      null,
      `${range(last + 1, headSeq)} ${headSeq === last + 1 ? 'is' : 'are'} missing: removed (the head is at seq ${headSeq}, the last row at seq ${last})`,
    );
  }
  if (last > headSeq) {
    const first = window.seq(headSeq + 1);
    return fail(
      'inserted',
      headSeq + 1,
      first?.id ?? null,
      `${range(headSeq + 1, last)} lie beyond the head (seq ${headSeq}): inserted without going through the chain`,
    );
  }
  if (prev !== report.headHash) {
    return fail(
      'head',
      last,
      window.seq(last)?.id ?? null,
      `the head's hash is not the row_hash of the last row (seq ${last}): the last row was replaced or the head changed`,
    );
  }

  // Every row has a position since the migration (the database refuses rows without one): any row without
  // one was inserted behind the chain's back (the trigger or constraint dropped first).
  const stray = (await run(() =>
    reader('audit_events')
      .whereNull('seq')
      .orderBy([{ column: 'timestamp' }, { column: 'id' }])
      .first('id'),
  )) as { id?: unknown } | undefined;
  if (stray) {
    const [{ n }] = (await run(() => reader('audit_events').whereNull('seq').count({ n: '*' }))) as { n: unknown }[];
    return fail('inserted', null, String(stray.id), `${Number(n)} row(s) without a chain position were inserted; the first is row ${String(stray.id)}`);
  }
}

/** A chain position and the row there, as read once: what a checkpoint covers. */
export interface ChainRow extends ChainHead {
  /** The row's id. */
  id: string;
}

/** The committed row with the highest seq (one statement: its seq and hash are of the same row); undefined while the chain is empty. */
export async function lastChainRow(db: Database): Promise<ChainRow | undefined> {
  const row = (await db.run((knex) => knex('audit_events').whereNotNull('seq').orderBy('seq', 'desc').first('id', 'seq', 'row_hash'))) as StoredRow | undefined;
  if (!row) return undefined;
  const seq = seqOf(row.seq);
  if (seq === undefined || seq < 1 || !isHash(row.row_hash)) {
    throw new CloacinaSignError('INVALID_INPUT', `the last audit row (${idOf(row)}) has no valid chain position or hash: run \`cloacina-sign audit verify\``);
  }
  return { seq, hash: row.row_hash, id: idOf(row) ?? '' };
}

/**
 * Verifies the rows after `from` (a position verified earlier: its seq and hash) up to exactly `to`: every
 * row in between is where it was written, links to the one before it, and the chain reaches `to`'s hash at
 * `to`'s seq. What `verifyAuditChain` does for the whole chain, for the rows appended since: the rows up to
 * `from` are vouched for by the earlier verification. Returns the first problem, or null.
 */
export async function verifyChainSegment(db: Database, from: ChainHead, to: ChainHead): Promise<ChainProblem | null> {
  if (to.seq < from.seq) {
    return {
      kind: 'rewritten',
      seq: from.seq,
      id: null,
      message: `the chain ends at seq ${to.seq}, before seq ${from.seq} verified earlier: rows were removed`,
    };
  }
  // The row verified earlier must still be there, unchanged (its hash is what the next row links to).
  if (from.seq > 0) {
    const at = (await db.run((knex) => knex('audit_events').where({ seq: from.seq }).first('id', 'row_hash'))) as StoredRow | undefined;
    if (!at || at.row_hash !== from.hash) {
      return {
        kind: 'rewritten',
        seq: from.seq,
        id: idOf(at),
        message: `the row at seq ${from.seq} ${at ? `has hash ${String(at.row_hash)}, not ${from.hash} as verified earlier` : 'is gone'}: the chain was rewritten`,
      };
    }
  }
  const rows = new Rows((after) =>
    db.run(() => {
      const query = db
        .knex('audit_events')
        .select(db.knex.raw(db.engine === 'sqlite' ? SELECT_SQLITE : SELECT))
        .where('seq', '>', from.seq)
        .where('seq', '<=', to.seq)
        .orderBy('seq')
        .limit(PAGE);
      return (after === undefined ? query : query.where('seq', '>', after as number)) as unknown as Promise<StoredRow[]>;
    }),
  );
  let expected = from.seq + 1;
  let prev = from.hash;
  for (let row = await rows.next(); row; row = await rows.next()) {
    const id = idOf(row);
    const seq = seqOf(row.seq);
    if (seq !== expected) {
      return { kind: 'removed', seq: expected, id, message: `seq ${expected} is missing: the chain continues at seq ${String(row.seq)} (row ${id})` };
    }
    const values = hashedValues(row);
    if (typeof values === 'string') return { kind: 'changed', seq, id, message: `row ${id} at seq ${seq} was changed: ${values}` };
    if (!writtenAt(row, values, seq))
      return { kind: 'changed', seq, id, message: `row ${id} at seq ${seq} was changed: its columns no longer match its row_hash` };
    if (row.prev_hash !== prev) {
      return {
        kind: 'changed',
        seq: seq - 1,
        id,
        message: `row ${id} at seq ${seq} was not written after the row verified at seq ${seq - 1}: rows were replaced`,
      };
    }
    prev = row.row_hash as string;
    expected += 1;
  }
  if (expected - 1 !== to.seq) {
    return { kind: 'removed', seq: expected, id: null, message: `${range(expected, to.seq)} missing: the chain ends at seq ${expected - 1}` };
  }
  if (prev !== to.hash) {
    return { kind: 'changed', seq: to.seq, id: null, message: `the row at seq ${to.seq} no longer has the hash ${to.hash} read a moment ago` };
  }
  return null;
}
