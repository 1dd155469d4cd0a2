import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { databaseSigner, signPackage } from '../../src';
import { rejectsWith, tempDir } from '../helpers';
import { describeEngines } from './engines';

describeEngines('databaseSigner', (t) => {
  const kek = randomBytes(32);
  const rows = async (keyId: string) =>
    (await t.db.run((knex) => knex('audit_events').where({ key_id: keyId }).orderBy('seq').select('event_type', 'package_hash', 'package_path'))) as {
      event_type: string;
      package_hash: string | null;
      package_path: string | null;
    }[];

  it('when a library caller signs with a key manager key, the signing is audited as package.signed with what was signed', async () => {
    const org = await t.keys.createOrganization(t.unique('lib'));
    const key = await t.keys.createSigningKey(org.id, 'release', kek);
    const path = tempDir().join('libworkflow.so');
    writeFileSync(path, randomBytes(1024));
    const signed = await signPackage(path, databaseSigner({ keys: t.keys, keyId: key.id, kek }));
    const events = (await rows(key.id)).filter((row) => row.event_type.startsWith('package.'));
    expect(events).to.deep.equal([{ event_type: 'package.signed', package_hash: signed.packageHash, package_path: path }]);
  });

  it('when the key cannot sign (a wrong KEK), the refusal is audited as package.sign.failure', async () => {
    const org = await t.keys.createOrganization(t.unique('lib'));
    const key = await t.keys.createSigningKey(org.id, 'release', kek);
    const path = tempDir().join('libworkflow.so');
    writeFileSync(path, randomBytes(1024));
    const error = await rejectsWith(signPackage(path, databaseSigner({ keys: t.keys, keyId: key.id, kek: randomBytes(32) })));
    expect(error.code).to.equal('KEY_UNSEAL_FAILED');
    expect((await rows(key.id)).map((row) => row.event_type)).to.include('package.sign.failure');
    expect((await rows(key.id)).map((row) => row.event_type)).not.to.include('package.signed');
  });
});
