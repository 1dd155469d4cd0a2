// KEK rotation: re-seal every private key under a new KEK. Every row is checked under the old KEK before
// anything is written; then one transaction per row. Rows already under the new KEK are skipped, so an
// interrupted run can simply be repeated. The operator switches the configured KEK source afterwards.
// The result names exactly the keys this run re-sealed (a row re-sealed meanwhile by a concurrent run
// counts as already re-sealed, not as this run's).
import { listSealedSigningKeys, readSealedSigningKeyIn, resealSigningKey } from '../db/keys';
import { CloacinaSignError } from '../errors';
import { native } from '../native';
import type { DbKeyManager } from './db-key-manager';
import { type Kek, kekId } from './kek';

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
  const keys = await listSealedSigningKeys(manager.db);
  const todo = keys.filter((key) => key.kekId !== newId);
  for (const key of todo) {
    if (key.kekId !== oldId) {
      throw new CloacinaSignError(
        'KEY_UNSEAL_FAILED',
        `signing key ${key.id} is sealed under KEK id ${key.kekId}, not the current KEK (id ${oldId}): nothing was changed`,
      );
    }
    await native.checkSealedKeyUnder(oldKek, key.sealedPrivateKey, { keyId: key.id, orgId: key.orgId }, key.publicKey);
  }
  const rewrappedKeyIds: string[] = [];
  const alreadyRewrappedKeyIds: string[] = keys.filter((key) => key.kekId === newId).map((key) => key.id);
  for (const { id } of todo) {
    const outcome = await manager.write<'rewrapped' | 'already' | 'gone'>('', async (trx) => {
      const key = await readSealedSigningKeyIn(trx, id);
      if (!key) return [undefined, 'gone'];
      if (key.kekId === newId) return [undefined, 'already'];
      const binding = { keyId: key.id, orgId: key.orgId };
      const sealed = await native.rewrapSealedKeyBetween(oldKek, newKek, key.sealedPrivateKey, binding, key.publicKey);
      if (!(await resealSigningKey(trx, id, oldId, sealed, newId))) return [undefined, 'already'];
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
    if (outcome === 'rewrapped') rewrappedKeyIds.push(id);
    else if (outcome === 'already') alreadyRewrappedKeyIds.push(id);
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
