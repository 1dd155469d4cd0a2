// POST /v1/sign/batch and `package sign a b c --api-url`, on SQLite and on PostgreSQL.
import { expect } from 'chai';
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { verifyAuditChain } from '../../src/audit/chain-verify';
import { DetachedSignature } from '../../src/formats/v1';
import { publicKeyToPem } from '../../src/keys/keypair';
import { serviceSigner } from '../../src/signing/signers/service-signer';
import { TokenManager } from '../../src/db/tokens';
import { revokePackage } from '../../src/trust/package-revocations';
import { describeEngines } from '../db/engines';
import { tempDir } from '../helpers';
import { cli, http, type HttpAnswer, randomPackage, type ServiceProcess, startService, Transcript } from './harness';

describeEngines('batch signing through the signing service', (t) => {
  const dir = tempDir();
  const transcript = new Transcript();
  const kek = randomBytes(32);
  let service: ServiceProcess;
  let limited: ServiceProcess;
  let org: { id: string };
  let key: { id: string; fingerprint: string; publicKey: Buffer };
  let otherKey: { id: string };
  let token: string;
  let limitedToken: string;

  const digests = (count: number) => Array.from({ length: count }, () => randomBytes(32).toString('hex'));
  const signBatch = (base: string, bearer: string, body: unknown): Promise<HttpAnswer> =>
    http(transcript, `${base}/v1/sign/batch`, { method: 'POST', token: bearer, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const signedRows = async (hashes: string[]) =>
    (await t.db.run((knex) => knex('audit_events').where({ event_type: 'package.signed', key_id: key.id }).whereIn('package_hash', hashes))).length;
  const apiEnv = (bearer: string) => ({ CLOACINA_API_TOKEN: bearer, CLOACINA_DATABASE_URL: `sqlite:${dir.join('no-such.db')}` });

  before(async () => {
    org = await t.keys.createOrganization(t.unique('batch'));
    key = await t.keys.createSigningKey(org.id, 'release', kek);
    otherKey = await t.keys.createSigningKey(org.id, 'other', kek);
    const tokens = new TokenManager(t.keys);
    token = (await tokens.create({ orgId: org.id, scopes: [`sign:${key.id}`] })).token;
    limitedToken = (await tokens.create({ orgId: org.id, scopes: [`sign:${key.id}`] })).token;
    const common = { database: t.url, kek: kek.toString('base64'), transcript };
    service = await startService({ ...common, args: ['--rate-limit', '100000'] });
    limited = await startService({ ...common, args: ['--rate-limit', '1', '--rate-burst', '10'] });
  });

  after(async () => {
    await service?.stop();
    await limited?.stop();
    dir.cleanup();
  });

  it('when a batch of 256 digests is signed, it answers 256 valid signatures in order, writes 256 audit rows and the chain verifies', async () => {
    const hashes = digests(256);
    const answer = await signBatch(service.url, token, { keyId: key.id, packageHashes: hashes });
    expect(answer.status, answer.text).to.equal(200);
    const { signatures } = answer.json() as { signatures: { packageHash: string; document: string }[] };
    expect(signatures.map((item) => item.packageHash)).to.deep.equal(hashes);
    const publicKey = createPublicKey(publicKeyToPem(key.publicKey));
    for (const [index, item] of signatures.entries()) {
      const document = DetachedSignature.parse(item.document);
      expect(document.toString()).to.equal(item.document);
      expect(document.packageHash).to.equal(hashes[index]);
      expect(document.keyFingerprint).to.equal(key.fingerprint);
      expect(verify(null, Buffer.from(hashes[index], 'hex'), publicKey, Buffer.from(document.signature, 'base64'))).to.equal(true);
    }
    expect(await signedRows(hashes)).to.equal(256);
    expect((await verifyAuditChain(t.db)).intact).to.equal(true);
  });

  it('when a service signer signs several digests, it returns one document per digest, in order, made by the key', async () => {
    const hashes = digests(3);
    const signer = serviceSigner({ service: { url: service.url, token }, keyId: key.id });
    const documents = (await signer.signDigests(hashes)).map((document) => DetachedSignature.parse(document));
    expect(documents.map((document) => document.packageHash)).to.deep.equal(hashes);
    for (const document of documents) expect(document.keyFingerprint).to.equal(key.fingerprint);
  });

  it('when the OpenAPI description is read, it describes the batch route', async () => {
    const answer = await http(transcript, `${service.url}/v1/openapi.json`);
    expect(answer.json().paths['/v1/sign/batch'].post.operationId).to.equal('signBatch');
  });

  it('when a batch holds 257 digests, it answers 400', async () => {
    const answer = await signBatch(service.url, token, { keyId: key.id, packageHashes: digests(257) });
    expect(answer.status, answer.text).to.equal(400);
  });

  it('when the token may not sign with the key, it answers 403 and signs nothing', async () => {
    const hashes = digests(3);
    const answer = await signBatch(service.url, token, { keyId: otherKey.id, packageHashes: hashes });
    expect(answer.status, answer.text).to.equal(403);
    expect(answer.json().error.code).to.equal('API_FORBIDDEN');
    expect(await t.db.run((knex) => knex('audit_events').where({ event_type: 'package.signed' }).whereIn('package_hash', hashes))).to.have.length(0);
  });

  it('when a batch needs more signatures than the rate limit has left, it answers 429 and signs nothing', async () => {
    const first = await signBatch(limited.url, limitedToken, { keyId: key.id, packageHashes: digests(8) });
    expect(first.status, first.text).to.equal(200);
    const hashes = digests(8);
    const second = await signBatch(limited.url, limitedToken, { keyId: key.id, packageHashes: hashes });
    expect(second.status, second.text).to.equal(429);
    expect(second.json().error.code).to.equal('API_RATE_LIMITED');
    expect(await signedRows(hashes)).to.equal(0);
  });

  it('when a batch is larger than the rate limit burst, it answers 429', async () => {
    const answer = await signBatch(limited.url, limitedToken, { keyId: key.id, packageHashes: digests(11) });
    expect(answer.status, answer.text).to.equal(429);
  });

  it('when one digest of the batch was revoked, it refuses the batch and signs none of it', async () => {
    const hashes = digests(5);
    await revokePackage(t.keys, org.id, { sha256: hashes[3] }, 'withdrawn');
    // The bound within which the service's process sees a change made through another connection.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const answer = await signBatch(service.url, token, { keyId: key.id, packageHashes: hashes });
    expect(answer.status, answer.text).to.equal(403);
    expect(answer.json().error.code).to.equal('PACKAGE_REVOKED');
    expect(answer.json().error.message).to.include('item 3');
    expect(await signedRows(hashes)).to.equal(0);
  });

  it('when the body names a member twice, it answers 400', async () => {
    const [hash] = digests(1);
    const body = `{"keyId":"${key.id}","packageHashes":["${hash}"],"packageHashes":["${hash}"]}`;
    const answer = await http(transcript, `${service.url}/v1/sign/batch`, { method: 'POST', token, headers: { 'content-type': 'application/json' }, body });
    expect(answer.status, answer.text).to.equal(400);
    expect(await signedRows([hash])).to.equal(0);
  });

  it('when the CLI signs three packages with --api-url, it writes three .sig files that verify', async () => {
    const packages = ['a.so', 'b.so', 'c.so'].map((name) => randomPackage(dir.join(name)));
    const signed = cli(transcript, ['package', 'sign', ...packages, '--key-id', key.id, '--api-url', service.url], apiEnv(token));
    expect(signed.status, signed.stderr).to.equal(0);
    const pem = dir.join('key.pub.pem');
    writeFileSync(pem, publicKeyToPem(key.publicKey));
    for (const pkg of packages) {
      expect(DetachedSignature.parse(readFileSync(`${pkg}.sig`, 'utf8').trimEnd()).keyFingerprint).to.equal(key.fingerprint);
      const verified = cli(transcript, ['package', 'verify', pkg, '--trust-key', pem]);
      expect(verified.status, verified.stderr).to.equal(0);
    }
  });

  it('when the batch of the CLI is refused, it writes no .sig file', async () => {
    const packages = ['d.so', 'e.so', 'f.so'].map((name) => randomPackage(dir.join(name)));
    const signed = cli(transcript, ['package', 'sign', ...packages, '--key-id', otherKey.id, '--api-url', service.url], apiEnv(token));
    expect(signed.status).to.not.equal(0);
    expect(signed.stderr).to.include('no package was signed');
    for (const pkg of packages) expect(existsSync(`${pkg}.sig`)).to.equal(false);
  });
});
