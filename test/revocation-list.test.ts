// Revoked packages for runners with pinned keys and no database: a signed, versioned, expiring revocation
// list, issued from the database and verified with the pinned keys; a tampered, expired or replayed list is refused.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { type CloacinaSignError, createPackageLoader, DbKeyManager, openDatabase, publicKeyToPem, publicKeyTrust } from '../src';
import type { Database } from '../src/db/database';
import { DbPackageSigner } from '../src/signing/db-signer';
import { DetachedSignature } from '../src/formats/v1';
import { issueRevocationList, revokePackage } from '../src/trust/package-revocations';
import { buildPackage } from './fixtures';
import { rejectsWith, runCli, tempDir, throwsWith } from './helpers';
import { metric } from './service/harness';

describe('the revocation list of pinned-key runners', () => {
  const dir = tempDir();
  const kek = randomBytes(32);
  const url = `sqlite:${dir.join('issuer.db')}`;
  const publicKeyPath = dir.join('org.pub.pem');
  let db: Database;
  let keys: DbKeyManager;
  let org: { id: string; name: string };
  let key: { id: string; publicKey: Buffer };
  let bad: { path: string; marker: string; sha256: string };
  let good: { path: string; marker: string };
  const cli = (args: string[]) =>
    runCli([...args, '--json'], { CLOACINA_KEY_ENCRYPTION_KEY: kek.toString('base64'), CLOACINA_AUDIT_LOG: 'off', CLOACINA_DATABASE_URL: '' });
  const issue = async (path: string, validSeconds = 3600) => {
    writeFileSync(path, (await issueRevocationList(keys, org.id, key.id, kek, validSeconds)).document);
    return path;
  };
  const markerPackage = async (name: string) => {
    const marker = dir.join(`${name}.marker`);
    const path = buildPackage(dir.join(`lib${name}.so`), { markerPath: marker, identity: name });
    const signed = await new DbPackageSigner(keys).signPackageWithDbKey(path, key.id, kek);
    await DetachedSignature.fromSignatureInfo(signed).writeToFile(`${path}.sig`);
    return { path, marker, sha256: signed.packageHash };
  };

  before(async () => {
    db = await openDatabase(url, { migrate: true });
    keys = new DbKeyManager(db);
    org = await keys.createOrganization('acme');
    key = await keys.createSigningKey(org.id, 'release', kek);
    writeFileSync(publicKeyPath, publicKeyToPem(key.publicKey));
    bad = await markerPackage('listed');
    good = await markerPackage('unlisted');
    await revokePackage(keys, org.id, { sha256: bad.sha256 }, 'compromised build');
  });

  after(async () => {
    await db.close();
    dir.cleanup();
  });

  it('when the CLI writes the list, verify, run and inspect with --revocation-list refuse the revoked package and accept another', async () => {
    const list = dir.join('cli.list');
    const written = cli(['packages', 'revocation-list', '--org', 'acme', '--key-id', key.id, '--output', list, '--database', url]);
    expect(written.status, written.stderr).to.equal(0);
    expect(written.json()).to.include({ organization: 'acme', revoked: 1 });
    const pinned = ['--trust-key', publicKeyPath, '--revocation-list', list, '--revocation-state', dir.join('cli.state')];
    const verify = cli(['package', 'verify', bad.path, ...pinned]);
    expect(verify.status).to.equal(1);
    expect(verify.json().results[0].error.code).to.equal('PACKAGE_REVOKED');
    for (const args of [
      ['package', 'run', bad.path, '--task', 'whoami', ...pinned],
      ['package', 'inspect', bad.path, ...pinned],
    ]) {
      const result = cli(args);
      expect(result.status, result.stdout).to.equal(1);
      expect(result.json().error.code).to.equal('PACKAGE_REVOKED');
    }
    expect(existsSync(bad.marker)).to.equal(false);
    expect(cli(['package', 'verify', good.path, ...pinned]).status).to.equal(0);
    expect(JSON.parse(readFileSync(dir.join('cli.state'), 'utf8'))).to.deep.equal({ version: 1, sequences: { acme: written.json().sequence } });
  });

  it('when several packages are verified in one call with the list, the revoked one is refused and the others verify', async () => {
    const list = await issue(dir.join('many.list'));
    const loader = createPackageLoader({ trust: publicKeyTrust([publicKeyPath], { revocationList: list }), audit: [] });
    const outcomes = await loader.verifyMany([good.path, bad.path, good.path]);
    expect(outcomes.map((outcome) => outcome.verified !== undefined)).to.deep.equal([true, false, true]);
    expect((outcomes[1].error as CloacinaSignError).code).to.equal('PACKAGE_REVOKED');
  });

  it('when the library is given the list, it refuses to load the revoked package (no constructor runs) and loads another', async () => {
    const list = await issue(dir.join('library.list'));
    const registry = new Registry();
    const loader = createPackageLoader({ trust: publicKeyTrust([publicKeyPath], { revocationList: list }), audit: [], metrics: registry });
    const error = await rejectsWith(loader.load(bad.path), 'PACKAGE_REVOKED');
    expect(error.message).to.include('compromised build');
    expect(existsSync(bad.marker)).to.equal(false);
    // Counted with its reason, like every refusal.
    const text = await registry.metrics();
    expect(metric(text, 'cloacina_sign_loads_total', { operation: 'load', outcome: 'failure', reason: 'PACKAGE_REVOKED' })).to.equal(1);
    const loaded = await loader.load(good.path);
    await loaded.close();
    expect(existsSync(good.marker)).to.equal(true);
  });

  it('when the list was changed after signing, it is refused with INVALID_SIGNATURE', async () => {
    const list = await issue(dir.join('tampered.list'));
    writeFileSync(list, readFileSync(list, 'utf8').replace('compromised build', 'compromised builx'));
    throwsWith(() => publicKeyTrust([publicKeyPath], { revocationList: list }), 'INVALID_SIGNATURE');
    // An entry removed is the same forgery.
    const emptied = await issue(dir.join('emptied.list'));
    const document = JSON.parse(readFileSync(emptied, 'utf8'));
    document.list.revoked = [];
    writeFileSync(emptied, JSON.stringify(document));
    throwsWith(() => publicKeyTrust([publicKeyPath], { revocationList: emptied }), 'INVALID_SIGNATURE');
    writeFileSync(emptied, '{"kind":"revocation-list"');
    throwsWith(() => publicKeyTrust([publicKeyPath], { revocationList: emptied }), 'MALFORMED_SIGNATURE');
  });

  it('when the list is signed by a key that is not pinned, it is refused with UNTRUSTED_SIGNER', async () => {
    const other = await keys.createSigningKey(org.id, 'other', kek);
    const list = dir.join('other.list');
    writeFileSync(list, (await issueRevocationList(keys, org.id, other.id, kek, 3600)).document);
    throwsWith(() => publicKeyTrust([publicKeyPath], { revocationList: list }), 'UNTRUSTED_SIGNER');
  });

  it('when the list has expired, it is refused with REVOCATION_LIST_EXPIRED, at start-up and at the next load', async () => {
    const list = await issue(dir.join('short.list'), 2);
    const loader = createPackageLoader({ trust: publicKeyTrust([publicKeyPath], { revocationList: list }), audit: [] });
    await rejectsWith(loader.verify(bad.path), 'PACKAGE_REVOKED');
    await new Promise((resolve) => setTimeout(resolve, 2100));
    await rejectsWith(loader.verify(good.path), 'REVOCATION_LIST_EXPIRED');
    throwsWith(() => publicKeyTrust([publicKeyPath], { revocationList: list }), 'REVOCATION_LIST_EXPIRED');
  });

  it('when an older list replaces a newer one, it is refused with ROLLBACK_REFUSED, in the process and across restarts', async () => {
    const older = await issue(dir.join('older.list'));
    const newer = await issue(dir.join('newer.list'));
    const state = dir.join('runner.state');
    const live = dir.join('live.list');
    copyFileSync(newer, live);
    const loader = createPackageLoader({ trust: publicKeyTrust([publicKeyPath], { revocationList: live, revocationState: state }), audit: [] });
    await loader.verify(good.path);
    copyFileSync(older, live);
    await rejectsWith(loader.verify(good.path), 'ROLLBACK_REFUSED');
    // A restarted runner reads the newest sequence from its state file.
    throwsWith(() => publicKeyTrust([publicKeyPath], { revocationList: older, revocationState: state }), 'ROLLBACK_REFUSED');
    const cliReplay = cli(['package', 'verify', good.path, '--trust-key', publicKeyPath, '--revocation-list', older, '--revocation-state', state]);
    expect(cliReplay.status).to.equal(1);
    expect(cliReplay.json().error.code).to.equal('ROLLBACK_REFUSED');
  });
});
