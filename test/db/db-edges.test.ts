// Hostile and careless input at the database's edges: a SQLite file that does not exist, a SQLite file the
// user cannot write, and passwords in database URLs of every form, which must never reach any output.
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { openDatabase } from '../../src/db/database';
import { migrationNames } from '../../src/db/migrate';
import { parseDatabaseUrl, redactUrl } from '../../src/db/url';
import { DbKeyManager } from '../../src/keys/db-key-manager';
import { CLI, type CliResult, rejectsWith, runCli, tempDir } from '../helpers';
import { describeEngines } from './engines';

describe('opening a SQLite database that does not exist', () => {
  const dir = tempDir();
  after(() => dir.cleanup());
  const leftovers = (file: string) => ['', '-wal', '-shm', '-journal'].filter((suffix) => existsSync(`${file}${suffix}`));

  it('when opened without migrate, it refuses with DATABASE_ERROR and creates no file', async () => {
    const file = dir.join('absent.db');
    const error = await rejectsWith(openDatabase(`sqlite:${file}`), 'DATABASE_ERROR');
    expect(error.message).to.include(`no database at sqlite:${file}`).and.include('db migrate');
    expect(leftovers(file)).to.deep.equal([]);
  });

  it('when opened readOnly, it refuses with DATABASE_ERROR and creates no file', async () => {
    const file = dir.join('absent-ro.db');
    await rejectsWith(openDatabase(`sqlite:${file}`, { readOnly: true }), 'DATABASE_ERROR');
    expect(leftovers(file)).to.deep.equal([]);
  });

  it('when opened with migrate: true, it creates the file and applies every migration', async () => {
    const file = dir.join('created.db');
    const db = await openDatabase(`sqlite:${file}`, { migrate: true });
    try {
      expect(db.appliedMigrations).to.deep.equal(migrationNames());
      expect(existsSync(file)).to.equal(true);
    } finally {
      await db.close();
    }
  });

  it('when the database is :memory:, it opens without migrate', async () => {
    const db = await openDatabase('sqlite::memory:');
    try {
      expect(await db.run((knex) => knex.raw('select 1 as one'))).to.deep.equal([{ one: 1 }]);
    } finally {
      await db.close();
    }
  });
});

/** How to run a process as a user who cannot write root's files: runuser or setpriv as root, else as we are. */
function unprivilegedPrefix(): string[] | undefined {
  if (process.getuid?.() !== 0) return [];
  const has = (command: string) => !spawnSync(command, ['--help'], { stdio: 'ignore' }).error;
  if (has('runuser')) return ['runuser', '-u', 'nobody', '--'];
  if (has('setpriv')) return ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
  return undefined;
}

describe('read-only commands on a SQLite file the user cannot write', () => {
  const prefix = unprivilegedPrefix();
  const asRoot = process.getuid?.() === 0;
  const dir = tempDir();
  const kek = randomBytes(32).toString('base64');
  const source = dir.join('source.db');
  const locked = dir.join('locked');
  const file = dir.join('locked', 'ro.db');
  const names = { parent: 'ro-parent', child: 'ro-child' };
  let keyFingerprint = '';

  /** Root-owned 0755/0644 for the unprivileged user; for a non-root run, our own files without write bits. */
  const lockDown = (path: string, isDirectory: boolean) => chmodSync(path, isDirectory ? (asRoot ? 0o755 : 0o555) : asRoot ? 0o644 : 0o444);

  const cliAs = (args: string[], database = file): CliResult => {
    const [command, ...rest] = [...(prefix ?? []), process.execPath, CLI, ...args, '--database', `sqlite:${database}`];
    const result = spawnSync(command, rest, {
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', CLOACINA_DATABASE_URL: '', CLOACINA_AUDIT_LOG: 'off', CLOACINA_KEY_ENCRYPTION_KEY: kek },
    });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr, json: () => JSON.parse(result.stdout) };
  };
  const okAs = (args: string[], database = file) => {
    const result = cliAs([...args, '--json'], database);
    expect(result.status, result.stderr).to.equal(0);
    return result.json();
  };
  const snapshot = (directory: string) => ({
    entries: readdirSync(directory).sort(),
    hashes: readdirSync(directory)
      .sort()
      .map((entry) =>
        createHash('sha256')
          .update(readFileSync(`${directory}/${entry}`))
          .digest('hex'),
      ),
  });

  before(async function () {
    if (prefix === undefined) {
      console.log('    skipping: running as root without runuser or setpriv, so no unprivileged user to run as');
      this.skip();
    }
    chmodSync(dir.path, 0o755); // the unprivileged user must reach the files
    const db = await openDatabase(`sqlite:${source}`, { migrate: true });
    const keys = new DbKeyManager(db);
    const parent = await keys.createOrganization(names.parent);
    const child = await keys.createOrganization(names.child);
    const key = await keys.createSigningKey(child.id, 'release', Buffer.from(kek, 'base64'));
    keyFingerprint = key.fingerprint;
    await keys.trustPublicKey(child.id, key.publicKey, 'release');
    await keys.grantTrust(parent.id, child.id);
    await db.close(); // the last connection checkpoints the WAL into the file and removes -wal/-shm
    expect(readdirSync(dir.path)).to.deep.equal(['source.db']);
    mkdirSync(locked);
    copyFileSync(source, file);
    lockDown(file, false);
    lockDown(locked, true);
  });

  after(() => {
    if (existsSync(locked)) chmodSync(locked, 0o755);
    dir.cleanup();
  });

  it('when listing organizations, it exits 0 with them', () => {
    expect(okAs(['orgs', 'list']).map((org: { name: string }) => org.name)).to.have.members([names.parent, names.child]);
  });

  it('when listing grants, it exits 0 with the grant', () => {
    const grants = okAs(['orgs', 'grants', '--org', names.parent]);
    expect(grants.map((g: { parentName: string; childName: string; status: string }) => [g.parentName, g.childName, g.status])).to.deep.equal([
      [names.parent, names.child, 'active'],
    ]);
  });

  it("when listing an organization's keys, it exits 0 with its signing and trusted keys", () => {
    const keys = okAs(['keys', 'list', '--org', names.child]);
    expect(keys.map((k: { kind: string; fingerprint: string }) => [k.kind, k.fingerprint])).to.have.deep.members([
      ['signing', keyFingerprint],
      ['trusted', keyFingerprint],
    ]);
  });

  it('when listing the keys an organization trusts through grants, it exits 0 with the inherited key', () => {
    const effective = okAs(['keys', 'list', '--org', names.parent, '--effective']);
    expect(effective.map((k: { fingerprint: string; inherited: boolean }) => [k.fingerprint, k.inherited])).to.deep.equal([[keyFingerprint, true]]);
  });

  it('when listing the audit trail, it exits 0 with the events', () => {
    expect(okAs(['audit', 'list']).map((e: { event_type: string }) => e.event_type)).to.include('key.signing.created');
  });

  it('when reading, it leaves the directory and the file exactly as they were', () => {
    const before = snapshot(locked);
    okAs(['orgs', 'list']);
    okAs(['audit', 'list']);
    expect(snapshot(locked)).to.deep.equal(before);
  });

  it('when a command writes, it exits 2 with DATABASE_ERROR saying the database is read-only', () => {
    const result = cliAs(['orgs', 'create', 'newco', '--json']);
    expect(result.status, result.stderr).to.equal(2);
    expect(result.json().error.code).to.equal('DATABASE_ERROR');
    expect(result.json().error.message).to.include('read-only');
  });

  it('when migrating, it exits 2 with DATABASE_ERROR saying the database is read-only', () => {
    const result = cliAs(['db', 'migrate']);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.match(/^error \[DATABASE_ERROR\]: .*read-only/m);
    expect(result.stderr).not.to.include('INTERNAL');
  });

  it('when only the directory is writable, it reads without leaving -wal or -shm files behind', () => {
    const open = dir.join('open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    copyFileSync(source, `${open}/ro.db`);
    lockDown(`${open}/ro.db`, false);
    expect(okAs(['orgs', 'list'], `${open}/ro.db`)).to.have.length(2);
    expect(readdirSync(open)).to.deep.equal(['ro.db']);
  });

  it('when a writer has the database open, it reads what the writer committed to the WAL', async () => {
    const shared = dir.join('shared');
    mkdirSync(shared);
    copyFileSync(source, `${shared}/ro.db`);
    const writer = await openDatabase(`sqlite:${shared}/ro.db`);
    try {
      await new DbKeyManager(writer).createOrganization('ro-in-wal');
      expect(existsSync(`${shared}/ro.db-wal`)).to.equal(true);
      lockDown(`${shared}/ro.db`, false);
      lockDown(shared, true);
      expect(okAs(['orgs', 'list'], `${shared}/ro.db`).map((org: { name: string }) => org.name)).to.include('ro-in-wal');
    } finally {
      await writer.close();
      chmodSync(shared, 0o755);
    }
  });
});

// ---- passwords in database URLs ------------------------------------------------------------------

/** Every secret below contains this; no output may. */
const MARK = 'ekr3t';
const SECRET_URLS: [string, string][] = [
  ['a password in the user part', 'postgres://alice:Sekr3t@127.0.0.1:1/db'],
  ['the postgresql:// scheme', 'postgresql://alice:Sekr3t@127.0.0.1:1/db'],
  ['an upper-case scheme', 'POSTGRES://alice:Sekr3t@127.0.0.1:1/db'],
  ['a mixed-case postgresql scheme', 'PostgreSQL://alice:Sekr3t@127.0.0.1:1/db'],
  ['?password=', 'postgres://alice@127.0.0.1:1/db?password=Sekr3t'],
  ['&sslpassword=', 'postgres://alice@127.0.0.1:1/db?sslmode=disable&sslpassword=Sekr3t'],
  ['an upper-case PASSWORD= parameter', 'postgres://alice@127.0.0.1:1/db?connect_timeout=3&PASSWORD=Sekr3t'],
  ['a password holding @', 'postgres://alice:Sekr3t@Sekr3t@127.0.0.1:1/db'],
  ['a password holding :', 'postgres://alice:Sekr3t:Sekr3t@127.0.0.1:1/db'],
  ['a password holding /', 'postgres://alice:Sekr3t/Sekr3t@127.0.0.1:1/db'],
  ['a numeric password holding / (parses with the password as host and port)', 'postgres://alice:1234/Sekr3t@127.0.0.1:1/db'],
  ['a password holding #', 'postgres://alice:Sekr3t#Sekr3t@127.0.0.1:1/db'],
  ['a password holding ?', 'postgres://alice:Sekr3t?Sekr3t@127.0.0.1:1/db'],
  ['a password of percent-escapes', 'postgres://alice:Sekr3t%40%3A%2F@127.0.0.1:1/db'],
  ['a password whose escapes decode to the secret', 'postgres://alice:S%65kr3t@127.0.0.1:1/db'],
  ['a malformed percent-escape', 'postgres://alice:Sekr3t%zz@127.0.0.1:1/db'],
  ['a password holding a space', 'postgres://alice:Sekr3t Sekr3t@127.0.0.1:1/db'],
  ['a URL that fails to parse', 'postgres://alice:Sekr3t@[::1:1/db'],
  ['an unsupported scheme', 'mysql://alice:Sekr3t@127.0.0.1:1/db'],
  ['a scheme without //', 'postgres:alice:Sekr3t@127.0.0.1:1/db'],
  ['a key=value connection string', 'host=127.0.0.1 port=1 password=Sekr3t'],
];

const hasMark = (text: string) => text.toLowerCase().includes(MARK) || text.toLowerCase().includes('s%65kr3t');

function spawnCli(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1', CLOACINA_DATABASE_URL: '', CLOACINA_AUDIT_LOG: 'off' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr, json: () => JSON.parse(stdout) }));
  });
}

describe('passwords in database URLs', () => {
  describe('redactUrl', () => {
    for (const [what, url] of SECRET_URLS) {
      it(`when the URL has ${what}, it masks the password`, () => {
        expect(hasMark(url), 'the fixture carries the secret').to.equal(true);
        const redacted = redactUrl(url);
        expect(hasMark(redacted), redacted).to.equal(false);
        expect(redacted).to.include('***');
      });
    }

    it('when the URL has no password, it leaves it unchanged', () => {
      expect(redactUrl('postgres://alice@db.example:5432/cloacina?sslmode=require')).to.equal('postgres://alice@db.example:5432/cloacina?sslmode=require');
    });
  });

  describe('parseDatabaseUrl', () => {
    for (const [what, url] of SECRET_URLS) {
      it(`when the URL has ${what}, neither its display nor its refusal shows the password`, () => {
        let shown: string;
        try {
          shown = parseDatabaseUrl(url).display;
        } catch (error) {
          shown = (error as Error).message;
        }
        expect(hasMark(shown), shown).to.equal(false);
      });
    }
  });

  describe('the CLI on an unreachable or unusable database', () => {
    const results = new Map<string, { json: CliResult; text: CliResult }>();
    before(async () => {
      await Promise.all(
        SECRET_URLS.map(async ([, url]) => {
          const [json, text] = await Promise.all([spawnCli(['orgs', 'list', '--database', url, '--json']), spawnCli(['orgs', 'list', '--database', url])]);
          results.set(url, { json, text });
        }),
      );
    });

    for (const [what, url] of SECRET_URLS) {
      it(`when the URL has ${what}, it exits 2 and no output (--json or not) shows the password`, () => {
        const { json, text } = results.get(url)!;
        expect(json.status, json.stderr).to.equal(2);
        expect(text.status, text.stderr).to.equal(2);
        expect(json.json().error.code).to.be.oneOf(['DATABASE_ERROR', 'DATABASE_UNAVAILABLE', 'INVALID_INPUT']);
        for (const output of [json.stdout, json.stderr, text.stdout, text.stderr]) expect(hasMark(output), output).to.equal(false);
      });
    }
  });
});

describeEngines('passwords in the URL of a reachable database', (t) => {
  /** t.url with a password added in one of its forms (the test server trusts, so any password is accepted). */
  const withPassword = (form: 'user part' | 'with @' | 'query'): string => {
    if (form === 'query') return `${t.url}?password=Sekr3t`;
    const url = new URL(t.url);
    url.password = 'Sekr3t';
    // A raw `@` inside the password: the last `@` of the authority ends the user part.
    return form === 'with @' ? url.toString().replace(':Sekr3t@', ':Sekr3t@Sekr3t@') : url.toString();
  };

  // SQLite URLs carry no password: these run on PostgreSQL only.
  for (const form of t.engine === 'postgres' ? (['user part', 'with @', 'query'] as const) : []) {
    it(`when migrating with a password in the ${form}, neither the JSON nor the human output shows it`, () => {
      const url = withPassword(form);
      expect(url).to.include('Sekr3t');
      const json = runCli(['db', 'migrate', '--database', url, '--json'], { CLOACINA_DATABASE_URL: '' });
      const text = runCli(['db', 'migrate', '--database', url], { CLOACINA_DATABASE_URL: '' });
      expect(json.status, json.stderr).to.equal(0);
      expect(text.status, text.stderr).to.equal(0);
      expect(json.json().database).to.include('***');
      for (const output of [json.stdout, json.stderr, text.stdout, text.stderr]) expect(hasMark(output), output).to.equal(false);
    });
  }
});
