// Bounded time: no verification or load waits on the database without bound.
// openDatabase(url, { timeoutMs }) bounds every database operation. A database that stops answering (the
// TCP connection stays open, nothing is forwarded) or a lock held on the audit table fails verifications
// and loads with DATABASE_UNAVAILABLE (or AUDIT_FAILED whose cause is DATABASE_UNAVAILABLE) within the bound
// plus a small margin, and once the database answers again the same handle works again, without reopening.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { CloacinaSignError, type Database, type LoadedPackage, openDatabase, type VerificationResult } from '../../src';
import { tempDir } from '../helpers';
import {
  causeChain,
  closeQuietly,
  describeChain,
  eventually,
  execRaw,
  type Fixture,
  note,
  openRawSqlite,
  type Outcome,
  type RawSqlite,
  setUp,
  sleep,
  successEvents,
  timed,
  verifyStored,
} from './stall-helpers';
import { createScratchDatabase, type ScratchDatabase } from './scratch-postgres';
import { openSocketsTo, StallingProxy } from './stalling-proxy';

/** The bound every handle in this file is opened with. */
const TIMEOUT_MS = 1000;
/** The bound plus the margin the contract allows: a refusal must have settled by then. */
const BOUND_MS = 3 * TIMEOUT_MS;

/**
 * Asserts the contract's refusal: settled within `boundMs`, rejected with DATABASE_UNAVAILABLE or with
 * AUDIT_FAILED, and DATABASE_UNAVAILABLE somewhere in the cause chain.
 */
function expectUnavailable(outcome: Outcome<unknown>, what: string, boundMs = BOUND_MS): void {
  expect(outcome.settled, `${what}: still pending after ${outcome.ms} ms (the bound is ${TIMEOUT_MS} ms)`).to.equal(true);
  expect(outcome.error, `${what}: resolved after ${outcome.ms} ms; expected DATABASE_UNAVAILABLE`).to.not.equal(undefined);
  const chain = causeChain(outcome.error);
  const detail = `${what} (after ${outcome.ms} ms): ${describeChain(outcome.error)}`;
  expect(chain[0], detail).to.be.instanceOf(CloacinaSignError);
  expect((chain[0] as CloacinaSignError).code, detail).to.be.oneOf(['DATABASE_UNAVAILABLE', 'AUDIT_FAILED']);
  const codes = chain.filter((e): e is CloacinaSignError => e instanceof CloacinaSignError).map((e) => e.code);
  expect(codes, detail).to.include('DATABASE_UNAVAILABLE');
  expect(outcome.ms, detail).to.be.below(boundMs);
}

// ---------------------------------------------------------------------------------------------------------
// 1 and 3. PostgreSQL behind a proxy that stops forwarding.

describe('bounded database waits: PostgreSQL behind a proxy that stops forwarding [@postgres]', function () {
  this.timeout(30_000);
  const dir = tempDir();
  let scratch: ScratchDatabase | undefined;
  let proxy: StallingProxy | undefined;
  let db: Database;
  let f: Fixture;

  before(async function () {
    this.timeout(60_000);
    scratch = await createScratchDatabase('cloacina_stall');
    const direct = new URL(scratch.url);
    proxy = await new StallingProxy(direct.hostname, Number(direct.port || 5432)).listen();
    const viaProxy = new URL(scratch.url);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    // Migrated through the proxy while it forwards.
    db = await openDatabase(viaProxy.toString(), { timeoutMs: TIMEOUT_MS, migrate: true });
    f = await setUp(db, dir, 'stall');
  });

  after(async function () {
    this.timeout(60_000);
    await closeQuietly(db);
    await proxy?.close();
    await scratch?.drop();
    dir.cleanup();
  });

  describe('when the database answers', () => {
    it('it verifies a package against its stored signature through the proxy', async () => {
      const result = await verifyStored(f);
      expect(result.signerFingerprint).to.equal(f.fingerprint);
    });
  });

  describe('when the proxy stops forwarding (connections stay open, nothing answers)', () => {
    before(async () => {
      proxy!.stall();
      // Older than the change feed's staleness bound (250 ms): the next lookup must ask the database.
      await sleep(300);
    });

    it('it fails a verification with DATABASE_UNAVAILABLE within the bound', async () => {
      const outcome = await timed(() => verifyStored(f));
      note(`stalled verify: ${outcome.settled ? describeChain(outcome.error).slice(0, 160) : 'pending'} after ${outcome.ms} ms`);
      expectUnavailable(outcome, 'a verification while stalled');
    });

    it('it settles each of many concurrent verifications within the bound, none hangs (the change check is shared and bounded)', async () => {
      await sleep(300);
      const outcomes = await Promise.all(Array.from({ length: 40 }, () => timed(() => verifyStored(f))));
      const times = outcomes.map((o) => o.ms);
      note(
        `40 concurrent stalled verifies: slowest ${Math.max(...times)} ms, fastest ${Math.min(...times)} ms, pending ${outcomes.filter((o) => !o.settled).length}`,
      );
      for (const [i, outcome] of outcomes.entries()) expectUnavailable(outcome, `concurrent verification #${i}`);
    });

    it('it refuses a guarded load the same way, and no package code runs', async () => {
      await sleep(300);
      const outcome = await timed(() => f.loader.load(f.lib));
      note(`stalled load: ${outcome.settled ? describeChain(outcome.error).slice(0, 160) : 'pending'} after ${outcome.ms} ms`);
      if (outcome.value) (outcome.value as LoadedPackage).close();
      expectUnavailable(outcome, 'a guarded load while stalled');
      expect(existsSync(f.marker), 'the package constructor ran although the load was refused').to.equal(false);
    });
  });

  describe('when the proxy forwards again (the stalled connections stay silent for good)', () => {
    before(() => proxy!.resume());

    it('it verifies again through the same loader and database handle, without reopening', async () => {
      const before = await eventually(() => successEvents(db, f), 'reading the audit table');
      const { value, attempts, ms } = await eventually(() => verifyStored(f), 'verification after the proxy resumed');
      note(`verified again after ${ms} ms, ${attempts} attempt(s)`);
      expect((value as VerificationResult).signerFingerprint).to.equal(f.fingerprint);
      // The success was audited through the same handle too.
      expect(await successEvents(db, f)).to.equal(before.value + 1);
    });

    it('it loads the package again through the same loader (its constructor runs: the refusal above was real)', async () => {
      const { value: loaded, ms } = await eventually(() => f.loader.load(f.lib), 'load after the proxy resumed');
      note(`loaded again after ${ms} ms`);
      try {
        expect(loaded.signerFingerprint).to.equal(f.fingerprint);
        expect(existsSync(f.marker)).to.equal(true);
      } finally {
        loaded.close();
      }
    });
  });

  describe('when the handle is closed after a stall', () => {
    it('it closes without hanging, even with stalled connections still open', async () => {
      // Stall again with the pool and the listener holding connections, then close while stalled.
      await eventually(() => verifyStored(f), 'verification before stalling again');
      proxy!.stall();
      await sleep(300);
      const failed = await timed(() => verifyStored(f));
      expectUnavailable(failed, 'a verification while stalled again');
      const closing = await timed(() => db.close());
      note(`close after a stall: ${closing.settled ? (closing.error ? describeChain(closing.error) : 'closed') : 'pending'} after ${closing.ms} ms`);
      expect(closing.settled, `db.close() still pending after ${closing.ms} ms`).to.equal(true);
      expect(closing.error, describeChain(closing.error)).to.equal(undefined);
      expect(closing.ms).to.be.below(BOUND_MS);
    });
  });
});

// ---------------------------------------------------------------------------------------------------------
// 1b. The same, with every pool slot holding an idle connection when the proxy stalls (a busy runner).

describe('bounded database waits: PostgreSQL behind a stalled proxy, with idle connections in the pool [@postgres]', function () {
  this.timeout(30_000);
  const dir = tempDir();
  let scratch: ScratchDatabase | undefined;
  let proxy: StallingProxy | undefined;
  let db: Database;
  let f: Fixture;
  /** What a busy runner leaves behind: every slot of the pool (8) holding an idle connection. */
  const fillPool = () => Promise.all(Array.from({ length: 8 }, () => db.run((knex) => knex.raw('select pg_sleep(0.05)'))));

  before(async function () {
    this.timeout(60_000);
    scratch = await createScratchDatabase('cloacina_stall');
    const direct = new URL(scratch.url);
    proxy = await new StallingProxy(direct.hostname, Number(direct.port || 5432)).listen();
    const viaProxy = new URL(scratch.url);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    db = await openDatabase(viaProxy.toString(), { timeoutMs: TIMEOUT_MS, migrate: true });
    f = await setUp(db, dir, 'idlepool');
  });

  after(async function () {
    this.timeout(60_000);
    await closeQuietly(db);
    await proxy?.close();
    await scratch?.drop();
    dir.cleanup();
  });

  describe('when the proxy resumes after a stall', () => {
    it('it verifies again through the same handle within a few seconds (the stale idle connections are torn down)', async () => {
      await fillPool();
      expect((await verifyStored(f)).signerFingerprint).to.equal(f.fingerprint);
      proxy!.stall();
      await sleep(300);
      expectUnavailable(await timed(() => verifyStored(f)), 'a verification while stalled');
      proxy!.resume();
      const { value, attempts, ms } = await eventually(() => verifyStored(f), 'verification after the proxy resumed (stale idle connections in the pool)');
      note(`idle pool: verified again ${ms} ms after the resume, ${attempts} attempt(s)`);
      expect(value.signerFingerprint).to.equal(f.fingerprint);
    });
  });

  describe('when the handle is closed while stalled', () => {
    let closing: Outcome<void>;
    before(async function () {
      this.timeout(60_000);
      await eventually(fillPool, 'filling the pool');
      proxy!.stall();
      closing = await timed(() => db.close());
      note(
        `close while stalled with an idle pool: ${closing.settled ? (closing.error ? describeChain(closing.error) : 'closed') : 'pending'} after ${closing.ms} ms; ${openSocketsTo(proxy!.port)} socket(s) still open`,
      );
    });

    it('it closes within the bound plus margin', () => {
      expect(closing.settled, `db.close() still pending after ${closing.ms} ms`).to.equal(true);
      expect(closing.error, describeChain(closing.error)).to.equal(undefined);
      expect(closing.ms, 'db.close() with stalled idle connections').to.be.below(BOUND_MS);
    });

    it('it leaves no connection to the database open (so the process can exit)', () => {
      expect(openSocketsTo(proxy!.port), 'client sockets to the stalled database still open after db.close()').to.equal(0);
    });
  });
});

// ---------------------------------------------------------------------------------------------------------
// 2a. SQLite: another connection holds the write lock.

describe('bounded database waits: SQLite, another connection holds the write lock', function () {
  this.timeout(30_000);
  const dir = tempDir();
  const file = dir.join('stall.db');
  let db: Database;
  let f: Fixture;

  before(async () => {
    db = await openDatabase(`sqlite:${file}`, { timeoutMs: TIMEOUT_MS, migrate: true });
    f = await setUp(db, dir, 'sqlitelock');
    expect((await verifyStored(f)).signerFingerprint).to.equal(f.fingerprint);
  });

  after(async () => {
    await closeQuietly(db);
    dir.cleanup();
  });

  describe('when a second handle holds BEGIN IMMEDIATE on the same file', () => {
    let other: Database;
    let held = false;
    before(async () => {
      other = await openDatabase(`sqlite:${file}`, { timeoutMs: TIMEOUT_MS });
      await other.knex.raw('BEGIN IMMEDIATE');
      held = true;
    });
    after(async () => {
      if (held) await other.knex.raw('ROLLBACK');
      await closeQuietly(other);
    });

    it('it fails a verification that must write its audit row within the bound (DATABASE_UNAVAILABLE in the chain)', async () => {
      const outcome = await timed(() => verifyStored(f));
      note(`sqlite BEGIN IMMEDIATE verify: ${outcome.settled ? describeChain(outcome.error).slice(0, 160) : 'pending'} after ${outcome.ms} ms`);
      expectUnavailable(outcome, 'a verification while the write lock is held');
    });

    it('it refuses a guarded load within the bound, and no package code runs', async () => {
      const outcome = await timed(() => f.loader.load(f.lib));
      note(`sqlite BEGIN IMMEDIATE load: ${outcome.settled ? describeChain(outcome.error).slice(0, 160) : 'pending'} after ${outcome.ms} ms`);
      if (outcome.value) (outcome.value as LoadedPackage).close();
      expectUnavailable(outcome, 'a guarded load while the write lock is held');
      expect(existsSync(f.marker), 'the package constructor ran although the load was refused').to.equal(false);
    });

    it('it verifies again through the same handle once the lock is released, and audits it', async () => {
      await other.knex.raw('COMMIT');
      held = false;
      const before = await successEvents(db, f);
      const { value, ms } = await eventually(() => verifyStored(f), 'verification after the lock was released');
      note(`sqlite verified again ${ms} ms after the release`);
      expect(value.signerFingerprint).to.equal(f.fingerprint);
      expect(await successEvents(db, f)).to.equal(before + 1);
    });
  });

  describe('when the sqlite3 module holds BEGIN EXCLUSIVE on the same file', () => {
    let raw: RawSqlite;
    let held = false;
    before(async () => {
      raw = await openRawSqlite(file);
      await execRaw(raw, 'BEGIN EXCLUSIVE');
      held = true;
    });
    after(async () => {
      if (held) await execRaw(raw, 'ROLLBACK');
      await new Promise<void>((resolve) => raw.close(() => resolve()));
    });

    it('it fails a verification that must write its audit row within the bound (DATABASE_UNAVAILABLE in the chain)', async () => {
      const outcome = await timed(() => verifyStored(f));
      note(`sqlite BEGIN EXCLUSIVE verify: ${outcome.settled ? describeChain(outcome.error).slice(0, 160) : 'pending'} after ${outcome.ms} ms`);
      expectUnavailable(outcome, 'a verification while an exclusive transaction is open');
    });

    it('it verifies again through the same handle once the lock is released', async () => {
      await execRaw(raw, 'COMMIT');
      held = false;
      const { value, ms } = await eventually(() => verifyStored(f), 'verification after the exclusive lock was released');
      note(`sqlite verified again ${ms} ms after the release`);
      expect(value.signerFingerprint).to.equal(f.fingerprint);
    });
  });
});

// ---------------------------------------------------------------------------------------------------------
// 2b. PostgreSQL: another connection holds LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE.

interface PgClient {
  connect(): Promise<void>;
  query(sql: string): Promise<unknown>;
  end(): Promise<void>;
  on(event: 'error', listener: () => void): void;
}
const { Client: PgClientClass } = require('pg') as { Client: new (config: object) => PgClient };

describe('bounded database waits: PostgreSQL, another connection holds a lock on audit_events [@postgres]', function () {
  this.timeout(30_000);
  const dir = tempDir();
  let scratch: ScratchDatabase | undefined;
  let db: Database;
  let f: Fixture;
  let locker: PgClient | undefined;

  before(async function () {
    this.timeout(60_000);
    scratch = await createScratchDatabase('cloacina_stall');
    db = await openDatabase(scratch.url, { timeoutMs: TIMEOUT_MS, migrate: true });
    f = await setUp(db, dir, 'pglock');
    expect((await verifyStored(f)).signerFingerprint).to.equal(f.fingerprint);
    locker = new PgClientClass({ connectionString: scratch.url, connectionTimeoutMillis: 3000 });
    locker.on('error', () => undefined);
    await locker.connect();
  });

  after(async function () {
    this.timeout(60_000);
    await locker?.end().catch(() => undefined);
    await closeQuietly(db);
    await scratch?.drop();
    dir.cleanup();
  });

  describe('when LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE is held in an open transaction', () => {
    let held = false;
    before(async () => {
      await locker!.query('BEGIN');
      await locker!.query('LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE');
      held = true;
    });
    after(async () => {
      if (held) await locker!.query('ROLLBACK');
    });

    it('it fails a verification that must write its audit row within the bound (DATABASE_UNAVAILABLE in the chain)', async () => {
      const outcome = await timed(() => verifyStored(f));
      note(`pg lock verify: ${outcome.settled ? describeChain(outcome.error).slice(0, 160) : 'pending'} after ${outcome.ms} ms`);
      expectUnavailable(outcome, 'a verification while audit_events is locked');
    });

    it('it settles each of many concurrent verifications within the bound, none hangs', async () => {
      const outcomes = await Promise.all(Array.from({ length: 20 }, () => timed(() => verifyStored(f))));
      const times = outcomes.map((o) => o.ms);
      note(`20 concurrent locked verifies: slowest ${Math.max(...times)} ms, fastest ${Math.min(...times)} ms`);
      for (const [i, outcome] of outcomes.entries()) expectUnavailable(outcome, `concurrent verification #${i}`);
    });

    it('it refuses a guarded load within the bound, and no package code runs', async () => {
      const outcome = await timed(() => f.loader.load(f.lib));
      note(`pg lock load: ${outcome.settled ? describeChain(outcome.error).slice(0, 160) : 'pending'} after ${outcome.ms} ms`);
      if (outcome.value) (outcome.value as LoadedPackage).close();
      expectUnavailable(outcome, 'a guarded load while audit_events is locked');
      expect(existsSync(f.marker), 'the package constructor ran although the load was refused').to.equal(false);
    });

    it('it verifies again through the same handle once the lock is released, and audits it', async () => {
      await locker!.query('ROLLBACK');
      held = false;
      const before = await successEvents(db, f);
      const { value, ms } = await eventually(() => verifyStored(f), 'verification after the lock was released');
      note(`pg verified again ${ms} ms after the release`);
      expect(value.signerFingerprint).to.equal(f.fingerprint);
      expect(await successEvents(db, f)).to.equal(before + 1);
    });
  });
});
