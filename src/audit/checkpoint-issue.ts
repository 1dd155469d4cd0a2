// `audit checkpoint`: signs the head of an intact audit chain with an audit-checkpoint key (inside Rust) and
// keeps the signed note in audit_checkpoints. Copies kept outside the database are what make it useful:
// `audit verify --checkpoint` then proves the chain still starts with the rows the checkpoint covered.
import type { Database } from '../db/database';
import { newId, nowIso } from '../db/ids';
import { readSealedCheckpointKey } from '../db/keys';
import { CloacinaSignError } from '../errors';
import { type Kek, kekId } from '../keys/kek';
import { type CheckpointBody, checkpointText, ORIGIN_PREFIX, signedNote } from './checkpoint-note';
import { verifyAuditChain } from './chain-verify';

export const CHECKPOINTS_TABLE = 'audit_checkpoints';

export interface IssuedCheckpoint extends CheckpointBody {
  id: string;
  keyId: string;
  note: string;
}

/** This database's audit log origin: the one of its first checkpoint, if any. */
export async function storedOrigin(db: Database): Promise<string | undefined> {
  const first = await db.run((knex) =>
    knex(CHECKPOINTS_TABLE)
      .orderBy([{ column: 'created_at' }, { column: 'id' }])
      .first('origin'),
  );
  return first ? String(first.origin) : undefined;
}

/**
 * Issues a checkpoint of the chain's head with the audit-checkpoint key `keyId`: NOT_FOUND without it,
 * INVALID_KEY for a package key, KEY_REVOKED for a revoked one, INVALID_INPUT when the chain is not intact
 * (a broken chain is never vouched for).
 */
export async function issueCheckpoint(db: Database, kek: Kek, keyId: string): Promise<IssuedCheckpoint> {
  const key = await readSealedCheckpointKey(db, keyId);
  if (key.revokedAt) throw new CloacinaSignError('KEY_REVOKED', `signing key ${keyId} was revoked at ${key.revokedAt} and cannot sign`);
  if (key.kekId !== kekId(kek)) {
    throw new CloacinaSignError('KEY_UNSEAL_FAILED', `the key-encryption key (id ${kekId(kek)}) is not the one sealing key ${keyId} (id ${key.kekId})`);
  }
  const report = await verifyAuditChain(db);
  if (report.problem || report.headSeq === null || report.headHash === null) {
    throw new CloacinaSignError('INVALID_INPUT', `the audit chain is not intact, so no checkpoint was issued: ${report.problem?.message ?? 'no head'}`);
  }
  const origin = (await storedOrigin(db)) ?? `${ORIGIN_PREFIX}${newId()}`;
  // Whole seconds, as the timestamp line is written.
  const timestamp = nowIso().replace(/\.\d{3}Z$/, 'Z');
  const body: CheckpointBody = { origin, size: report.headSeq, headHash: report.headHash, timestamp };
  const text = checkpointText(body);
  const { native } = await import('../native');
  const line = await native.signNoteWithSealedKey(kek, key.sealedPrivateKey, { keyId, orgId: key.orgId }, key.publicKey, origin, text);
  const issued: IssuedCheckpoint = { id: newId(), keyId, note: signedNote(text, line), ...body };
  await db.run((knex) =>
    knex(CHECKPOINTS_TABLE).insert({
      id: issued.id,
      origin,
      seq: issued.size,
      head_hash: issued.headHash,
      key_id: keyId,
      note: issued.note,
      created_at: nowIso(),
    }),
  );
  return issued;
}
