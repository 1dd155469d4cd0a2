// KEK rotation: re-seal every private key under a new KEK. Every row is checked under the old KEK before
// anything is written; then one transaction per row. Rows already under the new KEK are skipped, so an
// interrupted run can simply be repeated. The operator switches the configured KEK source afterwards.
// The result names exactly the keys this run re-sealed (a row re-sealed meanwhile by a concurrent run
// counts as already re-sealed, not as this run's).
import { CloacinaSignError } from '../errors';
import { native } from '../native';
import type { DbKeyManager } from './db-key-manager';
import { type Kek, kekId } from './kek';
import { signingKeyFromRow } from './records';

export interface RewrapResult {
  /** How many keys this run re-sealed (= rewrappedKeyIds.length). */
  rewrapped: number;
  /** The ids of the keys this run re-sealed, in id order. */
  rewrappedKeyIds: string[];
  /** How many keys were already sealed under the new KEK (= alreadyRewrappedKeyIds.length). */
  alreadyRewrapped: number;
  /** The ids of the keys already sealed under the new KEK, untouched by this run, in id order. */
  alreadyRewrappedKeyIds: string[];
  oldKekId: string;
  newKekId: string;
}

export async function rewrapAll(manager: DbKeyManager, oldKek: Kek, newKek: Kek): Promise<RewrapResult> {
  const oldId = kekId(oldKek);
  const newId = kekId(newKek);
  if (oldId === newId) throw new CloacinaSignError('INVALID_INPUT', 'the new key-encryption key is the same as the current one');
  const rows = await manager.db.run((knex) => knex('signing_keys').select('id', 'org_id', 'kek_id', 'public_key', 'sealed_private_key').orderBy('id'));
  const todo = rows.filter((row) => row.kek_id !== newId);
  for (const row of todo) {
    if (row.kek_id !== oldId) {
      throw new CloacinaSignError(
        'KEY_UNSEAL_FAILED',
        `signing key ${row.id} is sealed under KEK id ${row.kek_id}, not the current KEK (id ${oldId}): nothing was changed`,
      );
    }
    await native.checkSealedKeyUnder(oldKek, Buffer.from(row.sealed_private_key), { keyId: row.id, orgId: row.org_id }, Buffer.from(row.public_key));
  }
  const rewrappedKeyIds: string[] = [];
  const alreadyRewrappedKeyIds: string[] = rows.filter((row) => row.kek_id === newId).map((row) => String(row.id));
  for (const { id } of todo) {
    const outcome = await manager.write<'rewrapped' | 'already' | 'gone'>('', async (trx) => {
      const row = await trx('signing_keys').where({ id }).first();
      if (!row) return [undefined, 'gone'];
      if (row.kek_id === newId) return [undefined, 'already'];
      const binding = { keyId: row.id, orgId: row.org_id };
      const sealed = await native.rewrapSealedKeyBetween(oldKek, newKek, Buffer.from(row.sealed_private_key), binding, Buffer.from(row.public_key));
      const updated = await trx('signing_keys')
        .where({ id, kek_id: oldId })
        .update({ sealed_private_key: sealed, kek_id: newId, updated_at: new Date().toISOString() });
      if (updated !== 1) return [undefined, 'already'];
      const key = signingKeyFromRow(row);
      return [
        {
          eventType: 'key.signing.rewrapped',
          orgId: key.orgId,
          keyId: id,
          signerFingerprint: key.fingerprint,
          reason: `re-sealed from KEK id ${oldId} to ${newId}`,
        },
        'rewrapped',
      ];
    });
    if (outcome === 'rewrapped') rewrappedKeyIds.push(String(id));
    else if (outcome === 'already') alreadyRewrappedKeyIds.push(String(id));
  }
  alreadyRewrappedKeyIds.sort();
  return {
    rewrapped: rewrappedKeyIds.length,
    rewrappedKeyIds,
    alreadyRewrapped: alreadyRewrappedKeyIds.length,
    alreadyRewrappedKeyIds,
    oldKekId: oldId,
    newKekId: newId,
  };
}
