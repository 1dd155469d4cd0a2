// Bounded time from the first byte: PostgreSQL goes silent at every position of the conversation, from the
// TCP accept on (right after it, after the SSLRequest and each TLS record, after the start-up message,
// knex's version query, the first query, each message of the verification's own queries). At each one the
// CLI exits 2 reporting DATABASE_UNAVAILABLE within the bound (then nothing, no socket and no timer, keeps
// it alive), and the library refuses within the bound, saying which bound, then recovers on the same handle.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { auditToDatabase, CloacinaSignError, createPackageLoader, type Database, databaseTrust, openDatabase } from '../../src';
import { PgListener } from '../../src/db/pg-listener';
import { CLI, tempDir, waitUntil } from '../helpers';
import { createScratchDatabase, type ScratchDatabase } from './scratch-postgres';
import {
  causeChain,
  closeQuietly,
  describeChain,
  eventually,
  execRaw,
  type Fixture,
  note,
  type Outcome,
  openRawSqlite,
  RECOVERY_MS,
  type RawSqlite,
  setUp,
  timed,
  verifyStored,
} from './stall-helpers';
import { openSocketsTo, StallingProxy } from './stalling-proxy';

/** The bound, for the library (timeoutMs) and the CLI (CLOACINA_DATABASE_TIMEOUT, in seconds). */
const TIMEOUT_MS = 1000;
/** A library refusal settles at most this long after the bound ran out (a second bound would exceed it). */
const LIBRARY_SLACK_MS = 600;
/** The CLI exits at most this long after the bound ran out: it closes the pool and node shuts down. */
const CLI_SLACK_MS = 3000;
/** A CLI still running after this is hung: killed, and the test fails. */
const HANG_MS = 30_000;
/** Cut positions tried at once (each mostly waits on its bound). */
const PARALLEL = 4;

/** Runs `work` for every item, `PARALLEL` at a time, in order of completion; returns the results in item order. */
async function inParallel<I, R>(items: readonly I[], work: (item: I) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
  return results;
}

/** 0 .. n-1. */
const positions = (n: number) => Array.from({ length: n }, (_, i) => i);

/** The cut positions that stop something the work needs: every one before the connections' closing messages. */
function positionsBeforeClosing(conversation: readonly string[]): number[] {
  const closing = conversation.indexOf('X');
  expect(closing, `no Terminate message in the conversation ${conversation.join(',')}`).to.be.greaterThan(0);
  return positions(closing);
}

/** The positions of a TLS conversation up to its second connection: the first session's whole start, and its first queries. */
function firstSessionOverTls(conversation: readonly string[]): number[] {
  expect(conversation[0], conversation.join(',')).to.equal('ssl-request');
  const second = conversation.indexOf('ssl-request', 1);
  return positions(second > 0 ? second : conversation.length - 2);
}

interface CliRun {
  /** null when killed after HANG_MS. */
  status: number | null;
  stdout: string;
  stderr: string;
  /** When it exited (performance.now()). */
  exitedAt: number;
  ms: number;
}

/** The CLI as a child process, never waited for longer than HANG_MS. */
function runCliAsync(args: string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    let hung = false;
    const killer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, HANG_MS);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(killer);
      const exitedAt = performance.now();
      resolve({ status: hung ? null : status, stdout, stderr, exitedAt, ms: Math.round(exitedAt - start) });
    });
  });
}

describe('bounded time from the first byte: PostgreSQL goes silent after the client’s Nth message [@postgres]', function () {
  this.timeout(60_000);
  const dir = tempDir();
  let scratch: ScratchDatabase;
  let direct: Database;
  let f: Fixture;

  before(async function () {
    this.timeout(120_000);
    scratch = await createScratchDatabase('cloacina_cut');
    direct = await openDatabase(scratch.url, { timeoutMs: 5000, migrate: true, listen: false });
    f = await setUp(direct, dir, 'acme');
  });

  after(async function () {
    this.timeout(60_000);
    await closeQuietly(direct);
    await scratch?.drop();
    dir.cleanup();
  });

  describe('the CLI: package verify --org --database through the proxy', () => {
    const verifyArgs = (url: string) => ['package', 'verify', f.pkg, '--org', 'acme', '--database', url, '--json'];
    const env = { CLOACINA_DATABASE_TIMEOUT: String(TIMEOUT_MS / 1000), CLOACINA_AUDIT_LOG: 'off', CLOACINA_DATABASE_URL: '' };

    /** The whole conversation of one uncut run, message by message. */
    async function conversation(url: string): Promise<string[]> {
      const proxy = await StallingProxy.for(url);
      try {
        const run = await runCliAsync(verifyArgs(proxy.urlFor(url)), env);
        expect(run.status, run.stderr).to.equal(0);
        return [...proxy.forwarded];
      } finally {
        await proxy.close();
      }
    }

    /** Runs the CLI through a proxy that forwards `n` messages; asserts exit 2, DATABASE_UNAVAILABLE stating the bound, in time. */
    async function expectRefusedAt(url: string, n: number): Promise<number> {
      const proxy = await StallingProxy.for(url, { stallAfterClientMessages: n });
      try {
        const run = await runCliAsync(verifyArgs(proxy.urlFor(url)), env);
        const what = `cut after ${n} message(s) [${proxy.forwarded.join(',')}], exit ${run.status} after ${run.ms} ms: ${run.stderr.trim()}`;
        expect(run.status, `${what}: still running after ${HANG_MS} ms`).to.not.equal(null);
        expect(run.status, what).to.equal(2);
        expect(proxy.stalledAt, `${what}: the proxy never went silent`).to.be.a('number');
        const output = JSON.parse(run.stdout) as { error?: { code: string; message: string }; results: { error?: { code: string; message: string } }[] };
        const error = output.error ?? output.results[0]?.error;
        expect(error, what).to.not.equal(undefined);
        // A verification that succeeded but could not be audited is refused as AUDIT_FAILED, for the same reason.
        if (error!.code === 'AUDIT_FAILED') expect(run.stderr, what).to.include('the database');
        else expect(error!.code, what).to.equal('DATABASE_UNAVAILABLE');
        expect(error!.message, what).to.include(`did not answer within ${TIMEOUT_MS} ms`);
        const afterStall = Math.round(run.exitedAt - proxy.stalledAt!);
        expect(afterStall, `${what}: exited ${afterStall} ms after the database went silent`).to.be.below(TIMEOUT_MS + CLI_SLACK_MS);
        return afterStall;
      } finally {
        await proxy.close();
      }
    }

    it('when PostgreSQL goes silent after any client message (1st, 2nd, … up to the last before closing), it exits 2 with DATABASE_UNAVAILABLE within the bound, every time', async function () {
      this.timeout(600_000);
      const cuts = positionsBeforeClosing(await conversation(scratch.url));
      const afterStall = await inParallel(cuts, (n) => expectRefusedAt(scratch.url, n));
      note(`${cuts.length} cut positions; exited ${Math.min(...afterStall)}..${Math.max(...afterStall)} ms after the database went silent`);
    });

    it('when the client asks for TLS and PostgreSQL goes silent after the SSLRequest or any TLS record of the first session, it exits 2 within the bound', async function () {
      this.timeout(600_000);
      const tlsUrl = `${scratch.url}?sslmode=no-verify`;
      const cuts = firstSessionOverTls(await conversation(tlsUrl));
      const afterStall = await inParallel(cuts, (n) => expectRefusedAt(tlsUrl, n));
      note(`${cuts.length} TLS cut positions; exited ${Math.min(...afterStall)}..${Math.max(...afterStall)} ms after the database went silent`);
    });
  });

  describe('the library: openDatabase, then a verification, through the proxy', () => {
    /** What one cut position showed. */
    interface Cut {
      n: number;
      /** Where it was refused. */
      step: 'open' | 'verify';
      afterStallMs: number;
    }

    const open = (url: string) => openDatabase(url, { timeoutMs: TIMEOUT_MS, listen: false });

    /** The messages of one uncut open, verification and close. */
    async function conversation(): Promise<string[]> {
      const proxy = await StallingProxy.for(scratch.url);
      try {
        const db = await open(proxy.urlFor(scratch.url));
        try {
          expect((await verifyStored(fixtureOn(db))).signerFingerprint).to.equal(f.fingerprint);
        } finally {
          await db.close();
        }
        return [...proxy.forwarded];
      } finally {
        await proxy.close();
      }
    }

    /** The fixture's loader, on another handle. */
    function fixtureOn(db: Database): Fixture {
      return { ...f, loader: createPackageLoader({ trust: databaseTrust(db, { org: f.orgId }), audit: auditToDatabase(db), requireSignatures: true }) };
    }

    /** Refused with DATABASE_UNAVAILABLE (or AUDIT_FAILED because of it), stating the bound, within it after the stall. */
    function expectRefusal(outcome: Outcome<unknown>, settledAt: number, proxy: StallingProxy, what: string): number {
      const detail = `${what} (after ${outcome.ms} ms): ${outcome.settled ? describeChain(outcome.error) : 'still pending'}`;
      expect(outcome.settled, detail).to.equal(true);
      expect(outcome.error, `${detail}: it succeeded`).to.not.equal(undefined);
      const chain = causeChain(outcome.error).filter((e): e is CloacinaSignError => e instanceof CloacinaSignError);
      expect(chain[0]?.code, detail).to.be.oneOf(['DATABASE_UNAVAILABLE', 'AUDIT_FAILED']);
      const unavailable = chain.find((e) => e.code === 'DATABASE_UNAVAILABLE');
      expect(unavailable, detail).to.not.equal(undefined);
      expect(unavailable!.message, detail).to.include(`did not answer within ${TIMEOUT_MS} ms`);
      expect(proxy.stalledAt, `${detail}: the proxy never went silent`).to.be.a('number');
      const afterStall = Math.round(settledAt - proxy.stalledAt!);
      expect(afterStall, `${detail}: refused ${afterStall} ms after the database went silent`).to.be.below(TIMEOUT_MS + LIBRARY_SLACK_MS);
      return afterStall;
    }

    async function cutAt(n: number): Promise<Cut> {
      const proxy = await StallingProxy.for(scratch.url, { stallAfterClientMessages: n });
      const url = proxy.urlFor(scratch.url);
      let db: Database | undefined;
      try {
        const openedFrom = performance.now();
        const opening = await timed(() => open(url));
        const what = `cut after ${n} message(s) [${proxy.forwarded.join(',')}]`;
        if (opening.error !== undefined || !opening.settled) {
          const afterStallMs = expectRefusal(opening, openedFrom + opening.ms, proxy, `${what}: openDatabase`);
          expect(openSocketsTo(proxy.port), `${what}: sockets left open after openDatabase was refused`).to.equal(0);
          return { n, step: 'open', afterStallMs };
        }
        db = opening.value as Database;
        const fixture = fixtureOn(db);
        const verifiedFrom = performance.now();
        const verifying = await timed(() => verifyStored(fixture));
        const afterStallMs = expectRefusal(verifying, verifiedFrom + verifying.ms, proxy, `${what}: a verification`);
        // The same handle works again once the database answers.
        proxy.resume();
        const { value } = await eventually(() => verifyStored(fixture), `${what}: verification after the database answered again`);
        expect(value.signerFingerprint).to.equal(f.fingerprint);
        const closing = await timed(() => db!.close());
        expect(closing.settled && closing.error === undefined, `${what}: close ${describeChain(closing.error)}`).to.equal(true);
        expect(openSocketsTo(proxy.port), `${what}: sockets left open after close`).to.equal(0);
        return { n, step: 'verify', afterStallMs };
      } finally {
        await closeQuietly(db);
        await proxy.close();
      }
    }

    it('when PostgreSQL goes silent after any client message, openDatabase or the verification is refused within timeoutMs, its message states timeoutMs, and the handle recovers', async function () {
      this.timeout(600_000);
      const cuts = positionsBeforeClosing(await conversation());
      const results = await inParallel(cuts, cutAt);
      const opens = results.filter((r) => r.step === 'open');
      const verifies = results.filter((r) => r.step === 'verify');
      expect(opens, 'no cut fell inside openDatabase').to.not.be.empty;
      expect(verifies, 'no cut fell inside the verification').to.not.be.empty;
      const range = (cuts: Cut[]) => `${Math.min(...cuts.map((c) => c.afterStallMs))}..${Math.max(...cuts.map((c) => c.afterStallMs))} ms`;
      note(
        `${cuts.length} cut positions: ${opens.length} in openDatabase (refused ${range(opens)} after the silence), ${verifies.length} in the verification (${range(verifies)})`,
      );
    });

    it('when PostgreSQL goes silent after any client message of openDatabase with { migrate: true } (the migration lock, the migration check), it settles within timeoutMs, refused unless only the lock’s release went unanswered, and leaves no socket', async function () {
      this.timeout(600_000);
      const migrating = (url: string) => openDatabase(url, { timeoutMs: TIMEOUT_MS, listen: false, migrate: true });
      const uncut = await StallingProxy.for(scratch.url);
      try {
        await (await migrating(uncut.urlFor(scratch.url))).close();
      } finally {
        await uncut.close();
      }
      const cuts = positionsBeforeClosing(uncut.forwarded);
      const results = await inParallel(cuts, async (n) => {
        const proxy = await StallingProxy.for(scratch.url, { stallAfterClientMessages: n });
        try {
          const from = performance.now();
          const opening = await timed(() => migrating(proxy.urlFor(scratch.url)));
          const what = `cut after ${n} message(s) [${proxy.forwarded.join(',')}]: openDatabase({ migrate: true })`;
          let outcome: { n: number; refused: boolean; afterStallMs: number };
          if (opening.settled && opening.error === undefined) {
            // Migrated, then the release of the migration lock went unanswered: its connection (and with it the lock) was destroyed.
            await (opening.value as Database).close();
            const afterStallMs = Math.round(from + opening.ms - proxy.stalledAt!);
            expect(afterStallMs, `${what}: succeeded ${afterStallMs} ms after the database went silent`).to.be.below(TIMEOUT_MS + LIBRARY_SLACK_MS);
            outcome = { n, refused: false, afterStallMs };
          } else {
            outcome = { n, refused: true, afterStallMs: expectRefusal(opening, from + opening.ms, proxy, what) };
          }
          expect(openSocketsTo(proxy.port), `${what}: sockets left open`).to.equal(0);
          return outcome;
        } finally {
          await proxy.close();
        }
      });
      const succeeded = results.filter((r) => !r.refused).map((r) => r.n);
      // Only the last exchange of the run (the lock's release, one extended query) may go unanswered without a refusal.
      const lastExchange = cuts.length - 6;
      expect(
        succeeded.filter((n) => n < lastExchange),
        `succeeded at cut positions ${succeeded.join(',')} of ${cuts.length}`,
      ).to.be.empty;
      const times = results.map((r) => r.afterStallMs);
      note(
        `${cuts.length} cut positions while migrating (${succeeded.length} after the migration was done: ${succeeded.join(',')}); settled ${Math.min(...times)}..${Math.max(...times)} ms after the silence`,
      );
    });
  });
});

describe('bounded time from the first byte: the change listener’s own connection goes silent [@postgres]', function () {
  this.timeout(60_000);
  let scratch: ScratchDatabase;

  before(async function () {
    this.timeout(120_000);
    scratch = await createScratchDatabase('cloacina_cut_listen');
  });

  after(async () => {
    await scratch?.drop();
  });

  /** The messages of one listener's set-up (start-up, LISTEN), up to its closing. */
  async function conversation(): Promise<string[]> {
    const proxy = await StallingProxy.for(scratch.url);
    try {
      const listener = new PgListener(proxy.urlFor(scratch.url), () => undefined, TIMEOUT_MS);
      await listener.start();
      expect(listener.listening).to.equal(true);
      await listener.stop();
      return [...proxy.forwarded];
    } finally {
      await proxy.close();
    }
  }

  it('when PostgreSQL goes silent after any message of the listener’s set-up, start settles within the bound, the listener connects again once it answers, and stop leaves no socket', async function () {
    this.timeout(300_000);
    const cuts = positionsBeforeClosing(await conversation());
    await inParallel(cuts, async (n) => {
      const proxy = await StallingProxy.for(scratch.url, { stallAfterClientMessages: n });
      const listener = new PgListener(proxy.urlFor(scratch.url), () => undefined, TIMEOUT_MS);
      const what = `listener cut after ${n} message(s)`;
      try {
        const starting = await timed(() => listener.start());
        expect(starting.settled, `${what}: start() still pending after ${starting.ms} ms`).to.equal(true);
        expect(starting.ms, `${what}: start() took ${starting.ms} ms`).to.be.below(TIMEOUT_MS + LIBRARY_SLACK_MS);
        expect(listener.listening, what).to.equal(false);
        proxy.resume();
        await waitUntil(() => listener.listening, `${what}: listening again after the database answered`, RECOVERY_MS);
        const stopping = await timed(() => listener.stop());
        expect(stopping.settled && stopping.ms < TIMEOUT_MS, `${what}: stop() took ${stopping.ms} ms`).to.equal(true);
        expect(openSocketsTo(proxy.port), `${what}: sockets left open after stop()`).to.equal(0);
      } finally {
        await listener.stop();
        await proxy.close();
      }
    });
  });

  it('when stopped while its set-up waits on a silent database, it stops at once and leaves no socket', async () => {
    const proxy = await StallingProxy.for(scratch.url, { stallAfterClientMessages: 1 });
    const listener = new PgListener(proxy.urlFor(scratch.url), () => undefined, 10 * TIMEOUT_MS);
    try {
      const starting = listener.start();
      await waitUntil(() => proxy.stalledAt !== undefined, 'the listener’s LISTEN reaching the silent proxy');
      const stopping = await timed(() => listener.stop());
      expect(stopping.settled, `stop() still pending after ${stopping.ms} ms`).to.equal(true);
      expect(stopping.ms, 'stop() waited for the set-up instead of tearing it down').to.be.below(TIMEOUT_MS);
      await starting;
      expect(openSocketsTo(proxy.port), 'sockets left open after stop()').to.equal(0);
    } finally {
      await proxy.close();
    }
  });
});

describe('bounded time from the first byte: a locked SQLite database', function () {
  this.timeout(60_000);
  const dir = tempDir();
  const file = dir.join('locked.db');
  let f: Fixture;
  let raw: RawSqlite | undefined;

  before(async function () {
    this.timeout(120_000);
    const db = await openDatabase(`sqlite:${file}`, { timeoutMs: 5000, migrate: true });
    try {
      f = await setUp(db, dir, 'acme');
    } finally {
      await db.close();
    }
  });

  afterEach(async () => {
    if (raw) await new Promise<void>((resolve) => raw!.close(() => resolve()));
    raw = undefined;
  });

  after(() => dir.cleanup());

  const verify = () =>
    runCliAsync(['package', 'verify', f.pkg, '--org', 'acme', '--database', `sqlite:${file}`, '--json'], {
      CLOACINA_DATABASE_TIMEOUT: String(TIMEOUT_MS / 1000),
      CLOACINA_AUDIT_LOG: 'off',
      CLOACINA_DATABASE_URL: '',
    });

  /** Another connection takes the lock `sql` describes, and keeps it. */
  async function holdLock(sql: string): Promise<void> {
    raw = await openRawSqlite(file);
    await execRaw(raw, sql);
  }

  it('when another connection holds the file in exclusive locking mode (nothing can even be read), the CLI exits 2 with DATABASE_UNAVAILABLE within the bound', async () => {
    await holdLock('PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; UPDATE change_version SET version = version + 1');
    const run = await verify();
    const what = `exit ${run.status} after ${run.ms} ms: ${run.stderr.trim()}`;
    expect(run.status, what).to.equal(2);
    expect(JSON.parse(run.stdout).error, what).to.deep.include({ code: 'DATABASE_UNAVAILABLE' });
    expect(JSON.parse(run.stdout).error.message, what).to.include(`within ${TIMEOUT_MS} ms`);
    expect(run.ms, what).to.be.below(TIMEOUT_MS + CLI_SLACK_MS);
  });

  it('when another connection holds the write lock, the verification is refused within the bound (its audit row cannot be written) and the CLI exits 2', async () => {
    await holdLock('BEGIN IMMEDIATE; UPDATE change_version SET version = version + 1');
    const run = await verify();
    const what = `exit ${run.status} after ${run.ms} ms: ${run.stderr.trim()}`;
    expect(run.status, what).to.equal(2);
    const error = JSON.parse(run.stdout).results[0].error;
    expect(error.code, what).to.equal('AUDIT_FAILED');
    expect(error.message, what).to.include(`did not answer within ${TIMEOUT_MS} ms`);
    expect(run.ms, what).to.be.below(TIMEOUT_MS + CLI_SLACK_MS);
  });
});

describe('the bound from the environment (CLOACINA_DATABASE_TIMEOUT)', () => {
  const dir = tempDir();
  const saved = process.env.CLOACINA_DATABASE_TIMEOUT;
  afterEach(() => {
    if (saved === undefined) delete process.env.CLOACINA_DATABASE_TIMEOUT;
    else process.env.CLOACINA_DATABASE_TIMEOUT = saved;
  });
  after(() => dir.cleanup());

  it('when it is set in seconds and timeoutMs is not given, it is the bound of the handle', async () => {
    process.env.CLOACINA_DATABASE_TIMEOUT = '0.75';
    const db = await openDatabase(`sqlite:${dir.join('env.db')}`, { migrate: true });
    try {
      expect(db.timeoutMs).to.equal(750);
    } finally {
      await db.close();
    }
  });

  it('when it is not a positive number of seconds, openDatabase refuses with INVALID_INPUT', async () => {
    for (const value of ['0', '-1', 'soon', '5s', '1e3']) {
      process.env.CLOACINA_DATABASE_TIMEOUT = value;
      const error = await openDatabase(`sqlite:${dir.join('env.db')}`, { migrate: true }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, value).to.be.instanceOf(CloacinaSignError);
      expect((error as CloacinaSignError).code, value).to.equal('INVALID_INPUT');
    }
  });
});
