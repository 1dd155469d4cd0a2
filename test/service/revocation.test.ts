// The signing service and revoked packages: it neither signs nor accepts an upload of a package its
// organization revoked.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hashFile } from '../../src/hashing';
import { DbPackageSigner } from '../../src/signing/db-signer';
import { DetachedSignature } from '../../src/formats/v1';
import { TokenManager } from '../../src/db/tokens';
import { revokePackage } from '../../src/trust/package-revocations';
import { tempDir } from '../helpers';
import { describeEngines } from '../db/engines';
import { http, randomPackage, type ServiceProcess, signRequest, startService, Transcript } from './harness';

describeEngines('the signing service and revoked packages', (t) => {
  const dir = tempDir();
  const transcript = new Transcript();
  const kek = randomBytes(32);
  let service: ServiceProcess;
  let org: { id: string; name: string };
  let key: { id: string; publicKey: Buffer };
  let token: string;

  before(async () => {
    org = await t.keys.createOrganization(t.unique('svc-revoke'));
    key = await t.keys.createSigningKey(org.id, 'release', kek);
    await t.keys.trustPublicKey(org.id, key.publicKey, 'release');
    token = (await new TokenManager(t.keys).create({ orgId: org.id, scopes: [`sign:${key.id}`, 'upload'] })).token;
    service = await startService({ database: t.url, kek: kek.toString('base64'), args: ['--rate-limit', '1000'], transcript });
  });

  /** Revokes through the database, then waits out the bound within which the service's process sees it (1 s). */
  const revoke = async (digests: { sha256?: string; blake3?: string }, reason: string) => {
    await revokePackage(t.keys, org.id, digests, reason);
    await new Promise((resolve) => setTimeout(resolve, 1100));
  };

  after(async () => {
    await service?.stop();
    dir.cleanup();
  });

  it('when a digest is revoked, signing it answers 403 PACKAGE_REVOKED, audited, while another digest is signed', async () => {
    const revoked = randomBytes(32).toString('hex');
    await revoke({ sha256: revoked }, 'compromised build');
    const refused = await signRequest(transcript, service.url, token, { keyId: key.id, packageHash: revoked });
    expect(refused.status).to.equal(403);
    expect(refused.json().error.code).to.equal('PACKAGE_REVOKED');
    const rows = await t.db.run((knex) => knex('audit_events').where({ event_type: 'package.sign.failure', package_hash: revoked }));
    expect(rows).to.have.length(1);
    expect(rows[0].reason).to.include('PACKAGE_REVOKED');
    const other = await signRequest(transcript, service.url, token, { keyId: key.id, packageHash: randomBytes(32).toString('hex') });
    expect(other.status, other.text).to.equal(200);
  });

  it('when a BLAKE3 digest is revoked, a version-2 statement about it is not signed', async () => {
    const revoked = randomBytes(32).toString('hex');
    await revoke({ blake3: revoked }, 'bad release');
    const refused = await signRequest(transcript, service.url, token, {
      keyId: key.id,
      packageHash: revoked,
      statement: { name: 'pipeline', version: '1.0.0', size: 10, digestAlgorithm: 'blake3' },
    });
    expect(refused.status).to.equal(403);
    expect(refused.json().error.code).to.equal('PACKAGE_REVOKED');
  });

  it('when a revoked package is uploaded with a valid signature, it answers 403 PACKAGE_REVOKED and stores nothing', async () => {
    const pkg = randomPackage(dir.join('upload.so'));
    const signed = await new DbPackageSigner(t.keys).signPackageWithDbKey(pkg, key.id, kek);
    await revoke({ sha256: await hashFile(pkg) }, 'withdrawn');
    const answer = await http(transcript, `${service.url}/v1/orgs/${org.id}/packages`, {
      method: 'POST',
      token,
      headers: {
        'content-type': 'application/octet-stream',
        'cloacina-signature': Buffer.from(DetachedSignature.fromSignatureInfo(signed).toString()).toString('base64'),
      },
      body: readFileSync(pkg),
    });
    expect(answer.status).to.equal(403);
    expect(answer.json().error.code).to.equal('PACKAGE_REVOKED');
    expect(await t.db.run((knex) => knex('packages').where({ package_hash: signed.packageHash }))).to.have.length(0);
  });
});
