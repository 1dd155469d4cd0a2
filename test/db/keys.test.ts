import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { DbKeyManager, importPublicKey } from '../../src';
import { publicKeyFingerprint } from '../../src/keys/keypair';
import { kekId } from '../../src/keys/kek';
import { rejectsWith } from '../helpers';
import { describeEngines } from './engines';

describeEngines('DbKeyManager', (t) => {
  const kek = randomBytes(32);
  const trustedBy = async (orgId: string, fingerprint: string) => (await t.keys.listTrustedKeys(orgId)).find((k) => k.fingerprint === fingerprint);

  describe('when creating organizations', () => {
    it('it lists them and refuses a duplicate name with ALREADY_EXISTS', async () => {
      const name = t.unique('acme');
      const org = await t.keys.createOrganization(name);
      expect(org.id).to.match(/^[0-9a-f-]{36}$/);
      expect((await t.keys.listOrganizations()).map((o) => o.name)).to.include(name);
      expect((await rejectsWith(t.keys.createOrganization(name))).code).to.equal('ALREADY_EXISTS');
      expect((await t.keys.getOrganization(name)).id).to.equal(org.id);
      expect((await t.keys.getOrganization(org.id)).name).to.equal(name);
    });

    it('it reads timestamps back exactly as written (ISO 8601 UTC with milliseconds)', async () => {
      const org = await t.keys.createOrganization(t.unique('time'));
      const read = await t.keys.getOrganization(org.id);
      expect(read.createdAt).to.equal(org.createdAt);
      expect(read.createdAt).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    });
  });

  describe('when creating a signing key', () => {
    it('it stores the public key, a sealed private key with a KEK id, and exports PEM, raw and fingerprint', async () => {
      const org = await t.keys.createOrganization(t.unique('org'));
      const key = await t.keys.createSigningKey(org.id, 'release', kek);
      expect(key.fingerprint).to.equal(publicKeyFingerprint(key.publicKey));
      expect(key.kekId).to.equal(kekId(kek)).and.to.have.length(16);
      expect(key.sealVersion).to.equal(1);
      expect(key).not.to.have.property('sealedPrivateKey');
      const info = await t.keys.getSigningKeyInfo(key.id);
      expect(info.createdAt).to.equal(key.createdAt);
      const exported = await t.keys.exportPublicKey(key.id);
      expect(exported.raw.equals(key.publicKey)).to.equal(true);
      expect(exported.fingerprint).to.equal(key.fingerprint);
      expect(importPublicKey(exported.pem).equals(key.publicKey)).to.equal(true);
      const sealed = await t.keys.sealedSigningKey(key.id);
      expect(sealed.sealedPrivateKey.length).to.equal(12 + 32 + 16);
      expect(sealed.sealedPrivateKey.includes(kek)).to.equal(false);
    });

    it('when two creations of the same name race, exactly one wins and the other gets ALREADY_EXISTS', async () => {
      const org = await t.keys.createOrganization(t.unique('race'));
      const other = new DbKeyManager(await t.open());
      const results = await Promise.allSettled([t.keys.createSigningKey(org.id, 'dup', kek), other.createSigningKey(org.id, 'dup', kek)]);
      expect(results.filter((r) => r.status === 'fulfilled')).to.have.length(1);
      const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(lost.reason.code).to.equal('ALREADY_EXISTS');
      expect(await t.keys.listSigningKeys(org.id)).to.have.length(1);
    });

    it('it lets a revoked key name be reused and refuses signing-key operations on unknown ids', async () => {
      const org = await t.keys.createOrganization(t.unique('reuse'));
      const first = await t.keys.createSigningKey(org.id, 'k', kek);
      await t.keys.revokeSigningKey(first.id);
      expect((await rejectsWith(t.keys.revokeSigningKey(first.id))).code).to.equal('KEY_REVOKED');
      const second = await t.keys.createSigningKey(org.id, 'k', kek);
      expect((await t.keys.listSigningKeys(org.id)).map((k) => [k.id, k.revokedAt !== null])).to.deep.equal([
        [first.id, true],
        [second.id, false],
      ]);
      expect((await rejectsWith(t.keys.getSigningKeyInfo('00000000-0000-4000-8000-000000000000'))).code).to.equal('NOT_FOUND');
      expect((await rejectsWith(t.keys.createSigningKey('00000000-0000-4000-8000-000000000000', 'x', kek))).code).to.equal('NOT_FOUND');
    });

    it('with a different KEK than the existing keys it fails with KEY_UNSEAL_FAILED and writes nothing', async () => {
      const org = await t.keys.createOrganization(t.unique('wrongkek'));
      const wrong = randomBytes(32);
      const error = await rejectsWith(t.keys.createSigningKey(org.id, 'k', wrong));
      expect(error.code).to.equal('KEY_UNSEAL_FAILED');
      expect(error.message).not.to.include(wrong.toString('hex'));
      expect(error.message).not.to.include(wrong.toString('base64'));
      expect(await t.keys.listSigningKeys(org.id)).to.have.length(0);
    });
  });

  describe('when trusting public keys', () => {
    it('it trusts raw and PEM keys, refuses a duplicate, and allows trusting again after revocation', async () => {
      const org = await t.keys.createOrganization(t.unique('trust'));
      const source = await t.keys.createOrganization(t.unique('src'));
      const key = await t.keys.createSigningKey(source.id, 'k', kek);
      const trusted = await t.keys.trustPublicKey(org.id, key.publicKey, 'partner');
      expect(trusted.fingerprint).to.equal(key.fingerprint);
      expect((await trustedBy(org.id, key.fingerprint))?.id).to.equal(trusted.id);
      expect((await rejectsWith(t.keys.trustPublicKeyPem(org.id, (await t.keys.exportPublicKey(key.id)).pem))).code).to.equal('ALREADY_EXISTS');
      await t.keys.revokeTrustedKey(trusted.id);
      expect(await trustedBy(org.id, key.fingerprint)).to.equal(undefined);
      const again = await t.keys.trustPublicKeyPem(org.id, (await t.keys.exportPublicKey(key.id)).pem, 'partner');
      expect(again.id).not.to.equal(trusted.id);
      expect((await trustedBy(org.id, key.fingerprint))?.id).to.equal(again.id);
      expect((await t.keys.listTrustedKeyRows(org.id)).map((k) => k.revokedAt === null)).to.deep.equal([false, true]);
    });

    it('it resolves trust through grants: one level, two levels, a cycle, and stops after revocation', async () => {
      const [root, sub, team] = await Promise.all(['root', 'sub', 'team'].map((n) => t.keys.createOrganization(t.unique(n))));
      const key = await t.keys.createSigningKey(team.id, 'team-key', kek);
      // A signing key is not a trusted key: creating one changes what nobody trusts.
      expect(await t.keys.listTrustedKeys(team.id)).to.deep.equal([]);
      await t.keys.trustPublicKey(team.id, key.publicKey, 'team-key');
      const own = (await t.keys.listTrustedKeys(team.id)).map((k) => k.fingerprint);
      expect(own).to.deep.equal([key.fingerprint]);
      expect(await trustedBy(root.id, key.fingerprint)).to.equal(undefined);
      await t.keys.grantTrust(sub.id, team.id);
      expect((await trustedBy(sub.id, key.fingerprint))?.inheritedFrom).to.equal(team.id);
      expect((await trustedBy(sub.id, key.fingerprint))?.path).to.deep.equal([sub.id, team.id]);
      expect(await trustedBy(root.id, key.fingerprint)).to.equal(undefined);
      await t.keys.grantTrust(root.id, sub.id);
      expect((await trustedBy(root.id, key.fingerprint))?.inheritedFrom).to.equal(team.id);
      expect((await trustedBy(root.id, key.fingerprint))?.path).to.deep.equal([root.id, sub.id, team.id]);
      await t.keys.grantTrust(team.id, root.id); // a cycle
      expect((await t.keys.listTrustedKeys(root.id)).map((k) => k.fingerprint)).to.deep.equal([key.fingerprint]);
      expect((await rejectsWith(t.keys.grantTrust(root.id, sub.id))).code).to.equal('ALREADY_EXISTS');
      await t.keys.revokeTrust(root.id, sub.id);
      expect(await trustedBy(root.id, key.fingerprint)).to.equal(undefined);
      expect((await rejectsWith(t.keys.revokeTrust(root.id, sub.id))).code).to.equal('NOT_FOUND');
      await t.keys.grantTrust(root.id, sub.id); // granted again
      expect(await trustedBy(root.id, key.fingerprint)).not.to.equal(undefined);
    });
  });

  describe('when rewrapping under a new KEK', () => {
    it('it re-seals every key so only the new KEK opens them, and refuses a wrong old KEK without writing', async () => {
      const manager = t.keys;
      const org = await manager.createOrganization(t.unique('rewrap'));
      const key = await manager.createSigningKey(org.id, 'k', kek);
      const before = (await manager.sealedSigningKey(key.id)).sealedPrivateKey;
      const wrong = await rejectsWith(manager.rewrap(randomBytes(32), randomBytes(32)));
      expect(wrong.code).to.equal('KEY_UNSEAL_FAILED');
      expect((await manager.sealedSigningKey(key.id)).sealedPrivateKey.equals(before)).to.equal(true);

      const newKek = randomBytes(32);
      const result = await manager.rewrap(kek, newKek);
      expect(result.rewrapped).to.be.greaterThan(0);
      const after = await manager.sealedSigningKey(key.id);
      expect(after.kekId).to.equal(kekId(newKek));
      expect(after.sealedPrivateKey.equals(before)).to.equal(false);
      // Rewrap back so the rest of the suite keeps its KEK; a repeated run skips done rows.
      expect((await manager.rewrap(newKek, kek)).rewrapped).to.equal(result.rewrapped);
      expect((await manager.rewrap(newKek, kek)).rewrapped).to.equal(0);
    });
  });
});
