// `keys rewrap` reports exactly the keys it re-sealed, and separately the keys already under the new KEK.
// The suite's database holds only the keys made here; the tests run in order on the same keys (a first
// run, a repeated run, a run back to the first KEK).
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { kekId } from '../../src/keys/kek';
import { native } from '../../src/native';
import { runCli } from '../helpers';
import { describeEngines } from './engines';

describeEngines('keys rewrap reporting', (t) => {
  const oldKek = randomBytes(32);
  const newKek = randomBytes(32);
  let toReseal: string[] = [];
  let alreadyDone = '';

  const rewrap = (from: Buffer, to: Buffer, json: boolean) =>
    runCli(['keys', 'rewrap', '--new-kek-env', 'NEW_KEK', '--database', t.url, ...(json ? ['--json'] : [])], {
      CLOACINA_DATABASE_URL: '',
      CLOACINA_AUDIT_LOG: 'off',
      CLOACINA_KEY_ENCRYPTION_KEY: from.toString('base64'),
      NEW_KEK: to.toString('base64'),
    });

  before(async () => {
    const org = await t.keys.createOrganization(t.unique('rewrap'));
    const keys = [];
    for (const name of ['a', 'b', 'c']) keys.push(await t.keys.createSigningKey(org.id, name, oldKek));
    // An interrupted earlier run: the last key is already sealed under the new KEK.
    const done = await t.keys.sealedSigningKey(keys[2].id);
    const resealed = native.rewrapSealedKey(oldKek, newKek, done.sealedPrivateKey, { keyId: done.id, orgId: done.orgId }, done.publicKey);
    await t.db
      .knex('signing_keys')
      .where({ id: done.id })
      .update({ sealed_private_key: resealed, kek_id: kekId(newKek) });
    toReseal = [keys[0].id, keys[1].id].sort();
    alreadyDone = keys[2].id;
  });

  it('when keys are under the old KEK and one already under the new, --json lists exactly the re-sealed ids and, separately, the one already done', () => {
    const result = rewrap(oldKek, newKek, true);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.json()).to.deep.equal({
      rewrapped: 2,
      rewrappedKeyIds: toReseal,
      alreadyRewrapped: 1,
      alreadyRewrappedKeyIds: [alreadyDone],
      oldKekId: kekId(oldKek),
      newKekId: kekId(newKek),
    });
  });

  it('when run again, it re-seals nothing and lists every key as already re-sealed', () => {
    const result = rewrap(oldKek, newKek, true);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.json().rewrappedKeyIds).to.deep.equal([]);
    expect(result.json().rewrapped).to.equal(0);
    expect(result.json().alreadyRewrappedKeyIds).to.deep.equal([...toReseal, alreadyDone].sort());
  });

  it('when run again without --json, it says it re-sealed 0 keys and prints no id', () => {
    const result = rewrap(oldKek, newKek, false);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stderr).to.include('Re-sealed 0 key(s)').and.include('3 already were');
    expect(result.stdout.trim()).to.equal('');
  });

  it('when re-sealing without --json, it says how many and prints each re-sealed id on its own line', () => {
    const result = rewrap(newKek, oldKek, false);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stderr).to.include('Re-sealed 3 key(s)').and.include('0 already were');
    expect(result.stdout.trim().split('\n')).to.deep.equal([...toReseal, alreadyDone].sort());
  });

  it('when re-sealing through the API, the result names the keys it re-sealed', async () => {
    const result = await t.keys.rewrap(oldKek, newKek);
    expect(result.rewrappedKeyIds).to.deep.equal([...toReseal, alreadyDone].sort());
    expect(result.alreadyRewrappedKeyIds).to.deep.equal([]);
  });
});
