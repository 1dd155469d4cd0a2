import { expect } from 'chai';
import { auditToDatabase, createPackageLoader, databaseTrust, generateKeypair, signPackage, SignatureSource } from '../../src';
import { DbPackageSigner } from '../../src/signing/db-signer';
import { CHANGE_CHANNEL } from '../../src/db/transaction';
import { LISTENER_APPLICATION_NAME, PgListener } from '../../src/db/pg-listener';
import { tempDir, waitUntil } from '../helpers';
import { writePackage } from '../fixtures/random-package';
import { describeEngines } from './engines';
import { startWatcher } from './watcher';

describeEngines('hot reload of trust', (t) => {
  const dir = tempDir();
  after(() => dir.cleanup());

  if (t.engine === 'postgres') {
    it('when the LISTEN connection is lost it reconnects, and notifications apply again', async () => {
      let changes = 0;
      const listener = new PgListener(
        t.url,
        () => {
          changes += 1;
        },
        5000,
      );
      await listener.start();
      try {
        expect(listener.listening).to.equal(true);
        await t.db.knex.raw('select pg_terminate_backend(pid) from pg_stat_activity where application_name = ? and datname = current_database()', [
          LISTENER_APPLICATION_NAME,
        ]);
        await waitUntil(() => !listener.listening, 'the listener notices its connection is gone');
        await waitUntil(() => listener.listening, 'the listener has reconnected');
        const before = changes;
        await t.db.knex.raw('select pg_notify(?, ?)', [CHANGE_CHANNEL, '']);
        await waitUntil(() => changes > before, 'a notification arrives on the new connection');
      } finally {
        await listener.stop();
      }
      expect(listener.listening).to.equal(false);
    });
  }

  it('when a trusted key is revoked it takes effect at once in this process and within 1 s in a second process', async () => {
    const org = await t.keys.createOrganization(t.unique('hot'));
    const vendor = generateKeypair();
    const trusted = await t.keys.trustPublicKey(org.id, vendor.publicKey, 'vendor');
    const pkg = writePackage(dir.join('hot.so'));
    await new DbPackageSigner(t.keys).storeSignature(await signPackage(pkg, vendor.privateKey));
    const loader = createPackageLoader({ trust: databaseTrust(t.db, { org: org.id }), audit: auditToDatabase(t.db) });
    await loader.verify(pkg, { signature: SignatureSource.Database });

    const watcher = startWatcher([t.url, pkg, org.id]);
    try {
      expect(await watcher.next()).to.deep.equal({ event: 'ready' });
      // Let the watcher's cache warm up and its last check age a little.
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Measured from before the revocation starts: an upper bound on commit-to-observation.
      const revokedAt = Date.now();
      await t.keys.revokeTrustedKey(trusted.id);
      const here = (await loader.verify(pkg, { signature: SignatureSource.Database }).then(
        () => ({ code: 'VERIFIED' }),
        (error: unknown) => error,
      )) as { code: string };
      expect(here.code).to.equal('UNTRUSTED_SIGNER');
      const seen = await watcher.next();
      expect(seen.event).to.equal('rejected');
      expect(seen.code).to.equal('UNTRUSTED_SIGNER');
      const delay = seen.at - revokedAt;
      console.log(`      (${t.engine}: the second process saw the revocation after ${delay} ms)`);
      expect(delay).to.be.at.most(1000);
    } finally {
      watcher.child.kill();
    }
  });
});
