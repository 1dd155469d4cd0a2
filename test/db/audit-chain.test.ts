import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditTrail, auditEvent } from '../../src/audit/audit-trail';
import { GENESIS_HASH, HASHED_COLUMNS, type HashedValues, rowHash } from '../../src/audit/chain';
import { auditToDatabase } from '../../src/audit/database-sink';
import type { AuditEvent, AuditEventInput } from '../../src/audit/events';
import { type Database, openDatabase } from '../../src/db/database';
import { MIGRATIONS_DIRECTORY, migrateLatest, migrationNames } from '../../src/db/migrate';
import { DbKeyManager } from '../../src/keys/db-key-manager';
import { generateKeypair } from '../../src/keys/keypair';
import { runCli, tempDir } from '../helpers';
import { describeEngines } from './engines';
import { createScratchDatabase } from './scratch-postgres';

const CHAIN_MIGRATION = '20261204000000_audit_chain.js';

/** Events of every shape a row can have: nulls, booleans both ways, an actor, text with non-ASCII bytes. */
const EVENTS: AuditEventInput[] = [
  { eventType: 'key.signing.created', orgId: randomUUID(), keyId: randomUUID(), signerFingerprint: 'ab'.repeat(32) },
  { eventType: 'verification.success', packagePath: '/pkg/a.so', packageHash: 'cd'.repeat(32), signerFingerprint: 'ab'.repeat(32), signatureVerified: true },
  { eventType: 'verification.failure', packagePath: '/pkg/b.so', signatureVerified: false, reason: 'TAMPERED_PACKAGE: digest mismatch' },
  { eventType: 'package.signed', orgId: randomUUID(), packageHash: 'ef'.repeat(32), actor: randomUUID() },
  { eventType: 'package.load.success', packagePath: '/pkg/ünïcode ✓.so', signatureVerified: true },
  { eventType: 'package.load.failure', packagePath: '/pkg/c.so', reason: 'SIGNATURE_NOT_FOUND: no signature' },
  { eventType: 'token.created', orgId: randomUUID(), keyId: randomUUID(), actor: randomUUID() },
  { eventType: 'api.request.refused', reason: 'UNAUTHORIZED: unknown token' },
  { eventType: 'verification.success', packagePath: '/pkg/d.so', packageHash: '01'.repeat(32), signatureVerified: true },
  { eventType: 'key.trusted.added', orgId: randomUUID(), signerFingerprint: '23'.repeat(32) },
  { eventType: 'package.version.reset', orgId: randomUUID(), reason: 'operator reset' },
  { eventType: 'verification.failure', packagePath: '/pkg/e.so', signatureVerified: false, reason: 'UNTRUSTED_SIGNER: unknown key' },
];

interface StoredRow extends Record<string, unknown> {
  id: string;
  seq: string | number;
  prev_hash: string;
  row_hash: string;
}

describe('the audit row hash', () => {
  it('when hashing a row, it is SHA-256 over the domain, prev_hash, u64be(seq) and the tagged, length-prefixed columns', () => {
    const prev = 'a5'.repeat(32);
    const row: HashedValues = {
      id: 'i',
      event_type: 'verification.success',
      timestamp: '2026-12-04T00:00:00.000Z',
      org_id: null,
      key_id: null,
      package_path: 'ü',
      package_hash: null,
      signer_fingerprint: null,
      signature_verified: true,
      reason: null,
      actor: null,
    };
    const text = (value: string) => {
      const bytes = Buffer.from(value, 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      return Buffer.concat([Buffer.from([1]), length, bytes]);
    };
    const expected = createHash('sha256')
      .update(
        Buffer.concat([
          Buffer.from('cloacina-sign/audit-row/v1\0'),
          Buffer.from(prev, 'hex'),
          Buffer.from([0, 0, 0, 0, 0, 0, 0, 7]),
          text('i'),
          text('verification.success'),
          text('2026-12-04T00:00:00.000Z'),
          Buffer.from([0, 0]),
          text('ü'),
          Buffer.from([0, 0]),
          Buffer.from([2, 1]),
          Buffer.from([0, 0]),
        ]),
      )
      .digest('hex');
    expect(rowHash(prev, 7, row)).to.equal(expected);
  });

  it('when a null column becomes an empty string, the row hash changes', () => {
    const row = Object.fromEntries(HASHED_COLUMNS.map((column) => [column, null])) as HashedValues;
    expect(rowHash(GENESIS_HASH, 1, row)).not.to.equal(rowHash(GENESIS_HASH, 1, { ...row, reason: '' }));
  });
});

describe('audit verify --expect-head', () => {
  it('when the recorded head is not <seq>:<hash>, it exits 2 saying what it expects', () => {
    const result = runCli(['audit', 'verify', '--expect-head', '12:not-a-hash', '--database', 'sqlite:/nonexistent/never-opened.db'], {
      CLOACINA_DATABASE_URL: '',
    });
    expect(result.status).to.equal(2);
    expect(result.stderr).to.include('<seq>:<hash>');
  });
});

describe('audit event ids', () => {
  it('when events are recorded in different milliseconds, their ids are UUIDv7s that sort in recording order', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      ids.push(auditEvent({ eventType: 'verification.success' }).id);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    for (const id of ids) expect(id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect([...ids].sort()).to.deep.equal(ids);
    expect(Number.parseInt(ids[0].replace('-', '').slice(0, 12), 16)).to.be.closeTo(Date.now(), 60_000);
  });
});

describeEngines('the audit hash chain', (t) => {
  const dir = tempDir();
  const handles: Database[] = [];
  const drops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const db of handles) await db.close();
    for (const drop of drops) await drop();
    dir.cleanup();
  });

  /** A database of its own: tampering breaks a chain for good. PostgreSQL: a scratch database per test. */
  async function freshUrl(): Promise<string> {
    if (t.engine === 'sqlite') return `sqlite:${dir.join(`${randomBytes(6).toString('hex')}.db`)}`;
    const scratch = await createScratchDatabase('cloacina_test');
    drops.push(scratch.drop);
    return scratch.url;
  }

  async function open(url: string, migrate: boolean): Promise<Database> {
    const db = await openDatabase(url, { migrate, listen: false });
    handles.push(db);
    return db;
  }

  /** A migrated database with EVENTS recorded one after another (seq i + 1 is EVENTS[i]). */
  async function chainOfEvents(): Promise<{ url: string; db: Database; events: AuditEvent[] }> {
    const url = await freshUrl();
    const db = await open(url, true);
    const trail = new AuditTrail(auditToDatabase(db));
    const events: AuditEvent[] = [];
    for (const input of EVENTS) events.push((await trail.record(input)) as AuditEvent);
    return { url, db, events };
  }

  function auditVerify(url: string, extra: string[] = []) {
    const result = runCli(['audit', 'verify', '--database', url, '--json', ...extra], { CLOACINA_DATABASE_URL: '', CLOACINA_AUDIT_LOG: 'off' });
    return { status: result.status, stderr: result.stderr, report: result.json() };
  }

  const rowAt = async (db: Database, seq: number) => (await db.knex('audit_events').where({ seq }).first()) as StoredRow;

  /** A row for `seq` after `prev`, with a correct row hash: what someone who knows the hash definition forges. */
  function forged(prev: string, seq: number): Record<string, unknown> {
    const values = { ...(Object.fromEntries(HASHED_COLUMNS.map((column) => [column, null])) as HashedValues) };
    Object.assign(values, {
      id: randomUUID(),
      event_type: 'verification.success',
      timestamp: new Date().toISOString(),
      package_path: '/pkg/forged.so',
      signature_verified: true,
    });
    return { ...values, seq, prev_hash: prev, row_hash: rowHash(prev, seq, values) };
  }

  /** What someone with write access to the database does first: drops what makes it refuse rows outside the chain. */
  async function dropGuards(db: Database): Promise<void> {
    if (t.engine === 'postgres') await db.knex.raw('alter table audit_events drop constraint audit_events_chained');
    else for (const trigger of ['audit_events_chained', 'audit_events_linked', 'audit_chain_advance']) await db.knex.raw(`drop trigger ${trigger}`);
  }

  /** Moves the rows at seq >= from one position up (via negative seqs: the unique index is checked row by row). */
  async function shiftUp(db: Database, from: number): Promise<void> {
    await db
      .knex('audit_events')
      .where('seq', '>=', from)
      .update({ seq: db.knex.raw('-(seq + 1)') });
    await db
      .knex('audit_events')
      .where('seq', '<', 0)
      .update({ seq: db.knex.raw('-seq') });
  }

  it('when no row was touched, audit verify exits 0 and reports every row up to the head', async () => {
    const { url, db } = await chainOfEvents();
    const head = await rowAt(db, EVENTS.length);
    const { status, stderr, report } = auditVerify(url);
    expect(status, stderr).to.equal(0);
    expect(report).to.include({ intact: true, rows: EVENTS.length, headSeq: EVENTS.length, headHash: head.row_hash, problem: null });
    expect(stderr).to.include(`intact: ${EVENTS.length} row(s)`);
  });

  it('when a row was edited, audit verify exits 1 naming that row as changed', async () => {
    const { url, db, events } = await chainOfEvents();
    await db.knex('audit_events').where({ id: events[4].id }).update({ reason: 'nothing happened here' });
    const { status, stderr, report } = auditVerify(url);
    expect(status).to.equal(1);
    expect(report.problem).to.include({ kind: 'changed', seq: 5, id: events[4].id });
    expect(stderr).to.include(`row ${events[4].id}`);
  });

  it('when a boolean column was flipped, audit verify names that row as changed', async () => {
    const { url, db, events } = await chainOfEvents();
    await db.knex('audit_events').where({ id: events[2].id }).update({ signature_verified: true });
    const { status, report } = auditVerify(url);
    expect(status).to.equal(1);
    expect(report.problem).to.include({ kind: 'changed', seq: 3, id: events[2].id });
  });

  it('when a row was edited and its own row_hash recomputed, audit verify still names that row as changed', async () => {
    const { url, db, events } = await chainOfEvents();
    const row = await rowAt(db, 6);
    const values = { ...(Object.fromEntries(HASHED_COLUMNS.map((column) => [column, row[column]])) as HashedValues), reason: 'rewritten' };
    await db
      .knex('audit_events')
      .where({ id: row.id })
      .update({ reason: 'rewritten', row_hash: rowHash(row.prev_hash, 6, values) });
    const { status, report } = auditVerify(url);
    expect(status).to.equal(1);
    expect(report.problem).to.include({ kind: 'changed', seq: 6, id: events[5].id });
  });

  it('when a row was deleted, audit verify exits 1 naming its seq as removed and the row the chain continues with', async () => {
    const { url, db, events } = await chainOfEvents();
    await db.knex('audit_events').where({ id: events[6].id }).delete();
    const { status, stderr, report } = auditVerify(url);
    expect(status).to.equal(1);
    expect(report.problem).to.include({ kind: 'removed', seq: 7, id: events[7].id });
    expect(stderr).to.include('seq 7 is missing');
  });

  it('when the last row was deleted, audit verify names its seq as removed', async () => {
    const { url, db, events } = await chainOfEvents();
    await db
      .knex('audit_events')
      .where({ id: events[EVENTS.length - 1].id })
      .delete();
    const { status, report } = auditVerify(url);
    expect(status).to.equal(1);
    expect(report.problem).to.include({ kind: 'removed', seq: EVENTS.length });
  });

  it('when a row was inserted mid-chain (later rows renumbered, its hash computed), audit verify exits 1 naming it as inserted', async () => {
    const { url, db } = await chainOfEvents();
    const before = await rowAt(db, 4);
    const row = forged(before.row_hash, 5);
    await dropGuards(db);
    await shiftUp(db, 5);
    await db.knex('audit_events').insert(row);
    const { status, stderr, report } = auditVerify(url);
    expect(status).to.equal(1);
    expect(report.problem).to.include({ kind: 'inserted', seq: 5, id: row.id });
    expect(stderr).to.include(String(row.id));
  });

  it('when a row was appended behind the chain (its hash right, the head not moved), audit verify names it as inserted', async () => {
    const { url, db } = await chainOfEvents();
    const row = forged((await rowAt(db, EVENTS.length)).row_hash, EVENTS.length + 1);
    await dropGuards(db);
    await db.knex('audit_events').insert(row);
    const { status, report } = auditVerify(url);
    expect(status).to.equal(1);
    expect(report.problem).to.include({ kind: 'inserted', seq: EVENTS.length + 1, id: row.id });
  });

  it('when a row without a chain position was inserted (the guard dropped first), audit verify names it as inserted', async () => {
    const { url, db } = await chainOfEvents();
    await dropGuards(db);
    const { seq: _seq, prev_hash: _prev, row_hash: _hash, ...row } = forged(GENESIS_HASH, 1);
    await db.knex('audit_events').insert(row);
    const { status, report } = auditVerify(url);
    expect(status).to.equal(1);
    expect(report.problem).to.include({ kind: 'inserted', seq: null, id: row.id });
  });

  it('when two rows swapped places, audit verify exits 1 naming the first as out of order', async () => {
    const { url, db, events } = await chainOfEvents();
    await db.knex('audit_events').where({ seq: 8 }).update({ seq: -8 });
    await db.knex('audit_events').where({ seq: 9 }).update({ seq: 8 });
    await db.knex('audit_events').where({ seq: -8 }).update({ seq: 9 });
    const { status, report } = auditVerify(url);
    expect(status).to.equal(1);
    expect(report.problem).to.include({ kind: 'out_of_order', seq: 8, id: events[8].id });
  });

  it('when the chain was rewritten consistently after a row was edited, audit verify --expect-head with the head recorded before names the rewritten row', async () => {
    const { url, db, events } = await chainOfEvents();
    const recorded = auditVerify(url).report;
    // Everything an attacker who knows the hash definition does: edit, then recompute every later link and the head.
    await db.knex('audit_events').where({ id: events[3].id }).update({ reason: 'rewritten' });
    const rows = (await db.knex('audit_events').orderBy('seq')) as StoredRow[];
    let prev = GENESIS_HASH;
    for (const row of rows) {
      const values = Object.fromEntries(
        HASHED_COLUMNS.map((column) => [column, column === 'signature_verified' && row[column] !== null ? Boolean(row[column]) : row[column]]),
      ) as HashedValues;
      const hash = rowHash(prev, Number(row.seq), values);
      await db.knex('audit_events').where({ id: row.id }).update({ prev_hash: prev, row_hash: hash });
      prev = hash;
    }
    await db.knex('audit_chain_head').where({ id: 1 }).update({ head_hash: prev });
    expect(auditVerify(url).status, 'without the recorded head, a consistent rewrite goes unseen').to.equal(0);
    const { status, stderr, report } = auditVerify(url, ['--expect-head', `${recorded.headSeq}:${recorded.headHash}`]);
    expect(status).to.equal(1);
    expect(report.problem).to.include({ kind: 'rewritten', seq: EVENTS.length, id: events[EVENTS.length - 1].id });
    expect(stderr).to.include(recorded.headHash);
  });

  it('when the recorded head is still in the chain, audit verify --expect-head exits 0 after more rows were appended', async () => {
    const { url, db } = await chainOfEvents();
    const recorded = auditVerify(url).report;
    await new AuditTrail(auditToDatabase(db)).record(EVENTS[0]);
    const { status, stderr, report } = auditVerify(url, ['--expect-head', `${recorded.headSeq}:${recorded.headHash}`]);
    expect(status, stderr).to.equal(0);
    expect(report.rows).to.equal(EVENTS.length + 1);
  });

  it('when a writer that predates the chain inserts a row without its chain fields, the database refuses it', async () => {
    const { db } = await chainOfEvents();
    const { seq: _seq, prev_hash: _prev, row_hash: _hash, ...row } = forged(GENESIS_HASH, 1);
    let refused: unknown;
    await db
      .knex('audit_events')
      .insert(row)
      .catch((error: unknown) => (refused = error));
    expect(String(refused)).to.match(/audit_events_chained|predates the audit chain/);
    expect(await db.knex('audit_events').where({ id: row.id }).first()).to.equal(undefined);
  });

  it('when the head claims more back-filled rows than the chain holds (the newest rows erased, the head moved back), audit verify exits 1 naming the head', async () => {
    const { url, db } = await chainOfEvents();
    await db
      .knex('audit_chain_head')
      .where({ id: 1 })
      .update({ backfilled_rows: EVENTS.length + 5 });
    const { status, report } = auditVerify(url);
    expect(status).to.equal(1);
    expect(report.problem).to.include({ kind: 'head' });
    expect(report.problem.message).to.include('back-filled');
  });

  if (t.engine === 'sqlite') {
    it('when a text column was rewritten with bytes that are not UTF-8 but read back as the same text, audit verify names the row as changed', async () => {
      const { url, db } = await chainOfEvents();
      const trail = new AuditTrail(auditToDatabase(db));
      // U+FFFD is what the driver reads the invalid byte 0xFF as.
      const event = (await trail.record({ eventType: 'verification.success', packagePath: '/pkgs/caf\uFFFD.so', signatureVerified: true })) as AuditEvent;
      await db.knex.raw(`update audit_events set package_path = cast(x'2f706b67732f636166ff2e736f' as text) where id = ?`, [event.id]);
      expect((await db.knex('audit_events').where({ id: event.id }).first()).package_path).to.equal('/pkgs/caf\uFFFD.so');
      const { status, report } = auditVerify(url);
      expect(status).to.equal(1);
      expect(report.problem).to.include({ kind: 'changed', seq: EVENTS.length + 1, id: event.id });
    });

    it('when the head row was deleted, the database still refuses a row that does not continue the chain', async () => {
      const { db } = await chainOfEvents();
      const last = await rowAt(db, EVENTS.length);
      await db.knex('audit_chain_head').del();
      let refused: unknown;
      await db
        .knex('audit_events')
        .insert(forged(last.row_hash, EVENTS.length + 1))
        .catch((error: unknown) => (refused = error));
      expect(String(refused)).to.include('does not continue the audit chain head');
    });
  }

  it('when another handle appended since a batch, the next batch of the first handle still continues the chain', async () => {
    const url = await freshUrl();
    const [first, second] = [await open(url, true), await open(url, false)];
    const [one, two] = [new AuditTrail(auditToDatabase(first)), new AuditTrail(auditToDatabase(second))];
    for (let round = 0; round < 3; round += 1) {
      await Promise.all([one.record(EVENTS[1]), one.record(EVENTS[2])]);
      await two.record(EVENTS[3]);
    }
    const { status, stderr, report } = auditVerify(url);
    expect(status, stderr).to.equal(0);
    expect(report).to.include({ intact: true, rows: 9 });
  });

  it('when the table was altered after the writer had prepared its statement, the next batch is still written and the chain verifies', async () => {
    const url = await freshUrl();
    const db = await open(url, true);
    const trail = new AuditTrail(auditToDatabase(db));
    // The first batch locks the head; the second assumes it, in the statement prepared on the connection.
    await trail.record(EVENTS[1]);
    await trail.record(EVENTS[2]);
    await db.knex.schema.alterTable('audit_events', (table) => table.string('note').nullable());
    await Promise.all([trail.record(EVENTS[8]), trail.record(EVENTS[11])]);
    const { status, stderr, report } = auditVerify(url);
    expect(status, stderr).to.equal(0);
    expect(report).to.include({ intact: true, rows: 4 });
  });

  if (t.engine === 'sqlite') {
    it('when a handle that appended audit rows is closed, its connection closes (SQLite removes the -wal file)', async () => {
      const url = await freshUrl();
      const db = await openDatabase(url, { migrate: true, listen: false });
      const trail = new AuditTrail(auditToDatabase(db));
      // The first batch locks the head; the next ones assume it, in the statement prepared on the connection.
      for (const input of EVENTS.slice(0, 3)) await trail.record(input);
      const wal = `${url.slice('sqlite:'.length)}-wal`;
      expect(existsSync(wal)).to.equal(true);
      await db.close();
      expect(existsSync(wal)).to.equal(false);
    });
  }

  it('when events carry a lone UTF-16 surrogate, quotes and backslashes, their rows store what the row hash covers and audit verify passes', async () => {
    const url = await freshUrl();
    const db = await open(url, true);
    const trail = new AuditTrail(auditToDatabase(db));
    const paths = ['/pkg/lone-\ud800.so', '/pkg/"quoted"\\ud800\\.so', '/pkg/pair-\ud83d\ude00.so', '/pkg/tab\tnewline\n.so'];
    await Promise.all(paths.map((packagePath) => trail.record({ eventType: 'verification.success', packagePath, signatureVerified: true })));
    const stored = (await db.knex('audit_events').orderBy('seq').select('package_path')).map((row: { package_path: string }) => row.package_path);
    expect(stored).to.deep.equal(['/pkg/lone-\ufffd.so', '/pkg/"quoted"\\ud800\\.so', '/pkg/pair-\ud83d\ude00.so', '/pkg/tab\tnewline\n.so']);
    const { status, stderr, report } = auditVerify(url);
    expect(status, stderr).to.equal(0);
    expect(report).to.include({ intact: true, rows: paths.length });
  });

  it('when 8 processes append 50 events each at once, the chain holds every row and verifies', async function () {
    this.timeout(180_000);
    const url = await freshUrl();
    await (await open(url, true)).close();
    const writer = join(__dirname, '../fixtures/audit-writer.js');
    const exits = await Promise.all(
      Array.from(
        { length: 8 },
        () =>
          new Promise<{ code: number | null; stderr: string }>((resolve) => {
            const child = spawn(process.execPath, [writer, url, '50', '7'], { stdio: ['ignore', 'ignore', 'pipe'] });
            let stderr = '';
            child.stderr.on('data', (chunk) => (stderr += chunk));
            child.on('close', (code) => resolve({ code, stderr }));
          }),
      ),
    );
    for (const exit of exits) expect(exit.code, exit.stderr).to.equal(0);
    const { status, stderr, report } = auditVerify(url);
    expect(status, stderr).to.equal(0);
    expect(report).to.include({ intact: true, rows: 400, headSeq: 400 });
  });

  it('when key operations and 300 events are written at once in one process, the chain holds every row and verifies', async () => {
    const url = await freshUrl();
    const db = await open(url, true);
    const keys = new DbKeyManager(db);
    const org = await keys.createOrganization(t.unique('chain'));
    const trail = new AuditTrail(auditToDatabase(db));
    // Key operations append their row inside their own write transaction (insertIn), events in batches.
    await Promise.all([
      ...Array.from({ length: 300 }, (_, i) => trail.record({ eventType: 'verification.success', packagePath: `/pkg/${i}.so`, signatureVerified: true })),
      ...Array.from({ length: 10 }, () => keys.trustPublicKey(org.id, generateKeypair().publicKey)),
    ]);
    const [{ n }] = await db.knex('audit_events').count({ n: '*' });
    expect(Number(n)).to.equal(310);
    const { status, stderr, report } = auditVerify(url);
    expect(status, stderr).to.equal(0);
    expect(report).to.include({ intact: true, rows: 310 });
  });

  describe('a database with rows from before the chain', () => {
    const LEGACY = 20;

    /** A database migrated up to the migration before the chain, with LEGACY rows the previous version wrote, then migrated. */
    async function migratedLegacy(): Promise<{ url: string; db: Database; ids: string[] }> {
      const url = await freshUrl();
      if (t.engine === 'sqlite') writeFileSync(url.slice('sqlite:'.length), '');
      const db = await open(url, false);
      const config = { directory: MIGRATIONS_DIRECTORY, loadExtensions: ['.js'], tableName: 'knex_migrations' };
      for (const name of migrationNames().slice(0, migrationNames().indexOf(CHAIN_MIGRATION))) await db.knex.migrate.up({ ...config, name });
      const ids: string[] = [];
      for (let i = 0; i < LEGACY; i += 1) {
        const id = randomUUID();
        ids.push(id);
        // Two rows per millisecond: the back-fill orders ties by id.
        await db.knex('audit_events').insert({
          id,
          event_type: i % 2 ? 'verification.success' : 'package.load.failure',
          timestamp: new Date(Date.UTC(2026, 10, 1, 0, 0, 0, Math.floor(i / 2))).toISOString(),
          package_path: `/pkg/${i}.so`,
          signature_verified: i % 2 === 1,
          reason: i % 2 ? null : 'SIGNATURE_NOT_FOUND: none',
          actor: i % 5 === 0 ? randomUUID() : null,
        });
      }
      expect(await migrateLatest(db)).to.deep.equal([CHAIN_MIGRATION, ...migrationNames().slice(migrationNames().indexOf(CHAIN_MIGRATION) + 1)]);
      return { url, db, ids };
    }

    it('when migrated, audit verify exits 0 with every old row chained', async () => {
      const { url } = await migratedLegacy();
      const { status, stderr, report } = auditVerify(url);
      expect(status, stderr).to.equal(0);
      expect(report).to.include({ intact: true, rows: LEGACY, headSeq: LEGACY, backfilledRows: LEGACY });
    });

    it('when migrated, the old rows are chained in (timestamp, id) order', async () => {
      const { db } = await migratedLegacy();
      const rows = (await db.knex('audit_events').orderBy('seq').select('id', 'timestamp')) as { id: string; timestamp: string }[];
      const sorted = [...rows].sort((a, b) => (a.timestamp === b.timestamp ? (a.id < b.id ? -1 : 1) : a.timestamp < b.timestamp ? -1 : 1));
      expect(rows.map((row) => row.id)).to.deep.equal(sorted.map((row) => row.id));
    });

    it('when events are written after the migration, they continue the chain', async () => {
      const { url, db } = await migratedLegacy();
      const trail = new AuditTrail(auditToDatabase(db));
      for (const input of EVENTS.slice(0, 3)) await trail.record(input);
      const { status, stderr, report } = auditVerify(url);
      expect(status, stderr).to.equal(0);
      expect(report).to.include({ rows: LEGACY + 3, backfilledRows: LEGACY });
    });

    it('when 30,000 old rows are back-filled by a handle whose operations are bounded at 500 ms, the migration completes and the chain verifies (the bound is per statement, not per migration)', async function () {
      this.timeout(300_000);
      const url = await freshUrl();
      if (t.engine === 'sqlite') writeFileSync(url.slice('sqlite:'.length), '');
      const setup = await open(url, false);
      const config = { directory: MIGRATIONS_DIRECTORY, loadExtensions: ['.js'], tableName: 'knex_migrations' };
      for (const name of migrationNames().slice(0, migrationNames().indexOf(CHAIN_MIGRATION))) await setup.knex.migrate.up({ ...config, name });
      const rows = Array.from({ length: 30_000 }, (_, i) => ({
        id: randomUUID(),
        event_type: 'verification.success',
        timestamp: new Date(Date.UTC(2026, 10, 1) + Math.floor(i / 3)).toISOString(),
        package_path: `/pkg/${i}.so`,
        signature_verified: true,
      }));
      await setup.knex.batchInsert('audit_events', rows, 500);
      const bounded = await openDatabase(url, { listen: false, timeoutMs: 500 });
      handles.push(bounded);
      expect(await migrateLatest(bounded)).to.include(CHAIN_MIGRATION);
      const { status, stderr, report } = auditVerify(url);
      expect(status, stderr).to.equal(0);
      expect(report).to.include({ intact: true, rows: 30_000, backfilledRows: 30_000 });
    });

    it('when an old row is edited after the migration, audit verify names it as changed', async () => {
      const { url, db } = await migratedLegacy();
      const row = await rowAt(db, 3);
      await db.knex('audit_events').where({ id: row.id }).update({ package_path: '/pkg/other.so' });
      const { status, report } = auditVerify(url);
      expect(status).to.equal(1);
      expect(report.problem).to.include({ kind: 'changed', seq: 3, id: row.id });
    });
  });
});
