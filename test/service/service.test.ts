// The signing service end to end: `cloacina-sign serve` as a child process on a loopback port, driven by
// the CLI and by HTTP, on SQLite and on PostgreSQL.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { DetachedSignature } from '../../src/formats/v1';
import { generateKeypair, privateKeyToPem, publicKeyToPem } from '../../src/keys/keypair';
import { signPackage } from '../../src/signing/sign';
import { TokenManager } from '../../src/db/tokens';
import { hashFile } from '../../src/hashing';
import { tempDir } from '../helpers';
import { describeEngines } from '../db/engines';
import { cli, http, metric, randomPackage, type ServiceProcess, signRequest, startService, Transcript } from './harness';

describeEngines('the signing service', (t) => {
  const dir = tempDir();
  const transcript = new Transcript();
  const kek = randomBytes(32);
  const kekText = kek.toString('base64');
  const secrets: (string | Buffer)[] = [kek];
  let service: ServiceProcess;
  let orgA: { id: string; name: string };
  let orgB: { id: string; name: string };
  let keyA: { id: string; fingerprint: string; publicKey: Buffer };
  let keyA2: { id: string };
  let keyB: { id: string };
  let tokenA: string;
  let tokenAId: string;
  let tokenB: string;
  let tokenSignOnly: string;
  let vendorKey: ReturnType<typeof generateKeypair>;
  const pubPem = () => dir.join('keyA.pub.pem');

  const newToken = async (orgId: string, scopes: string[], extra: { expiresAt?: string; name?: string } = {}) => {
    const created = await new TokenManager(t.keys).create({ orgId, scopes, ...extra });
    secrets.push(created.token, Buffer.from(created.token));
    return created;
  };
  const auditRows = (where: Record<string, unknown>) => t.db.run((knex) => knex('audit_events').where(where).orderBy(['timestamp', 'id']));
  const apiEnv = (token: string) => ({ CLOACINA_API_TOKEN: token, CLOACINA_DATABASE_URL: `sqlite:${dir.join('no-such.db')}` });

  before(async () => {
    orgA = await t.keys.createOrganization(t.unique('svc-a'));
    orgB = await t.keys.createOrganization(t.unique('svc-b'));
    const a = await t.keys.createSigningKey(orgA.id, 'release', kek);
    keyA = { id: a.id, fingerprint: a.fingerprint, publicKey: a.publicKey };
    keyA2 = await t.keys.createSigningKey(orgA.id, 'other', kek);
    keyB = await t.keys.createSigningKey(orgB.id, 'release', kek);
    await t.keys.trustPublicKey(orgA.id, keyA.publicKey, 'release');
    writeFileSync(pubPem(), publicKeyToPem(keyA.publicKey));
    vendorKey = generateKeypair();
    secrets.push(vendorKey.privateKey, privateKeyToPem(vendorKey.privateKey).split('\n')[1]);
    for (const row of await t.db.run((knex) => knex('signing_keys').select('sealed_private_key'))) secrets.push(Buffer.from(row.sealed_private_key));
    const created = await newToken(orgA.id, [`sign:${keyA.id}`, 'upload'], { name: 'ci' });
    tokenA = created.token;
    tokenAId = created.info.id;
    tokenB = (await newToken(orgB.id, [`sign:${keyB.id}`, 'upload'])).token;
    tokenSignOnly = (await newToken(orgA.id, [`sign:${keyA.id}`])).token;
    service = await startService({ database: t.url, kek: kekText, args: ['--access-log', '--max-upload-bytes', '1MiB', '--rate-limit', '1000'], transcript });
  });

  after(async () => {
    await service?.stop();
    dir.cleanup();
  });

  describe('signing through the API', () => {
    it('when the CLI signs with --api-url, it writes the canonical document, which verifies offline with --trust-key and equals local database signing but for signed_at', async () => {
      const pkg = randomPackage(dir.join('api.so'));
      // No KEK and no database on the CLI's side.
      const signed = cli(transcript, ['package', 'sign', pkg, '--key-id', keyA.id, '--api-url', service.url, '--json'], apiEnv(tokenA));
      expect(signed.status, signed.stderr).to.equal(0);
      expect(signed.json()).to.include({ signaturePath: `${pkg}.sig`, packageHash: await hashFile(pkg), keyFingerprint: keyA.fingerprint, keyId: keyA.id });
      const written = readFileSync(`${pkg}.sig`, 'utf8');
      const document = DetachedSignature.parse(written.trimEnd());
      expect(written).to.equal(`${DetachedSignature.fromSignatureInfo(document).toString()}\n`);
      const verified = cli(transcript, ['package', 'verify', pkg, '--trust-key', pubPem()]);
      expect(verified.status, verified.stderr).to.equal(0);
      // The same key signing locally (KEK and database here) makes the same Ed25519 signature.
      const local = cli(transcript, ['package', 'sign', pkg, '--key-id', keyA.id, '--database', t.url, '--output', dir.join('local.sig'), '--json'], {
        CLOACINA_KEY_ENCRYPTION_KEY: kekText,
      });
      expect(local.status, local.stderr).to.equal(0);
      const localDocument = DetachedSignature.parse(readFileSync(dir.join('local.sig')));
      expect({ ...localDocument.toJSON(), signed_at: '' }).to.deep.equal({ ...document.toJSON(), signed_at: '' });
    });

    it('when asked over HTTP, it answers exactly the bytes writeToFile would write, as application/json', async () => {
      const packageHash = randomBytes(32).toString('hex');
      const answer = await signRequest(transcript, service.url, tokenA, { keyId: keyA.id, packageHash });
      expect(answer.status, answer.text).to.equal(200);
      expect(answer.headers.get('content-type')).to.match(/^application\/json/);
      const document = DetachedSignature.parse(answer.text.trimEnd());
      expect(document.packageHash).to.equal(packageHash);
      expect(answer.text).to.equal(`${DetachedSignature.fromSignatureInfo(document).toString()}\n`);
      const file = dir.join('http.sig');
      await document.writeToFile(file);
      expect(readFileSync(file, 'utf8')).to.equal(answer.text);
    });

    it('when the output exists, the CLI refuses without --force before asking the service, and never writes over the package', async () => {
      const pkg = randomPackage(dir.join('exists.so'));
      writeFileSync(`${pkg}.sig`, 'keep me');
      const before = (await auditRows({ actor: tokenAId })).length;
      const refused = cli(transcript, ['package', 'sign', pkg, '--key-id', keyA.id, '--api-url', service.url], apiEnv(tokenA));
      expect(refused.status).to.equal(2);
      expect(refused.stderr).to.include('OUTPUT_EXISTS');
      expect(readFileSync(`${pkg}.sig`, 'utf8')).to.equal('keep me');
      expect((await auditRows({ actor: tokenAId })).length).to.equal(before);
      const overPackage = cli(transcript, ['package', 'sign', pkg, '--key-id', keyA.id, '--api-url', service.url, '--output', pkg, '--force'], apiEnv(tokenA));
      expect(overPackage.status).to.equal(2);
      const forced = cli(transcript, ['package', 'sign', pkg, '--key-id', keyA.id, '--api-url', service.url, '--force'], apiEnv(tokenA));
      expect(forced.status, forced.stderr).to.equal(0);
      expect(readFileSync(`${pkg}.sig`, 'utf8')).to.match(/^\{"version":1/);
    });

    it('when --store is given, the signature is stored and the organization verifies the package with no .sig file', async () => {
      const pkg = randomPackage(dir.join('stored.so'));
      const signed = cli(transcript, ['package', 'sign', pkg, '--key-id', keyA.id, '--api-url', service.url, '--store', '--json'], apiEnv(tokenA));
      expect(signed.status, signed.stderr).to.equal(0);
      expect(signed.json()).to.include({ signaturePath: null, stored: true });
      expect(existsSync(`${pkg}.sig`)).to.equal(false);
      const rows = await t.db.run((knex) => knex('package_signatures').where({ package_hash: signed.json().packageHash }));
      expect(rows).to.have.length(1);
      expect(rows[0].signing_key_id).to.equal(keyA.id);
      const verified = cli(transcript, ['package', 'verify', pkg, '--org', orgA.name, '--database', t.url]);
      expect(verified.status, verified.stderr).to.equal(0);
    });

    it('when the CLI signs --format v2 through the service, it writes a canonical statement that verifies with the policy it names', async () => {
      const pkg = randomPackage(dir.join('v2.so'));
      const args = ['package', 'sign', pkg, '--key-id', keyA.id, '--api-url', service.url, '--format', 'v2', '--name', 'payroll', '--version', '1.2.3'];
      const signed = cli(transcript, [...args, '--organization', orgA.name, '--expires', '30d', '--json'], apiEnv(tokenA));
      expect(signed.status, signed.stderr).to.equal(0);
      const json = signed.json();
      expect(json).to.include({ format: 'v2', digestAlgorithm: 'blake3', keyFingerprint: keyA.fingerprint, keyId: keyA.id });
      expect(json.statement).to.include({ name: 'payroll', version: '1.2.3', organization: orgA.name, size: readFileSync(pkg).length });
      expect(Date.parse(json.statement.expiresAt) - Date.now()).to.be.within(29 * 86_400_000, 30 * 86_400_000);
      expect(readFileSync(`${pkg}.sig`, 'utf8')).to.match(/^\{"version":2,/);
      const verified = cli(transcript, ['package', 'verify', pkg, '--trust-key', pubPem(), '--expect-name', 'payroll', '--allowed-versions', '^1.2', '--json']);
      expect(verified.status, verified.stderr).to.equal(0);
      const wrongName = cli(transcript, ['package', 'verify', pkg, '--trust-key', pubPem(), '--expect-name', 'billing']);
      expect(wrongName.status).to.equal(1);
      const rows = await auditRows({ actor: tokenAId, package_hash: json.packageHash, event_type: 'package.signed' });
      expect(rows).to.have.length(1);
    });

    it('when a v2 statement is asked with --store or with a bad version, it refuses: USAGE on the CLI, 400 over HTTP', async () => {
      const pkg = randomPackage(dir.join('v2-bad.so'));
      const stored = cli(
        transcript,
        ['package', 'sign', pkg, '--key-id', keyA.id, '--api-url', service.url, '--format', 'v2', '--name', 'p', '--version', '1.0.0', '--store'],
        apiEnv(tokenA),
      );
      expect(stored.status).to.equal(2);
      expect(stored.stderr).to.include('USAGE');
      const packageHash = randomBytes(32).toString('hex');
      const store = await signRequest(transcript, service.url, tokenA, {
        keyId: keyA.id,
        packageHash,
        store: true,
        statement: { name: 'p', version: '1.0.0', size: 1 },
      });
      expect(store.status, store.text).to.equal(400);
      const badVersion = await signRequest(transcript, service.url, tokenA, { keyId: keyA.id, packageHash, statement: { name: 'p', version: 'one', size: 1 } });
      expect(badVersion.status, badVersion.text).to.equal(400);
      expect(badVersion.json().error.code).to.equal('INVALID_INPUT');
      expect(existsSync(`${pkg}.sig`)).to.equal(false);
    });

    it('when 50 clients sign at once, all succeed, each with its own audit row', async () => {
      const hashes = Array.from({ length: 50 }, () => randomBytes(32).toString('hex'));
      const answers = await Promise.all(hashes.map((packageHash) => signRequest(transcript, service.url, tokenA, { keyId: keyA.id, packageHash })));
      expect(answers.map((a) => a.status)).to.deep.equal(hashes.map(() => 200));
      const rows = await t.db.run((knex) => knex('audit_events').whereIn('package_hash', hashes));
      expect(rows).to.have.length(50);
      expect(new Set(rows.map((r: { id: string }) => r.id)).size).to.equal(50);
      expect(new Set(rows.map((r: { package_hash: string }) => r.package_hash))).to.deep.equal(new Set(hashes));
      for (const row of rows)
        expect(row).to.include({ event_type: 'package.signed', actor: tokenAId, key_id: keyA.id, signer_fingerprint: keyA.fingerprint, org_id: orgA.id });
    });

    it('when the body is not what the schema says (or over 64 KiB), it answers 400 or 413 and audits the failure', async () => {
      const bad = await signRequest(transcript, service.url, tokenA, { keyId: keyA.id, packageHash: 'ABC' });
      expect(bad.status).to.equal(400);
      expect(bad.json().error.code).to.equal('INVALID_INPUT');
      const huge = await signRequest(transcript, service.url, tokenA, { keyId: keyA.id, packageHash: 'a'.repeat(64), pad: 'x'.repeat(70 * 1024) });
      expect(huge.status).to.equal(413);
      const notJson = await http(transcript, `${service.url}/v1/sign`, {
        method: 'POST',
        token: tokenA,
        headers: { 'content-type': 'application/json' },
        body: `{"keyId": "${tokenA}"`,
      });
      expect(notJson.status).to.equal(400);
      expect(notJson.text).not.to.include(tokenA);
    });
  });

  describe('tokens', () => {
    it('when the token is missing, unknown, malformed, expired or revoked, it answers 401 with one message and audits api.request.refused', async () => {
      const body = { keyId: keyA.id, packageHash: 'b'.repeat(64) };
      const missing = await signRequest(transcript, service.url, undefined, body);
      expect(missing.status).to.equal(401);
      expect(missing.headers.get('www-authenticate')).to.equal('Bearer');
      expect(missing.json().error.code).to.equal('API_UNAUTHORIZED');
      const expired = await newToken(orgA.id, [`sign:${keyA.id}`], { expiresAt: new Date(Date.now() - 1000).toISOString() });
      const revoked = await newToken(orgA.id, [`sign:${keyA.id}`]);
      expect((await signRequest(transcript, service.url, revoked.token, body)).status).to.equal(200);
      await new TokenManager(t.keys).revoke(revoked.info.id);
      const unknown = `cst_${randomBytes(32).toString('base64url')}`;
      const answers: Record<string, { status: number; text: string }> = {};
      for (const [what, token] of Object.entries({ unknown, malformed: 'not-a-token', expired: expired.token, revoked: revoked.token })) {
        // The revocation reaches this process within 1 s.
        const deadline = Date.now() + 1000;
        let answer = await signRequest(transcript, service.url, token, body);
        while (answer.status === 200 && Date.now() < deadline) answer = await signRequest(transcript, service.url, token, body);
        answers[what] = { status: answer.status, text: answer.text };
      }
      for (const answer of Object.values(answers)) {
        expect(answer.status).to.equal(401);
        expect(answer.text).to.equal(answers.unknown.text);
      }
      const refused = await auditRows({ event_type: 'api.request.refused' });
      expect(refused.map((r: { actor: string | null }) => r.actor)).to.include.members([expired.info.id, revoked.info.id]);
      expect(refused.some((r: { reason: string }) => r.reason.includes(`token ${revoked.info.id} is revoked`))).to.equal(true);
      expect(refused.some((r: { reason: string }) => r.reason.includes(`token ${expired.info.id} is expired`))).to.equal(true);
    });

    it("when a token asks for a key outside its scopes, another organization's key or no key at all, it answers the same 403", async () => {
      const ask = (token: string, keyId: string) => signRequest(transcript, service.url, token, { keyId, packageHash: 'c'.repeat(64) });
      const answers = [
        [await ask(tokenA, keyA2.id), keyA2.id],
        [await ask(tokenA, keyB.id), keyB.id],
        [await ask(tokenA, '00000000-0000-4000-8000-000000000000'), '00000000-0000-4000-8000-000000000000'],
        [await ask(tokenB, keyA.id), keyA.id],
      ] as const;
      for (const [answer, keyId] of answers) {
        expect(answer.status).to.equal(403);
        expect(answer.text.replace(keyId, '<id>')).to.equal(answers[0][0].text.replace(keyA2.id, '<id>'));
      }
      expect(answers[0][0].json().error.code).to.equal('API_FORBIDDEN');
      const cliRefused = cli(
        transcript,
        ['package', 'sign', randomPackage(dir.join('scope.so')), '--key-id', keyB.id, '--api-url', service.url],
        apiEnv(tokenA),
      );
      expect(cliRefused.status).to.equal(2);
      expect(cliRefused.stderr).to.include('API_FORBIDDEN');
    });

    it('when the CLI has a wrong token or no service to talk to, it exits 2 with API_UNAUTHORIZED or API_UNREACHABLE', async () => {
      const closedPort = await new Promise<number>((resolve) => {
        const server = createServer().listen(0, '127.0.0.1', () => {
          const { port } = server.address() as AddressInfo;
          server.close(() => resolve(port));
        });
      });
      const pkg = randomPackage(dir.join('unreachable.so'));
      const wrong = cli(transcript, ['package', 'sign', pkg, '--key-id', keyA.id, '--api-url', service.url, '--json'], apiEnv(`cst_${'A'.repeat(43)}`));
      expect(wrong.status).to.equal(2);
      expect(wrong.json().error.code).to.equal('API_UNAUTHORIZED');
      const down = cli(transcript, ['package', 'sign', pkg, '--key-id', keyA.id, '--api-url', `http://127.0.0.1:${closedPort}`, '--json'], apiEnv(tokenA));
      expect(down.status).to.equal(2);
      expect(down.json().error.code).to.equal('API_UNREACHABLE');
      expect(down.stderr).to.include('ECONNREFUSED');
      const noToken = cli(transcript, ['package', 'sign', pkg, '--key-id', keyA.id, '--api-url', service.url], { CLOACINA_API_TOKEN: '' });
      expect(noToken.status).to.equal(2);
      expect(noToken.stderr).to.include('CLOACINA_API_TOKEN');
      const clearText = cli(transcript, ['package', 'sign', pkg, '--key-id', keyA.id, '--api-url', 'http://signing.example.com'], apiEnv(tokenA));
      expect(clearText.status).to.equal(2);
      expect(clearText.stderr).to.include('clear text');
      expect(existsSync(`${pkg}.sig`)).to.equal(false);
    });

    it('when the public key is asked for, it answers PEM or raw for its organization, and 403 for any other key', async () => {
      const pem = await http(transcript, `${service.url}/v1/keys/${keyA.id}/public`, { token: tokenSignOnly });
      expect(pem.status).to.equal(200);
      expect(pem.text).to.equal(publicKeyToPem(keyA.publicKey));
      const raw = await http(transcript, `${service.url}/v1/keys/${keyA.id}/public?format=raw`, { token: tokenA });
      expect(raw.body.equals(keyA.publicKey)).to.equal(true);
      const accept = await http(transcript, `${service.url}/v1/keys/${keyA.id}/public`, { token: tokenA, headers: { accept: 'application/octet-stream' } });
      expect(accept.body.equals(keyA.publicKey)).to.equal(true);
      const other = await http(transcript, `${service.url}/v1/keys/${keyB.id}/public`, { token: tokenA });
      const none = await http(transcript, `${service.url}/v1/keys/00000000-0000-4000-8000-000000000000/public`, { token: tokenA });
      expect([other.status, none.status]).to.deep.equal([403, 403]);
      expect(other.text.replace(keyB.id, '<id>')).to.equal(none.text.replace('00000000-0000-4000-8000-000000000000', '<id>'));
    });
  });

  describe('uploads', () => {
    const signedPackage = async (name: string, size = 64 * 1024) => {
      const pkg = randomPackage(dir.join(name), size);
      const result = cli(transcript, ['package', 'sign', pkg, '--key-id', keyA.id, '--api-url', service.url], apiEnv(tokenA));
      expect(result.status, result.stderr).to.equal(0);
      return pkg;
    };
    const packageRows = async (hash: string) => ({
      packages: await t.db.run((knex) => knex('packages').where({ package_hash: hash })),
      signatures: await t.db.run((knex) => knex('package_signatures').where({ package_hash: hash })),
    });

    it('when a signed package is uploaded with the CLI, it is verified against the org and stored, with one audit row', async () => {
      const pkg = await signedPackage('upload-good.so');
      const hash = await hashFile(pkg);
      const before = (await auditRows({ actor: tokenAId })).length;
      const uploaded = cli(transcript, ['package', 'upload', pkg, '--org', orgA.name, '--api-url', service.url, '--name', 'good', '--json'], apiEnv(tokenA));
      expect(uploaded.status, uploaded.stderr).to.equal(0);
      expect(uploaded.json()).to.include({ packageHash: hash, keyFingerprint: keyA.fingerprint, orgId: orgA.id, name: 'good', bytes: 64 * 1024 });
      const rows = await packageRows(hash);
      expect(rows.packages).to.have.length(1);
      expect(rows.signatures).to.have.length(1);
      const audit = await auditRows({ actor: tokenAId });
      expect(audit.length).to.equal(before + 1);
      expect(audit[audit.length - 1]).to.include({ event_type: 'package.uploaded', package_hash: hash, org_id: orgA.id, package_path: 'good' });
      // By organization id too.
      const again = cli(transcript, ['package', 'upload', pkg, '--org', orgA.id, '--api-url', service.url, '--json'], apiEnv(tokenA));
      expect(again.status, again.stderr).to.equal(0);
    });

    it('when the package was tampered with, it answers 403 TAMPERED_PACKAGE, the CLI exits 1, and nothing is stored', async () => {
      const pkg = await signedPackage('upload-tampered.so');
      const tampered = dir.join('tampered.so');
      const bytes = readFileSync(pkg);
      bytes[100] ^= 1;
      writeFileSync(tampered, bytes);
      const result = cli(
        transcript,
        ['package', 'upload', tampered, '--signature', `${pkg}.sig`, '--org', orgA.name, '--api-url', service.url, '--json'],
        apiEnv(tokenA),
      );
      expect(result.status).to.equal(1);
      expect(result.json().error.code).to.equal('TAMPERED_PACKAGE');
      const rows = await packageRows(await hashFile(tampered));
      expect(rows.packages).to.have.length(0);
      const failures = await auditRows({ event_type: 'package.upload.failure', package_hash: await hashFile(tampered) });
      expect(failures).to.have.length(1);
      expect(failures[0]).to.include({ actor: tokenAId, signature_verified: t.engine === 'sqlite' ? 0 : false });
    });

    it('when the signer is not trusted by the organization, it answers 403 UNTRUSTED_SIGNER and stores nothing', async () => {
      const pkg = randomPackage(dir.join('vendor.so'));
      await DetachedSignature.fromSignatureInfo(await signPackage(pkg, vendorKey.privateKey)).writeToFile(`${pkg}.sig`);
      const result = cli(transcript, ['package', 'upload', pkg, '--org', orgA.name, '--api-url', service.url, '--json'], apiEnv(tokenA));
      expect(result.status).to.equal(1);
      expect(result.json().error.code).to.equal('UNTRUSTED_SIGNER');
      expect((await packageRows(await hashFile(pkg))).packages).to.have.length(0);
    });

    it('when the signature is missing or malformed, it answers 403 SIGNATURE_NOT_FOUND or MALFORMED_SIGNATURE', async () => {
      const upload = (headers: Record<string, string>) =>
        http(transcript, `${service.url}/v1/orgs/${orgA.id}/packages`, {
          method: 'POST',
          token: tokenA,
          headers: { 'content-type': 'application/octet-stream', ...headers },
          body: randomBytes(1000),
        });
      const missing = await upload({});
      expect(missing.status).to.equal(403);
      expect(missing.json().error.code).to.equal('SIGNATURE_NOT_FOUND');
      const malformed = await upload({ 'cloacina-signature': Buffer.from('{"version":2}').toString('base64') });
      expect(malformed.status).to.equal(403);
      expect(malformed.json().error.code).to.equal('MALFORMED_SIGNATURE');
      const pkg = randomPackage(dir.join('nosig.so'));
      const cliMissing = cli(transcript, ['package', 'upload', pkg, '--org', orgA.name, '--api-url', service.url, '--json'], apiEnv(tokenA));
      expect(cliMissing.status).to.equal(1);
      expect(cliMissing.json().error.code).to.equal('SIGNATURE_NOT_FOUND');
    });

    it('when the body is over the limit, it answers 413 (declared or counted), reads no further than a short linger, and the CLI exits 2', async () => {
      const pkg = await signedPackage('big.so', 2 * 1024 * 1024);
      const result = cli(transcript, ['package', 'upload', pkg, '--org', orgA.name, '--api-url', service.url, '--json'], apiEnv(tokenA));
      expect(result.status).to.equal(2);
      expect(result.json().error.code).to.equal('PACKAGE_TOO_LARGE');
      // Chunked, no Content-Length: counted as it streams.
      const signature = Buffer.from(readFileSync(`${pkg}.sig`, 'utf8').trimEnd()).toString('base64');
      // Chunked (a stream, no Content-Length): counted as it streams.
      const chunk = randomBytes(64 * 1024);
      const body = new ReadableStream({
        start(controller) {
          for (let sent = 0; sent < 8 * 1024 * 1024; sent += chunk.length) controller.enqueue(chunk);
          controller.close();
        },
      });
      const outcome = await fetch(`${service.url}/v1/orgs/${orgA.id}/packages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokenA}`, 'content-type': 'application/octet-stream', 'cloacina-signature': signature },
        body,
        duplex: 'half',
      } as RequestInit).then(
        async (response) => ({
          status: response.status as number | undefined,
          body: await response.text(),
        }),
        (error: Error) => ({ status: undefined, body: String((error.cause as Error | undefined)?.message ?? error.message) }),
      );
      transcript.add('chunked upload', outcome.body);
      expect(outcome.status, outcome.body).to.equal(413);
      expect((await packageRows(await hashFile(pkg))).packages).to.have.length(0);
    });

    it('when the token has no upload scope or belongs to another organization, it answers 403 before reading the body', async () => {
      const pkg = await signedPackage('scoped.so');
      for (const [token, org] of [
        [tokenSignOnly, orgA.name],
        [tokenB, orgA.name],
        [tokenB, orgA.id],
        [tokenA, orgB.name],
      ]) {
        const result = cli(transcript, ['package', 'upload', pkg, '--org', org, '--api-url', service.url, '--json'], apiEnv(token));
        expect(result.status).to.equal(2);
        expect(result.json().error.code).to.equal('API_FORBIDDEN');
      }
    });

    it('when no --api-url is given, it verifies against the org and stores straight into the database, nothing on failure', async () => {
      const pkg = await signedPackage('direct.so');
      const direct = cli(transcript, ['package', 'upload', pkg, '--org', orgA.name, '--database', t.url, '--json']);
      expect(direct.status, direct.stderr).to.equal(0);
      expect(direct.json()).to.include({ packageHash: await hashFile(pkg), keyFingerprint: keyA.fingerprint, name: 'direct.so' });
      expect((await packageRows(await hashFile(pkg))).signatures).to.have.length(1);
      const tampered = dir.join('direct-tampered.so');
      writeFileSync(tampered, Buffer.concat([readFileSync(pkg), Buffer.from('x')]));
      const refused = cli(transcript, ['package', 'upload', tampered, '--signature', `${pkg}.sig`, '--org', orgA.name, '--database', t.url, '--json']);
      expect(refused.status).to.equal(1);
      expect(refused.json().error.code).to.equal('TAMPERED_PACKAGE');
      expect((await packageRows(await hashFile(tampered))).packages).to.have.length(0);
      expect(await auditRows({ event_type: 'package.upload.failure', package_hash: await hashFile(tampered) })).to.have.length(1);
    });

    it('when signing with --key and --store, the signature is stored (database, no KEK) and the file written', async () => {
      const pkg = randomPackage(dir.join('keyfile.so'));
      const keyFile = dir.join('vendor.pem');
      writeFileSync(keyFile, privateKeyToPem(vendorKey.privateKey), { mode: 0o600 });
      const signed = cli(transcript, ['package', 'sign', pkg, '--key', keyFile, '--output', `${pkg}.sig`, '--store', '--database', t.url, '--json']);
      expect(signed.status, signed.stderr).to.equal(0);
      expect(signed.json().id).to.match(/^[0-9a-f-]{36}$/);
      expect(existsSync(`${pkg}.sig`)).to.equal(true);
      expect((await packageRows(await hashFile(pkg))).signatures).to.have.length(1);
    });
  });

  describe('audit', () => {
    it('when a token makes requests that succeed, are refused or fail, each writes exactly one row naming the token, never the token', async () => {
      const before = (await auditRows({ actor: tokenAId })).length;
      const requests = [
        () => signRequest(transcript, service.url, tokenA, { keyId: keyA.id, packageHash: '2'.repeat(64) }),
        () => signRequest(transcript, service.url, tokenA, { keyId: keyB.id, packageHash: '2'.repeat(64) }),
        () => signRequest(transcript, service.url, tokenA, { keyId: keyA.id }),
        () => http(transcript, `${service.url}/v1/keys/${keyA.id}/public`, { token: tokenA }),
        () =>
          http(transcript, `${service.url}/v1/orgs/${orgA.id}/packages`, {
            method: 'POST',
            token: tokenA,
            headers: { 'content-type': 'text/plain' },
            body: 'x',
          }),
        () =>
          http(transcript, `${service.url}/v1/orgs/${orgA.id}/packages`, {
            method: 'POST',
            token: tokenA,
            headers: { 'content-type': 'application/octet-stream', 'cloacina-signature': 'not base64!' },
            body: 'x',
          }),
      ];
      const statuses = [];
      for (const request of requests) statuses.push((await request()).status);
      expect(statuses).to.deep.equal([200, 403, 400, 200, 415, 403]);
      const rows = (await auditRows({ actor: tokenAId })).slice(before);
      expect(rows.map((r: { event_type: string }) => r.event_type)).to.deep.equal([
        'package.signed',
        'api.request.refused',
        'package.sign.failure',
        'key.exported',
        'package.upload.failure',
        'package.upload.failure',
      ]);
      expect(rows[1]).to.include({ key_id: keyB.id, org_id: orgA.id, signer_fingerprint: null });
      expect(JSON.stringify(rows)).not.to.include(tokenA);
    });
  });

  describe('operations', () => {
    it('when requests come and go, /metrics counts them by outcome with bounded labels', async () => {
      const scrape = async () => (await http(transcript, `${service.url}/metrics`)).text;
      const before = await scrape();
      await signRequest(transcript, service.url, tokenA, { keyId: keyA.id, packageHash: 'd'.repeat(64) });
      await signRequest(transcript, service.url, undefined, { keyId: keyA.id, packageHash: 'd'.repeat(64) });
      await http(transcript, `${service.url}/v1/orgs/${orgA.id}/packages`, {
        method: 'POST',
        token: tokenA,
        headers: { 'content-type': 'application/octet-stream' },
        body: 'x',
      });
      const after = await scrape();
      const moved = (name: string, labels: Record<string, string>) => metric(after, name, labels) - metric(before, name, labels);
      expect(moved('cloacina_sign_signatures_total', { outcome: 'signed' })).to.equal(1);
      expect(moved('cloacina_sign_signatures_total', { outcome: 'refused' })).to.equal(1);
      expect(moved('cloacina_sign_requests_refused_total', { reason: 'API_UNAUTHORIZED' })).to.equal(1);
      expect(moved('cloacina_sign_uploads_total', { outcome: 'rejected' })).to.equal(1);
      expect(moved('cloacina_sign_verification_failures_total', { reason: 'SIGNATURE_NOT_FOUND' })).to.equal(1);
      expect(moved('cloacina_sign_http_requests_total', { route: '/v1/sign', method: 'POST', status: '200' })).to.equal(1);
      expect(moved('cloacina_sign_sign_duration_seconds_count', {})).to.equal(1);
      expect(after).to.match(/cloacina_sign_http_request_duration_seconds_bucket\{le="[^"]+",route="\/v1\/sign",method="POST"\}/);
      for (const secret of [keyA.id, orgA.id, orgA.name, 'd'.repeat(64), tokenAId]) expect(after).not.to.include(secret);
    });

    it('when asked, /healthz and /readyz answer, and /v1/openapi.json describes every route with its schemas', async () => {
      expect((await http(transcript, `${service.url}/healthz`)).json()).to.deep.equal({ status: 'ok' });
      expect((await http(transcript, `${service.url}/readyz`)).json()).to.deep.equal({ status: 'ready' });
      const openapi = (await http(transcript, `${service.url}/v1/openapi.json`)).json();
      expect(openapi.openapi).to.equal('3.1.0');
      expect(Object.keys(openapi.paths)).to.include.members([
        '/v1/sign',
        '/v1/orgs/{org}/packages',
        '/v1/keys/{id}/public',
        '/healthz',
        '/readyz',
        '/metrics',
        '/v1/openapi.json',
      ]);
      const sign = openapi.paths['/v1/sign'].post;
      expect(sign.requestBody.content['application/json'].schema.required).to.deep.equal(['keyId', 'packageHash']);
      expect(sign.responses['200'].content['application/json'].schema.required).to.include('package_hash');
      expect(sign.security).to.deep.equal([{ bearerToken: [] }]);
      const upload = openapi.paths['/v1/orgs/{org}/packages'].post;
      expect(upload.requestBody.content).to.have.key('application/octet-stream');
      expect(upload.parameters.map((p: { name: string }) => p.name)).to.include.members(['org', 'name', 'cloacina-signature']);
      for (const path of Object.values(openapi.paths) as Record<string, { responses: object }>[]) {
        for (const operation of Object.values(path)) expect(Object.keys(operation.responses).length).to.be.greaterThan(0);
      }
    });

    it('when everything above ran, no log line, answer or CLI output holds a token, the KEK or key material', () => {
      expect(service.stderr.some((line) => line.includes('"msg":"request"'))).to.equal(true);
      transcript.expectFreeOf(secrets);
    });
  });
});
