import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { runCli, tempDir } from '../helpers';
import { writePackage } from '../fixtures/random-package';
import { describeEngines } from './engines';

describeEngines('the cloacina-sign CLI with a database', (t) => {
  const dir = tempDir();
  const kek = randomBytes(32).toString('base64');
  const auditLog = dir.join('audit.jsonl');
  after(() => dir.cleanup());
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    runCli([...args, '--database', t.url], { CLOACINA_KEY_ENCRYPTION_KEY: kek, CLOACINA_AUDIT_LOG: auditLog, CLOACINA_DATABASE_URL: '', ...env });
  const ok = (args: string[], env?: NodeJS.ProcessEnv) => {
    const result = cli([...args, '--json'], env);
    expect(result.status, result.stderr).to.equal(0);
    return result.json();
  };

  it('when migrating, creating orgs, keys and signatures, it signs, stores and verifies, with exit 1 for an untrusted org', () => {
    expect(ok(['db', 'migrate']).applied).to.deep.equal([]);
    const org = ok(['orgs', 'create', t.unique('cli')]);
    expect(org.id).to.match(/^[0-9a-f-]{36}$/);
    expect(ok(['orgs', 'list']).map((o: { id: string }) => o.id)).to.include(org.id);
    const key = ok(['keys', 'generate', '--name', 'release', '--org', org.name]);
    expect(key.id).to.match(/^[0-9a-f-]{36}$/);
    expect(key.fingerprint).to.match(/^[0-9a-f]{64}$/);
    const pkg = writePackage(dir.join('cli.so'));
    const signed = ok(['package', 'sign', pkg, '--key-id', key.id, '--store']);
    expect(signed.id).to.match(/^[0-9a-f-]{36}$/);
    expect(signed.signaturePath).to.equal(null);
    expect(existsSync(`${pkg}.sig`)).to.equal(false);
    // A signing key alone is trusted by nobody, not even its own organization.
    expect(cli(['package', 'verify', pkg, '--org', org.id]).status).to.equal(1);
    writeFileSync(dir.join('release.pub.pem'), cli(['keys', 'export', key.id, '--format', 'pem']).stdout);
    ok(['keys', 'trust', '--import', dir.join('release.pub.pem'), '--name', 'release', '--org', org.name]);
    const verified = ok(['package', 'verify', pkg, '--org', org.id]);
    expect(verified).to.deep.equal({
      verified: true,
      results: [
        {
          package: pkg,
          verified: true,
          packageHash: signed.packageHash,
          keyFingerprint: key.fingerprint,
          signedAt: signed.signedAt,
          documentVersion: 1,
          signatureFormat: 'v1',
          digestAlgorithm: 'sha256',
          statement: null,
        },
      ],
    });

    const other = ok(['orgs', 'create', t.unique('other')]);
    const refused = cli(['package', 'verify', pkg, '--org', other.id, '--json']);
    expect(refused.status).to.equal(1);
    expect(refused.json()).to.include({ verified: false });
    expect(refused.json().results[0].error.code).to.equal('UNTRUSTED_SIGNER');
    expect(ok(['orgs', 'grant-trust', '--from', other.name, '--to', org.name]).id).to.match(/^[0-9a-f-]{36}$/);
    ok(['package', 'verify', pkg, '--org', other.id]);
    ok(['orgs', 'revoke-trust', '--from', other.name, '--to', org.name]);
    expect(cli(['package', 'verify', pkg, '--org', other.id]).status).to.equal(1);

    const tampered = dir.join('tampered.so');
    writeFileSync(tampered, readFileSync(pkg));
    appendFileSync(tampered, 'x');
    const written = ok(['package', 'sign', pkg, '--key-id', key.id, '--output', dir.join('cli.so.sig')]);
    expect(written.signaturePath).to.equal(dir.join('cli.so.sig'));
    const bad = cli(['package', 'verify', tampered, '--org', org.id, '--signature', dir.join('cli.so.sig'), '--json']);
    expect(bad.status).to.equal(1);
    expect(bad.json().results[0].error.code).to.equal('TAMPERED_PACKAGE');

    const lines = readFileSync(auditLog, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines.map((l) => l.event_type)).to.include.members([
      'key.signing.created',
      'package.signed',
      'verification.success',
      'verification.failure',
      'key.trust_acl.granted',
      'key.trust_acl.revoked',
    ]);
    expect(readFileSync(auditLog, 'utf8')).not.to.include(kek);
    const events = ok(['audit', 'list', '--org', org.name, '--limit', '3']);
    expect(events).to.have.length(3);
    expect(events[0]).to.have.keys([
      'id',
      'event_type',
      'timestamp',
      'org_id',
      'key_id',
      'package_path',
      'package_hash',
      'signer_fingerprint',
      'signature_verified',
      'reason',
      'actor',
    ]);
  });

  it('when exporting, trusting, listing and revoking keys, it reports ids and fingerprints and revocation takes effect', () => {
    const signer = ok(['orgs', 'create', t.unique('signer')]);
    const verifier = ok(['orgs', 'create', t.unique('verifier')]);
    const key = ok(['keys', 'generate', '--name', 'k', '--org', signer.id]);
    const pem = cli(['keys', 'export', key.id, '--format', 'pem']);
    expect(pem.status, pem.stderr).to.equal(0);
    expect(pem.stdout).to.match(/^-----BEGIN PUBLIC KEY-----/);
    expect(ok(['keys', 'export', key.id, '--format', 'raw']).publicKey).to.match(/^[0-9a-f]{64}$/);
    writeFileSync(dir.join('signer.pub.pem'), pem.stdout);
    const trusted = ok(['keys', 'trust', '--import', dir.join('signer.pub.pem'), '--name', 'partner', '--org', verifier.name]);
    expect(trusted.fingerprint).to.equal(key.fingerprint);
    const pkg = writePackage(dir.join('trust.so'));
    ok(['package', 'sign', pkg, '--key-id', key.id]);
    ok(['package', 'verify', pkg, '--org', verifier.id]);
    const list = ok(['keys', 'list', '--org', verifier.id]);
    expect(list).to.deep.equal([
      {
        id: trusted.id,
        kind: 'trusted',
        name: 'partner',
        fingerprint: key.fingerprint,
        algorithm: 'ed25519',
        createdAt: trusted.createdAt,
        status: 'active',
        revokedAt: null,
      },
    ]);
    const table = cli(['keys', 'list', '--org', verifier.id]);
    expect(table.stdout.split('\n')[0]).to.match(/^ID\s+NAME\s+FINGERPRINT\s+CREATED\s+STATUS/);
    expect(ok(['keys', 'revoke', trusted.id]).kind).to.equal('trusted');
    expect(cli(['package', 'verify', pkg, '--org', verifier.id]).status).to.equal(1);
    expect(ok(['keys', 'list', '--org', verifier.id])[0].status).to.equal('revoked');
    expect(ok(['keys', 'revoke', key.id]).kind).to.equal('signing');
    const refused = cli(['package', 'sign', pkg, '--key-id', key.id, '--force', '--json']);
    expect(refused.status).to.equal(2);
    expect(refused.json().error.code).to.equal('KEY_REVOKED');
  });

  it('when the KEK is missing, wrong or rotated, or an id is unknown, it exits 2 with a clear message and writes nothing', () => {
    const org = ok(['orgs', 'create', t.unique('kek')]);
    const missing = cli(['keys', 'generate', '--name', 'x', '--org', org.id, '--json'], { CLOACINA_KEY_ENCRYPTION_KEY: '' });
    expect(missing.status).to.equal(2);
    expect(missing.json().error.code).to.equal('MISSING_KEK');
    const malformed = cli(['keys', 'generate', '--name', 'x', '--org', org.id], { CLOACINA_KEY_ENCRYPTION_KEY: 'c2VjcmV0LXZhbHVl' });
    expect(malformed.status).to.equal(2);
    expect(malformed.stderr).to.include('CLOACINA_KEY_ENCRYPTION_KEY must be 32 bytes').and.not.to.include('c2VjcmV0LXZhbHVl');
    const wrongKek = randomBytes(32).toString('hex');
    const wrong = cli(['keys', 'generate', '--name', 'x', '--org', org.id, '--json'], { CLOACINA_KEY_ENCRYPTION_KEY: wrongKek });
    expect(wrong.status).to.equal(2);
    expect(wrong.json().error.code).to.equal('KEY_UNSEAL_FAILED');
    expect(wrong.stdout + wrong.stderr).not.to.include(wrongKek);
    expect(ok(['keys', 'list', '--org', org.id])).to.deep.equal([]);
    const unknown = cli(['keys', 'export', '00000000-0000-4000-8000-000000000000', '--json']);
    expect(unknown.status).to.equal(2);
    expect(unknown.json().error.code).to.equal('NOT_FOUND');

    const key = ok(['keys', 'generate', '--name', 'x', '--org', org.id]);
    const pkg = writePackage(dir.join('rewrap.so'));
    const newKek = randomBytes(32).toString('hex');
    const rewrapped = ok(['keys', 'rewrap', '--new-kek-env', 'NEW_KEK'], { NEW_KEK: newKek });
    expect(rewrapped.rewrapped).to.be.greaterThan(0);
    expect(cli(['package', 'sign', pkg, '--key-id', key.id]).status).to.equal(2);
    ok(['package', 'sign', pkg, '--key-id', key.id], { CLOACINA_KEY_ENCRYPTION_KEY: newKek });
    ok(['keys', 'rewrap', '--new-kek-env', 'OLD_KEK'], { CLOACINA_KEY_ENCRYPTION_KEY: newKek, OLD_KEK: kek });
  });

  it('when the database is unreachable or missing, it exits 2 without creating anything', () => {
    const path = dir.join('absent.db');
    const absent = runCli(['orgs', 'list', '--database', `sqlite:${path}`, '--json']);
    expect(absent.status).to.equal(2);
    expect(absent.json().error.code).to.equal('DATABASE_ERROR');
    expect(existsSync(path)).to.equal(false);
    const down = runCli(['orgs', 'create', 'x', '--database', 'postgres://user:hunter2@127.0.0.1:1/nothing', '--json']);
    expect(down.status).to.equal(2);
    expect(down.json().error.code).to.equal('DATABASE_UNAVAILABLE');
    expect(down.json().error.message).to.include('not answering').and.not.to.include('hunter2');
    expect(down.stdout.trim().split('\n')).to.have.length(1);
  });
});
