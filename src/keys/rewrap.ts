// KEK rotation: re-seal every private key under a new KEK. Every row is checked under the old KEK before
// anything is written; then one transaction per row. Rows already under the new KEK are skipped, so an
// interrupted run can simply be repeated. The operator switches CLOACINA_KEY_ENCRYPTION_KEY afterwards.
import { CloacinaSignError } from '../errors';
import { native } from '../native';
import type { DbKeyManager } from './db-key-manager';
import { kekId } from './kek';
import { signingKeyFromRow } from './records';

export interface RewrapResult {
  rewrapped: number;
  alreadyRewrapped: number;
  oldKekId: string;
  newKekId: string;
}

export async function rewrapAll(manager: DbKeyManager, oldKek: Buffer, newKek: Buffer): Promise<RewrapResult> {
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
    native.checkSealedKey(oldKek, Buffer.from(row.sealed_private_key), { keyId: row.id, orgId: row.org_id }, Buffer.from(row.public_key));
  }
  for (const { id } of todo) {
    await manager.write('', async (trx) => {
      const row = await trx('signing_keys').where({ id }).first();
      if (!row || row.kek_id === newId) return [];
      const binding = { keyId: row.id, orgId: row.org_id };
      const sealed = native.rewrapSealedKey(oldKek, newKek, Buffer.from(row.sealed_private_key), binding, Buffer.from(row.public_key));
      await trx('signing_keys').where({ id, kek_id: oldId }).update({ sealed_private_key: sealed, kek_id: newId, updated_at: new Date().toISOString() });
      const key = signingKeyFromRow(row);
      return [
        {
          eventType: 'key.signing.rewrapped',
          orgId: key.orgId,
          keyId: id,
          signerFingerprint: key.fingerprint,
          reason: `re-sealed from KEK id ${oldId} to ${newId}`,
        },
      ];
    });
  }
  return { rewrapped: todo.length, alreadyRewrapped: rows.length - todo.length, oldKekId: oldId, newKekId: newId };
}
