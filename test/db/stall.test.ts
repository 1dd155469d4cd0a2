// Bounded time: no verification or load waits on the database without bound.
// openDatabase(url, { timeoutMs }) bounds every database operation. A database that stops answering (the
// TCP connection stays open, nothing is forwarded) or a lock held on the audit table fails verifications
// and loads with DATABASE_UNAVAILABLE (or AUDIT_FAILED whose cause is DATABASE_UNAVAILABLE) within the bound
// plus a small margin, and once the database answers again the same handle works again, without reopening.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, Socket } from 'node:net';
import {
  auditToDatabase,
  CloacinaSignError,
  createPackageLoader,
  type Database,
  DbKeyManager,
  DbPackageSigner,
  DetachedSignature,
  databaseTrust,
  generateKeypair,
  type LoadedPackage,
  openDatabase,
  type PackageLoader,
  readPrivateKeyFile,
  SignatureSource,
  signPackage,
  type VerificationResult,
  writeKeypairFiles,
} from '../../src';
import { listAuditEvents } from '../../src/audit/database-sink';
import { buildPackage } from '../fixtures';
import { tempDir } from '../helpers';
import { writePackage } from '../fixtures/random-package';
import { createScratchDatabase, type ScratchDatabase } from './scratch-postgres';

/** The bound every handle in this file is opened with. */
const TIMEOUT_MS = 1000;
/** The bound plus the margin the contract allows: a refusal must have settled by then. */
const BOUND_MS = 3 * TIMEOUT_MS;
/** Past this an operation counts as hung (reported as such, so a regression fails instead of hanging mocha). */
const WATCHDOG_MS = 12_000;
/** How long a recovered database may take to be usable again through the same handle. */
const RECOVERY_MS = 10_000;

// ---------------------------------------------------------------------------------------------------------
// Plumbing

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Outcome<T> {
  /** False when the watchdog fired first: the operation was still pending. */
  settled: boolean;
  ms: number;
  value?: T;
  error?: unknown;
}

/** Runs `work`, timing it; never waits longer than `watchdogMs` (then `settled` is false). */
async function timed<T>(work: () => Promise<T>, watchdogMs = WATCHDOG_MS): Promise<Outcome<T>> {
  const start = performance.now();
  const elapsed = () => Math.round(performance.now() - start);
  let timer: NodeJS.Timeout | undefined;
  const watchdog = new Promise<Outcome<T>>((resolve) => {
    timer = setTimeout(() => resolve({ settled: false, ms: elapsed() }), watchdogMs);
  });
  const run = Promise.resolve()
    .then(work)
    .then(
      (value): Outcome<T> => ({ settled: true, ms: elapsed(), value }),
      (error: unknown): Outcome<T> => ({ settled: true, ms: elapsed(), error }),
    );
  try {
    return await Promise.race([run, watchdog]);
  } finally {
    clearTimeout(timer);
  }
}

/** The error and its causes, outermost first. */
function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = error; e !== undefined && e !== null && chain.length < 10; e = (e as { cause?: unknown }).cause) chain.push(e);
  return chain;
}

function describeChain(error: unknown): string {
  return causeChain(error)
    .map((e) => (e instanceof CloacinaSignError ? `${e.code}: ${e.message}` : e instanceof Error ? `${e.name}: ${e.message}` : String(e)))
    .join('  <-  ');
}

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

/** Retries `work` until it resolves or `withinMs` has passed; each attempt is itself watched. */
async function eventually<T>(work: () => Promise<T>, what: string, withinMs = RECOVERY_MS): Promise<{ value: T; attempts: number; ms: number }> {
  const start = performance.now();
  let attempts = 0;
  let last: Outcome<T> | undefined;
  while (performance.now() - start < withinMs) {
    attempts += 1;
    last = await timed(work);
    if (last.settled && last.error === undefined) return { value: last.value as T, attempts, ms: Math.round(performance.now() - start) };
    if (!last.settled) break;
    await sleep(100);
  }
  const why = !last ? 'never tried' : last.settled ? describeChain(last.error) : `the last attempt was still pending after ${last.ms} ms`;
  throw new Error(`${what}: not working again after ${Math.round(performance.now() - start)} ms and ${attempts} attempt(s); last: ${why}`);
}

function note(text: string): void {
  console.log(`      (${text})`);
}

/**
 * A TCP proxy in front of PostgreSQL. It forwards normally; after `stall()` it keeps every connection
 * open (and accepts new ones) but forwards nothing in either direction, not even a close: a hung
 * middlebox. `resume()` forwards again for new connections only; the stalled ones stay silent for good.
 */
class StallingProxy {
  port = 0;
  /** Connections accepted, and those of them accepted while stalled. */
  accepted = 0;
  acceptedWhileStalled = 0;
  private stalled = false;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly pairs = new Set<{ silent: boolean }>();

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {
    this.server = createServer({ allowHalfOpen: true }, (client) => this.accept(client));
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  stall(): void {
    this.stalled = true;
    for (const pair of this.pairs) pair.silent = true;
  }

  resume(): void {
    this.stalled = false;
  }

  async close(): Promise<void> {
    this.stall();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => this.sockets.delete(socket));
  }

  private accept(client: Socket): void {
    this.track(client);
    this.accepted += 1;
    if (this.stalled) {
      // Accepted, read and dropped: the client's bytes go nowhere and nothing ever comes back.
      this.acceptedWhileStalled += 1;
      client.on('data', () => undefined);
      return;
    }
    const upstream = connect({ host: this.targetHost, port: this.targetPort, allowHalfOpen: true });
    this.track(upstream);
    const pair = { silent: false };
    this.pairs.add(pair);
    const forward = (from: Socket, to: Socket) => {
      from.on('data', (chunk: Buffer) => {
        if (!pair.silent) to.write(chunk);
      });
      from.on('end', () => {
        if (!pair.silent) to.end();
      });
      from.on('close', () => {
        if (!pair.silent) to.destroy();
        if (client.destroyed && upstream.destroyed) this.pairs.delete(pair);
      });
    };
    forward(client, upstream);
    forward(upstream, client);
  }
}

/** Closes a handle, waiting at most `ms` (cleanup only: the close test asserts its own bound). */
async function closeQuietly(db: Database | undefined, ms = 10_000): Promise<void> {
  if (db) await timed(() => db.close(), ms);
}

/** What every suite sets up: an organization trusting a key (from a key file), a random package with a stored
 * signature, and a real workflow package with a `.sig` whose constructor leaves a marker file. */
interface Fixture {
  orgId: string;
  fingerprint: string;
  /** Random bytes with a stored signature (verify). */
  pkg: string;
  /** A workflow package, its `.sig` beside it (load). */
  lib: string;
  /** Left by the library's constructor: exists only if package code ran. */
  marker: string;
  loader: PackageLoader;
}

async function setUp(db: Database, dir: ReturnType<typeof tempDir>, name: string): Promise<Fixture> {
  const keys = new DbKeyManager(db);
  const org = await keys.createOrganization(name);
  const vendor = generateKeypair();
  const { privateKeyPath } = await writeKeypairFiles(vendor, dir.join(`${name}.pem`));
  const privateKey = await readPrivateKeyFile(privateKeyPath);
  const trusted = await keys.trustPublicKey(org.id, vendor.publicKey, 'vendor');

  const pkg = writePackage(dir.join(`${name}-random.so`));
  await new DbPackageSigner(keys).storeSignature(await signPackage(pkg, privateKey));

  const marker = dir.join(`${name}-constructor-ran`);
  const lib = buildPackage(dir.join(`lib${name}.so`), { markerPath: marker, identity: name });
  await DetachedSignature.fromSignatureInfo(await signPackage(lib, privateKey)).writeToFile(`${lib}.sig`);

  const loader = createPackageLoader({ trust: databaseTrust(db, { org: org.id }), audit: auditToDatabase(db), requireSignatures: true });
  return { orgId: org.id, fingerprint: trusted.fingerprint, pkg, lib, marker, loader };
}

const verifyStored = (f: Fixture) => f.loader.verify(f.pkg, { signature: SignatureSource.Database });

async function successEvents(db: Database, f: Fixture): Promise<number> {
  const events = await listAuditEvents(db, { orgId: f.orgId, eventType: 'verification.success', limit: 1000 });
  return events.filter((e) => e.package_path === f.pkg).length;
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

/** Client sockets of this process still open towards `port` (open handles keep the process alive). */
function openSocketsTo(port: number): number {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter((h) => h instanceof Socket && h.remotePort === port && !h.destroyed).length;
}

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

interface RawSqlite {
  exec(sql: string, done: (error: Error | null) => void): void;
  close(done: (error: Error | null) => void): void;
}
const sqlite3 = require('sqlite3') as { Database: new (file: string, done: (error: Error | null) => void) => RawSqlite };

function openRawSqlite(file: string): Promise<RawSqlite> {
  return new Promise((resolve, reject) => {
    const raw: RawSqlite = new sqlite3.Database(file, (error) => (error ? reject(error) : resolve(raw)));
  });
}

const execRaw = (raw: RawSqlite, sql: string) => new Promise<void>((resolve, reject) => raw.exec(sql, (error) => (error ? reject(error) : resolve())));

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
