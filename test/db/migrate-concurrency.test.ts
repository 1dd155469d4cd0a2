// Many processes migrating one fresh database at once (every runner starting with { migrate: true },
// several `db migrate`): each one succeeds or waits, and the schema ends complete with every migration
// recorded exactly once. A held migration lock is waited for (longer than the per-operation deadline,
// without tearing the pool down) up to a bound, after which DATABASE_UNAVAILABLE says why.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { type Database, openDatabase } from '../../src/db/database';
import { migrationNames } from '../../src/db/migrate';
import { CLI, rejectsWith, tempDir } from '../helpers';
import { describeEngines } from './engines';
import { createScratchDatabase, type ScratchDatabase } from './scratch-postgres';

const OPEN_MIGRATE = join(__dirname, '../fixtures/open-migrate.js');
const TABLES = [
  'organizations',
  'signing_keys',
  'trusted_keys',
  'key_trust_acls',
  'packages',
  'package_signatures',
  'audit_events',
  'change_version',
  'knex_migrations',
  'knex_migrations_lock',
];
const POSTGRES_LOCK_KEY = '4726229390252597722';

interface Exit {
  status: number | null;
  stdout: string;
  stderr: string;
}

function spawnNode(args: string[]): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, NO_COLOR: '1', CLOACINA_DATABASE_URL: '', CLOACINA_AUDIT_LOG: 'off' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Every table, each migration recorded once, one change_version row, knex's lock free, no lock table of ours left. */
async function expectCompleteSchema(url: string): Promise<void> {
  const db = await openDatabase(url, { listen: false });
  try {
    for (const table of TABLES) expect(await db.run((knex) => knex.schema.hasTable(table)), table).to.equal(true);
    expect(await db.run((knex) => knex.schema.hasTable('cloacina_sign_migration_lock'))).to.equal(false);
    const recorded = await db.run((knex) => knex('knex_migrations').select('name').orderBy('name'));
    expect(recorded.map((row: { name: string }) => row.name)).to.deep.equal(migrationNames());
    expect(await db.run((knex) => knex('change_version').select('id'))).to.have.length(1);
    const locks = await db.run((knex) => knex('knex_migrations_lock').select('is_locked'));
    expect(locks.map((row: { is_locked: number }) => Number(row.is_locked))).to.deep.equal([0]);
  } finally {
    await db.close();
  }
}

describeEngines('concurrent migrations', (t) => {
  const dir = tempDir();
  const scratches: ScratchDatabase[] = [];
  const handles: Database[] = [];
  let count = 0;
  const processes = () => (t.engine === 'sqlite' ? 15 : 8);

  /** A database never migrated (SQLite: no file yet). */
  async function freshUrl(): Promise<string> {
    count += 1;
    if (t.engine === 'sqlite') return `sqlite:${dir.join(`fresh-${count}.db`)}`;
    const scratch = await createScratchDatabase('cloacina_test');
    scratches.push(scratch);
    return scratch.url;
  }

  /**
   * Holds the migration lock from outside until release() is called: PostgreSQL, the advisory lock;
   * SQLite, the write lock of the (new, empty, WAL) file.
   */
  async function holdMigrationLock(url: string): Promise<{ release: () => Promise<void> }> {
    if (t.engine === 'postgres') {
      const { Client } = require('pg');
      const client = new Client({ connectionString: url });
      await client.connect();
      await client.query(`select pg_advisory_lock(${POSTGRES_LOCK_KEY})`);
      return { release: () => client.end() };
    }
    const sqlite3 = require('sqlite3');
    const file = url.slice('sqlite:'.length);
    const connection = await new Promise<any>((resolve, reject) => {
      const opened = new sqlite3.Database(file, (error: Error | null) => (error ? reject(error) : resolve(opened)));
    });
    const exec = (sql: string) => new Promise<void>((resolve, reject) => connection.exec(sql, (error: Error | null) => (error ? reject(error) : resolve())));
    await exec('PRAGMA journal_mode = WAL; BEGIN IMMEDIATE;');
    return {
      release: async () => {
        await exec('COMMIT');
        await new Promise((resolve) => connection.close(resolve));
      },
    };
  }

  after(async () => {
    for (const db of handles) await db.close();
    for (const scratch of scratches) await scratch.drop();
    dir.cleanup();
  });

  it('when many `db migrate` processes start at once on a fresh database, every one exits 0 and exactly one applies each migration', async () => {
    const url = await freshUrl();
    const exits = await Promise.all(Array.from({ length: processes() }, () => spawnNode([CLI, 'db', 'migrate', '--database', url, '--json'])));
    for (const exit of exits) expect(exit.status, exit.stderr).to.equal(0);
    const applied = exits.flatMap((exit) => JSON.parse(exit.stdout).applied);
    expect(applied).to.deep.equal(migrationNames());
    await expectCompleteSchema(url);
  });

  it('when many processes open a fresh database with { migrate: true } at the same moment, every one succeeds and exactly one applies each migration', async () => {
    const url = await freshUrl();
    const startAt = Date.now() + 1500;
    const exits = await Promise.all(Array.from({ length: processes() }, () => spawnNode([OPEN_MIGRATE, url, String(startAt)])));
    for (const exit of exits) expect(exit.status, exit.stdout + exit.stderr).to.equal(0);
    const applied = exits.flatMap((exit) => JSON.parse(exit.stdout).applied);
    expect(applied).to.deep.equal(migrationNames());
    await expectCompleteSchema(url);
  });

  it('when another process holds the migration lock longer than the per-operation deadline, it waits and migrates once the lock is released', async () => {
    const url = await freshUrl();
    const lock = await holdMigrationLock(url);
    let releasedAt = 0;
    const releasing = new Promise<void>((resolve) =>
      setTimeout(() => {
        releasedAt = Date.now();
        lock.release().then(resolve);
      }, 1500),
    );
    const db = await openDatabase(url, { migrate: true, timeoutMs: 500, listen: false });
    const openedAt = Date.now();
    handles.push(db);
    await releasing;
    expect(releasedAt).to.be.greaterThan(0).and.at.most(openedAt);
    expect(db.appliedMigrations).to.deep.equal(migrationNames());
    await expectCompleteSchema(url);
    // The handle's pool survived the wait: it still answers.
    expect(await db.run((knex) => knex('organizations').count({ n: '*' }))).to.have.length(1);
  });

  it('when the migration lock is not released within the bound, it fails with DATABASE_UNAVAILABLE saying another migration holds it', async () => {
    const url = await freshUrl();
    const lock = await holdMigrationLock(url);
    try {
      const started = Date.now();
      const error = await rejectsWith(openDatabase(url, { migrate: true, migrationLockTimeoutMs: 700, listen: false }), 'DATABASE_UNAVAILABLE');
      expect(error.message).to.include('another migration holds the migration lock');
      expect(Date.now() - started)
        .to.be.at.least(650)
        .and.below(5000);
    } finally {
      await lock.release();
    }
  });
});
