// The database side of the command line as a person reads it: package names on upload (honoured or
// refused, never dropped), one report for `package sign --key-id --store` with or without the service,
// organizations named as typed, what `packages reset-version` did, `keys generate`'s fingerprint, and
// audit rows always written while stderr carries no JSON unless asked.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { auditEvent } from '../../src/audit/audit-trail';
import { auditToDatabase, type DatabaseAuditSink } from '../../src/audit/database-sink';
import { nowIso } from '../../src/db/ids';
import { hashFile } from '../../src/hashing';
import { storeSignature } from '../../src/db/packages';
import { TokenManager } from '../../src/db/tokens';
import { DetachedSignature } from '../../src/formats/v1';
import { writePackage } from '../fixtures/random-package';
import { rejectsWith, runCli, tempDir } from '../helpers';
import { type ServiceProcess, startService } from '../service/harness';
import { describeEngines } from './engines';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const jsonLines = (text: string) => text.split('\n').filter((line) => line.startsWith('{'));

describeEngines('the command line with a database, read by a person', (t) => {
  const dir = tempDir();
  const kek = randomBytes(32).toString('base64');
  let org: { id: string; name: string };
  let key: { id: string; fingerprint: string };
  let service: ServiceProcess;
  let token: string;

  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    runCli([...args, '--database', t.url], { CLOACINA_KEY_ENCRYPTION_KEY: kek, CLOACINA_AUDIT_LOG: '', CLOACINA_DATABASE_URL: '', ...env });
  const api = (args: string[]) =>
    runCli([...args, '--api-url', service.url], {
      CLOACINA_API_TOKEN: token,
      CLOACINA_AUDIT_LOG: '',
      CLOACINA_DATABASE_URL: '',
      CLOACINA_KEY_ENCRYPTION_KEY: '',
    });
  const ok = (args: string[]) => {
    const result = cli([...args, '--json']);
    expect(result.status, result.stderr).to.equal(0);
    return result.json();
  };
  const signed = (name: string) => {
    const pkg = writePackage(dir.join(name));
    ok(['package', 'sign', pkg, '--key-id', key.id]);
    return pkg;
  };
  /** The package's row (its name), undefined when nothing was stored. */
  const storedName = async (pkg: string) => {
    const hash = await hashFile(pkg);
    return t.db.run((knex) => knex('packages').where({ package_hash: hash }).first('package_name'));
  };

  before(async () => {
    org = ok(['orgs', 'create', t.unique('polish')]);
    key = ok(['keys', 'generate', '--name', 'release', '--org', org.name]);
    ok(['keys', 'export', key.id, '--format', 'pem', '--output', dir.join('release.pub.pem')]);
    ok(['keys', 'trust', '--import', dir.join('release.pub.pem'), '--name', 'release', '--org', org.name]);
    token = (await new TokenManager(t.keys).create({ orgId: org.id, scopes: [`sign:${key.id}`, 'upload'] })).token;
    service = await startService({ database: t.url, kek });
  });
  after(async () => {
    await service?.stop();
    dir.cleanup();
  });

  describe('keys generate --org', () => {
    it('when a key is generated, it prints its id on stdout and its id and fingerprint on stderr', () => {
      const generated = cli(['keys', 'generate', '--name', 'printed', '--org', org.name]);
      expect(generated.status, generated.stderr).to.equal(0);
      const id = generated.stdout.trim();
      expect(id).to.match(UUID);
      expect(generated.stderr).to.match(new RegExp(`id ${id}, fingerprint [0-9a-f]{64}`));
    });
  });

  describe('organizations as typed', () => {
    it('when a key name is taken, the error names the organization as typed, not only by its id', () => {
      const again = cli(['keys', 'generate', '--name', 'release', '--org', org.name, '--json']);
      expect(again.status).to.equal(2);
      expect(again.json().error.code).to.equal('ALREADY_EXISTS');
      expect(again.json().error.message).to.include(`organization ${JSON.stringify(org.name)}`);
    });

    it('when reset-version finds no mark, NOT_FOUND names the organization as typed', () => {
      const missing = cli(['packages', 'reset-version', '--org', org.name, '--name', 'never-loaded', '--json']);
      expect(missing.status).to.equal(2);
      expect(missing.json().error.code).to.equal('NOT_FOUND');
      expect(missing.json().error.message).to.include(`organization ${JSON.stringify(org.name)}`);
    });
  });

  describe('packages reset-version', () => {
    const mark = (name: string, version: string) =>
      t.db.run((knex) => knex('package_versions').insert({ org_id: org.id, package_name: name, highest_version: version, updated_at: nowIso() }));

    it('when --to lowers a mark, it says from which version to which, and what may load now', async () => {
      await mark('payroll', '1.2.0');
      const reset = cli(['packages', 'reset-version', '--org', org.name, '--name', 'payroll', '--to', '1.1.0']);
      expect(reset.status, reset.stderr).to.equal(0);
      expect(reset.stderr).to.include(`Lowered the rollback mark of "payroll" in "${org.name}" from 1.2.0 to 1.1.0: versions from 1.1.0 up may load again`);
      expect(reset.stdout.trim()).to.equal('payroll 1.2.0 -> 1.1.0');
    });

    it('when there is no --to, it says the mark was removed and what it was', async () => {
      await mark('billing', '2.0.0');
      const reset = cli(['packages', 'reset-version', '--org', org.name, '--name', 'billing']);
      expect(reset.status, reset.stderr).to.equal(0);
      expect(reset.stderr).to.include(`Removed the rollback mark of "billing" in "${org.name}" (it was 2.0.0): any version may load again`);
      expect(reset.stdout.trim()).to.equal('billing 2.0.0 -> none');
    });
  });

  describe('package upload --name', () => {
    it('when the package is stored under another name, a direct upload with --name exits 2 saying so, and the name stays', async () => {
      const pkg = signed('libnamed.so');
      expect(ok(['package', 'upload', pkg, '--org', org.name, '--name', 'alpha']).name).to.equal('alpha');
      const other = cli(['package', 'upload', pkg, '--org', org.name, '--name', 'beta', '--json']);
      expect(other.status).to.equal(2);
      expect(other.json().error.code).to.equal('ALREADY_EXISTS');
      expect(other.json().error.message).to.include('"alpha"').and.to.include('"beta"').and.to.include('--rename');
      expect((await storedName(pkg)).package_name).to.equal('alpha');
    });

    it('when --rename is given, the direct upload stores the new name', async () => {
      const pkg = signed('librenamed.so');
      ok(['package', 'upload', pkg, '--org', org.name, '--name', 'alpha']);
      const renamed = ok(['package', 'upload', pkg, '--org', org.name, '--name', 'beta', '--rename']);
      expect(renamed.name).to.equal('beta');
      expect((await storedName(pkg)).package_name).to.equal('beta');
    });

    it('when no --name is given, the file name yields to the stored name (exit 0, the stored name printed)', async () => {
      const pkg = signed('libdefault.so');
      ok(['package', 'upload', pkg, '--org', org.name, '--name', 'gamma']);
      const again = cli(['package', 'upload', pkg, '--org', org.name]);
      expect(again.status, again.stderr).to.equal(0);
      expect(again.stderr).to.include('as "gamma"');
    });

    it('when uploaded through the service with another --name, it exits 2 with ALREADY_EXISTS; with --rename the name changes', async () => {
      const pkg = signed('libapi.so');
      const first = api(['package', 'upload', pkg, '--org', org.name, '--name', 'delta', '--json']);
      expect(first.status, first.stderr).to.equal(0);
      expect(first.json().name).to.equal('delta');
      const other = api(['package', 'upload', pkg, '--org', org.name, '--name', 'epsilon', '--json']);
      expect(other.status).to.equal(2);
      expect(other.json().error.code).to.equal('ALREADY_EXISTS');
      expect(other.json().error.message).to.include('"delta"').and.to.include('--rename');
      expect((await storedName(pkg)).package_name).to.equal('delta');
      const renamed = api(['package', 'upload', pkg, '--org', org.name, '--name', 'epsilon', '--rename', '--json']);
      expect(renamed.status, renamed.stderr).to.equal(0);
      expect(renamed.json().name).to.equal('epsilon');
      expect((await storedName(pkg)).package_name).to.equal('epsilon');
    });

    it('when the library stores a package under another name, it refuses by default, renames or keeps as asked', async () => {
      const pkg = signed('liblibrary.so');
      const document = await DetachedSignature.readFromFile(`${pkg}.sig`);
      const rows = auditToDatabase(t.db) as DatabaseAuditSink;
      const store = (name: string, nameConflict?: 'refuse' | 'rename' | 'keep') =>
        storeSignature(t.db, document, {
          name,
          nameConflict,
          audit: { rows, event: auditEvent({ eventType: 'package.uploaded', packageHash: document.packageHash }) },
        });
      expect((await store('one')).name).to.equal('one');
      const error = await rejectsWith(store('two'), 'ALREADY_EXISTS');
      expect(error.message).to.include('"one"').and.to.include('"two"');
      expect((await store('two', 'keep')).name).to.equal('one');
      expect((await store('two', 'rename')).name).to.equal('two');
      expect((await storedName(pkg)).package_name).to.equal('two');
    });

    it('when the --signature file does not exist, upload exits 2 with UNREADABLE_FILE and stores nothing', async () => {
      const pkg = writePackage(dir.join('libunsigned.so'));
      const refused = cli(['package', 'upload', pkg, '--org', org.name, '--signature', dir.join('typo.sig'), '--json']);
      expect(refused.status).to.equal(2);
      expect(refused.json().error.code).to.equal('UNREADABLE_FILE');
      expect(await storedName(pkg)).to.equal(undefined);
    });
  });

  describe('version-2 documents in the database', () => {
    const v2 = ['--format', 'v2', '--name', 'payroll', '--version', '1.4.0'];
    const rowsOf = async (table: string, pkg: string) => {
      const hash = await hashFile(pkg);
      return t.db.run((knex) => knex(table).where({ package_hash: hash }));
    };

    it('when package sign --key-id --format v2 --store, it writes the .sig and keeps the statement in package_statements only', async () => {
      const pkg = writePackage(dir.join('libv2store.so'));
      const signedV2 = ok(['package', 'sign', pkg, '--key-id', key.id, ...v2, '--store']);
      expect(signedV2.id).to.match(UUID);
      expect(signedV2).to.include({ stored: true, format: 'v2' });
      const statements = await rowsOf('package_statements', pkg);
      expect(statements).to.have.length(1);
      expect(statements[0]).to.include({ id: signedV2.id, name: 'payroll', version: '1.4.0', digest_algorithm: 'blake3', signing_key_id: key.id });
      expect(`${statements[0].document}\n`).to.equal(readFileSync(`${pkg}.sig`, 'utf8'));
      expect(await rowsOf('package_signatures', pkg)).to.have.length(0);
      expect(await rowsOf('packages', pkg)).to.have.length(1);
    });

    it('when package sign --key <file> --format v2 --store, the statement is stored with its package.signed audit row', async () => {
      const keyFile = dir.join('v2.pem');
      const generated = cli(['keys', 'generate', '--name', 'v2', '--output', keyFile]);
      expect(generated.status, generated.stderr).to.equal(0);
      const pkg = writePackage(dir.join('libv2file.so'));
      const signedV2 = ok(['package', 'sign', pkg, '--key', keyFile, ...v2, '--digest', 'sha256', '--store']);
      const statements = await rowsOf('package_statements', pkg);
      expect(statements.map((row: { id: string }) => row.id)).to.deep.equal([signedV2.id]);
      expect(statements[0]).to.include({ digest_algorithm: 'sha256', digest: await hashFile(pkg), signing_key_id: null });
      const events = await t.db.run((knex) => knex('audit_events').where({ event_type: 'package.signed', package_path: pkg }));
      expect(events).to.have.length(1);
    });

    it('when a version-2 document is uploaded straight into the database, it is verified and kept in package_statements', async () => {
      const pkg = writePackage(dir.join('libv2upload.so'));
      ok(['package', 'sign', pkg, '--key-id', key.id, ...v2]);
      const uploaded = ok(['package', 'upload', pkg, '--org', org.name, '--name', 'payroll']);
      expect(uploaded).to.include({ name: 'payroll', keyFingerprint: key.fingerprint, packageHash: await hashFile(pkg) });
      expect(await rowsOf('package_statements', pkg)).to.have.length(1);
      expect(await rowsOf('package_signatures', pkg)).to.have.length(0);
      const tampered = dir.join('libv2tampered.so');
      writeFileSync(tampered, Buffer.concat([readFileSync(pkg), Buffer.from('x')]));
      const refused = cli(['package', 'upload', tampered, '--org', org.name, '--signature', `${pkg}.sig`, '--json']);
      expect(refused.status).to.equal(1);
      expect(refused.json().error.code).to.equal('TAMPERED_PACKAGE');
      expect(await rowsOf('packages', tampered)).to.have.length(0);
    });

    it('when a version-2 document is uploaded through the service, it exits 2 (USAGE) saying to upload it without --api-url', () => {
      const pkg = writePackage(dir.join('libv2api.so'));
      ok(['package', 'sign', pkg, '--key-id', key.id, ...v2]);
      const refused = api(['package', 'upload', pkg, '--org', org.name, '--json']);
      expect(refused.status).to.equal(2);
      expect(refused.json().error.code).to.equal('USAGE');
      expect(refused.json().error.message).to.include('without --api-url');
    });

    it('when the migrations ran, package_signatures has exactly the columns Cloacina reads', async () => {
      const columns = await t.db.run((knex) => knex('package_signatures').columnInfo());
      expect(Object.keys(columns).sort()).to.deep.equal([
        'created_at',
        'id',
        'key_fingerprint',
        'package_hash',
        'package_id',
        'signature',
        'signed_at',
        'signing_key_id',
      ]);
    });
  });

  describe('package sign --key-id --store', () => {
    it('when signed with and without --api-url, it prints the same line, the same stdout and the same JSON fields', () => {
      const here = writePackage(dir.join('libhere.so'));
      const there = writePackage(dir.join('libthere.so'));
      const local = cli(['package', 'sign', here, '--key-id', key.id, '--store']);
      const remote = api(['package', 'sign', there, '--key-id', key.id, '--store']);
      expect(local.status, local.stderr).to.equal(0);
      expect(remote.status, remote.stderr).to.equal(0);
      const localId = local.stdout.trim();
      const remoteId = remote.stdout.trim();
      expect(localId).to.match(UUID);
      expect(remoteId).to.match(UUID);
      expect(remote.stderr.replace(there, '<pkg>')).to.equal(local.stderr.replace(here, '<pkg>'));
      const localJson = cli(['package', 'sign', here, '--key-id', key.id, '--store', '--json']).json();
      const remoteJson = api(['package', 'sign', there, '--key-id', key.id, '--store', '--json']).json();
      expect(Object.keys(remoteJson).sort()).to.deep.equal(Object.keys(localJson).sort());
      expect(remoteJson).to.include({ stored: true, keyId: key.id, signaturePath: null, keyFingerprint: key.fingerprint });
      expect(localJson).to.include({ stored: true, keyId: key.id, signaturePath: null, keyFingerprint: key.fingerprint });
      expect(remoteJson.id).to.match(UUID);
    });
  });

  describe('audit lines and rows', () => {
    it('when CLOACINA_AUDIT_LOG is unset, sign and verify print no JSON on stderr, and the database still gets their rows', async () => {
      const pkg = writePackage(dir.join('libaudited.so'));
      const sign = cli(['package', 'sign', pkg, '--key-id', key.id]);
      expect(sign.status, sign.stderr).to.equal(0);
      const verify = cli(['package', 'verify', pkg, '--org', org.name]);
      expect(verify.status, verify.stderr).to.equal(0);
      expect(jsonLines(sign.stderr)).to.deep.equal([]);
      expect(jsonLines(verify.stderr)).to.deep.equal([]);
      expect(verify.stderr).to.match(/^verified /m);
      const hash = await hashFile(pkg);
      const events = await t.db.run((knex) => knex('audit_events').where({ package_hash: hash }).select('event_type'));
      expect(events.map((row: { event_type: string }) => row.event_type)).to.include.members(['package.signed', 'verification.success']);
    });

    it('when CLOACINA_AUDIT_LOG=stderr, verify with a database prints the JSON line as well as writing the row', () => {
      const pkg = signed('libstderr.so');
      const verify = cli(['package', 'verify', pkg, '--org', org.name], { CLOACINA_AUDIT_LOG: 'stderr' });
      expect(verify.status, verify.stderr).to.equal(0);
      const lines = jsonLines(verify.stderr).map((line) => JSON.parse(line));
      expect(lines.map((line) => line.event_type)).to.deep.equal(['verification.success']);
    });
  });
});
