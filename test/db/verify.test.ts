import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { appendFileSync, copyFileSync, writeFileSync } from 'node:fs';
import { auditToDatabase, auditToStream, createPackageLoader, databaseTrust, DbKeyManager, generateKeypair, signPackage, SignatureSource } from '../../src';
import { DbPackageSigner } from '../../src/signing/db-signer';
import { DetachedSignature } from '../../src/formats/v1';
import { listAuditEvents } from '../../src/audit/database-sink';
import { candidatesFor } from '../../src/verification/candidates';
import { rejectsWith, tempDir } from '../helpers';
import { writePackage } from '../fixtures/random-package';
import { describeEngines } from './engines';

describeEngines('database signing and verification', (t) => {
  const kek = randomBytes(32);
  const dir = tempDir();
  let signer: DbPackageSigner;
  before(() => {
    signer = new DbPackageSigner(t.keys);
  });
  after(() => dir.cleanup());

  const trust = (orgId: string) => databaseTrust(t.db, { org: orgId });
  const verifyPackage = (path: string, orgId: string, signature: SignatureSource) =>
    createPackageLoader({ trust: trust(orgId), audit: auditToDatabase(t.db) }).verify(path, { signature });

  /** A signing key whose public key the organization trusts (creating a signing key alone trusts nothing). */
  async function orgWithKey(name = 'org') {
    const org = await t.keys.createOrganization(t.unique(name));
    const key = await t.keys.createSigningKey(org.id, 'release', kek);
    const trusted = await t.keys.trustPublicKey(org.id, key.publicKey, 'release');
    return { org, key, trusted };
  }

  describe('when a package is signed with a database key and stored', () => {
    it('it verifies from the database, from a .sig (Auto), from a file and from memory, and audits both outcomes', async () => {
      const { org, key } = await orgWithKey();
      const pkg = writePackage(dir.join(`${t.unique('pkg')}.so`));
      const signed = await signer.signPackageWithDbKey(pkg, key.id, kek, true);
      expect(signed.signatureId).to.match(/^[0-9a-f-]{36}$/);
      expect(signed.keyFingerprint).to.equal(key.fingerprint);
      expect((await signer.findSignatures(signed.packageHash)).map((s) => s.id)).to.deep.equal([signed.signatureId]);

      const fromDb = await verifyPackage(pkg, org.id, SignatureSource.Database);
      expect(fromDb.signerFingerprint).to.equal(key.fingerprint);
      expect((await verifyPackage(pkg, org.id, SignatureSource.Auto)).packageHash).to.equal(signed.packageHash);
      await DetachedSignature.fromSignatureInfo(signed).writeToFile(`${pkg}.sig`);
      expect((await verifyPackage(pkg, org.id, SignatureSource.Auto)).signedAt).to.equal(signed.signedAt);
      expect((await verifyPackage(pkg, org.id, SignatureSource.DetachedFile(`${pkg}.sig`))).signedAt).to.equal(signed.signedAt);
      expect((await verifyPackage(pkg, org.id, SignatureSource.Memory(signed))).signedAt).to.equal(signed.signedAt);

      writeFileSync(`${pkg}.sig`, '{not json');
      expect((await rejectsWith(verifyPackage(pkg, org.id, SignatureSource.Auto))).code).to.equal('MALFORMED_SIGNATURE');

      const events = await listAuditEvents(t.db, { orgId: org.id, limit: 20 });
      const types = events.map((e) => e.event_type);
      expect(types).to.include.members(['key.signing.created', 'package.signed', 'verification.success', 'verification.failure']);
      const success = events.find((e) => e.event_type === 'verification.success')!;
      expect(success.signature_verified).to.equal(true);
      expect(success.package_hash).to.equal(signed.packageHash);
      expect(success.signer_fingerprint).to.equal(key.fingerprint);
      expect(success.package_path).to.equal(pkg);
    });

    it('it rejects a tampered package, an untrusted signer, a missing signature and an unknown org', async () => {
      const { org, key } = await orgWithKey();
      const stranger = await t.keys.createOrganization(t.unique('stranger'));
      const pkg = writePackage(dir.join(`${t.unique('pkg')}.so`));
      const signed = await signer.signPackageWithDbKey(pkg, key.id, kek);
      const tampered = dir.join(`${t.unique('tampered')}.so`);
      copyFileSync(pkg, tampered);
      appendFileSync(tampered, 'x');
      expect((await rejectsWith(verifyPackage(tampered, org.id, SignatureSource.Memory(signed)))).code).to.equal('TAMPERED_PACKAGE');
      const untrusted = await rejectsWith(verifyPackage(pkg, stranger.id, SignatureSource.Memory(signed)));
      expect(untrusted.code).to.equal('UNTRUSTED_SIGNER');
      expect(untrusted.message).to.include(key.fingerprint);
      expect((await rejectsWith(verifyPackage(pkg, org.id, SignatureSource.Database))).code).to.equal('SIGNATURE_NOT_FOUND');
      expect((await rejectsWith(verifyPackage(pkg, '00000000-0000-4000-8000-000000000000', SignatureSource.Memory(signed)))).code).to.equal('NOT_FOUND');
    });

    it('it verifies through grants (one level, two levels, a cycle) and rejects after the trusted key is revoked', async () => {
      const team = await t.keys.createOrganization(t.unique('team'));
      const [sub, root] = [await t.keys.createOrganization(t.unique('sub')), await t.keys.createOrganization(t.unique('root'))];
      const outside = generateKeypair();
      const trusted = await t.keys.trustPublicKey(team.id, outside.publicKey, 'vendor');
      const pkg = writePackage(dir.join(`${t.unique('pkg')}.so`));
      const info = await signPackage(pkg, outside.privateKey);
      await signer.storeSignature(info);
      const verify = (orgId: string) => verifyPackage(pkg, orgId, SignatureSource.Database);
      expect((await verify(team.id)).signerFingerprint).to.equal(outside.fingerprint);
      expect((await rejectsWith(verify(sub.id))).code).to.equal('UNTRUSTED_SIGNER');
      await t.keys.grantTrust(sub.id, team.id);
      await verify(sub.id);
      expect((await rejectsWith(verify(root.id))).code).to.equal('UNTRUSTED_SIGNER');
      await t.keys.grantTrust(root.id, sub.id);
      await verify(root.id);
      await t.keys.grantTrust(team.id, root.id);
      await verify(root.id);
      await t.keys.revokeTrustedKey(trusted.id);
      for (const orgId of [team.id, sub.id, root.id]) expect((await rejectsWith(verify(orgId))).code).to.equal('UNTRUSTED_SIGNER');
    });
  });

  describe('when keys rotate', () => {
    it('it accepts old and new during the transition; revoking the old signing key keeps it verifying, revoking the old trusted key does not', async () => {
      const { org, key: oldKey, trusted: oldTrusted } = await orgWithKey('rotation');
      const pkg = writePackage(dir.join(`${t.unique('pkg')}.so`));
      const oldSig = await signer.signPackageWithDbKey(pkg, oldKey.id, kek, true);
      const newKey = await t.keys.createSigningKey(org.id, 'release-2', kek);
      await t.keys.trustPublicKey(org.id, newKey.publicKey, 'release-2');
      const newSig = await signer.signPackageWithDbKey(pkg, newKey.id, kek, true);
      expect((await signer.findSignatures(oldSig.packageHash)).map((s) => s.id)).to.deep.equal([oldSig.signatureId, newSig.signatureId]);

      const candidates = await candidatesFor([], oldSig.packageHash, trust(org.id));
      expect(candidates.map((c) => c.publicKey?.toString('hex'))).to.deep.equal([oldKey.publicKey.toString('hex'), newKey.publicKey.toString('hex')]);
      expect((await verifyPackage(pkg, org.id, SignatureSource.Database)).signerFingerprint).to.equal(oldKey.fingerprint);
      expect((await verifyPackage(pkg, org.id, SignatureSource.Memory(oldSig))).signerFingerprint).to.equal(oldKey.fingerprint);

      // A signing key is not a trusted key: revoking it stops new signatures, not old ones.
      await t.keys.revokeSigningKey(oldKey.id);
      expect((await rejectsWith(signer.signPackageWithDbKey(pkg, oldKey.id, kek))).code).to.equal('KEY_REVOKED');
      expect((await verifyPackage(pkg, org.id, SignatureSource.Memory(oldSig))).signerFingerprint).to.equal(oldKey.fingerprint);

      await t.keys.revokeTrustedKey(oldTrusted.id);
      const after = await candidatesFor([], oldSig.packageHash, trust(org.id));
      expect(after[0].publicKey).to.equal(undefined);
      expect((await verifyPackage(pkg, org.id, SignatureSource.Database)).signerFingerprint).to.equal(newKey.fingerprint);
      expect((await rejectsWith(verifyPackage(pkg, org.id, SignatureSource.Memory(oldSig)))).code).to.equal('UNTRUSTED_SIGNER');
      expect((await verifyPackage(pkg, org.id, SignatureSource.Memory(newSig))).signerFingerprint).to.equal(newKey.fingerprint);
      const failures = await listAuditEvents(t.db, { orgId: org.id, eventType: 'package.sign.failure' });
      expect(failures[0].reason).to.match(/^KEY_REVOKED/);
    });
  });

  describe('when the sealed key or the KEK is wrong', () => {
    it('it refuses a ciphertext moved to another row and a wrong KEK, and the KEK never appears in errors or audit', async () => {
      const { key: a } = await orgWithKey('a');
      const { key: b } = await orgWithKey('b');
      const pkg = writePackage(dir.join(`${t.unique('pkg')}.so`));
      const sealedA = (await t.keys.sealedSigningKey(a.id)).sealedPrivateKey;
      const sealedB = (await t.keys.sealedSigningKey(b.id)).sealedPrivateKey;
      await t.db.knex('signing_keys').where({ id: b.id }).update({ sealed_private_key: sealedA });
      const moved = await rejectsWith(signer.signPackageWithDbKey(pkg, b.id, kek));
      expect(moved.code).to.equal('KEY_UNSEAL_FAILED');
      await t.db.knex('signing_keys').where({ id: b.id }).update({ sealed_private_key: sealedB });
      await signer.signPackageWithDbKey(pkg, b.id, kek);

      const wrongKek = randomBytes(32);
      const wrong = await rejectsWith(signer.signPackageWithDbKey(pkg, a.id, wrongKek));
      expect(wrong.code).to.equal('KEY_UNSEAL_FAILED');
      const rows = JSON.stringify(await t.db.knex('audit_events').select('*'));
      for (const secret of [kek, wrongKek]) {
        for (const text of [secret.toString('hex'), secret.toString('base64')]) {
          expect(wrong.message + moved.message).not.to.include(text);
          expect(rows).not.to.include(text);
        }
      }
    });
  });

  describe('when an audit destination is a stream', () => {
    it('it writes one JSON line per event with the documented fields', async () => {
      const lines: string[] = [];
      const stream = new (require('node:stream').Writable)({
        write(chunk: Buffer, _: string, done: () => void) {
          lines.push(...chunk.toString().trim().split('\n'));
          done();
        },
      });
      const { org, key } = await orgWithKey('lines');
      const pkg = writePackage(dir.join(`${t.unique('pkg')}.so`));
      const keys = new DbKeyManager(t.db, { audit: auditToStream(stream) });
      const signed = await new DbPackageSigner(keys).signPackageWithDbKey(pkg, key.id, kek);
      await createPackageLoader({ trust: trust(org.id), audit: [auditToDatabase(t.db), auditToStream(stream)] }).verify(pkg, {
        signature: SignatureSource.Memory(signed),
      });
      const events = lines.map((line) => JSON.parse(line));
      expect(events.map((e) => e.event_type)).to.deep.equal(['package.signed', 'verification.success']);
      expect(events[1]).to.include({
        org_id: org.id,
        package_path: pkg,
        package_hash: signed.packageHash,
        signer_fingerprint: key.fingerprint,
        signature_verified: true,
      });
      expect(events[1]).to.have.property('timestamp').that.matches(/Z$/);
      expect(events[1]).to.have.property('reason', null);
    });
  });
});
