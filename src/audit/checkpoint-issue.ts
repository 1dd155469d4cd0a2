// `audit checkpoint` and the signing service's checkpoints: signs the head of an intact audit chain with an
// audit-checkpoint key (inside Rust) and keeps the signed note in audit_checkpoints. Copies kept outside the
// database are what make it useful: `audit verify --checkpoint` then proves the chain still starts with the
// rows the checkpoint covered.
//
// Every checkpoint is stored with an `audit.checkpoint.issued` row, appended in the same transaction, after
// the head the checkpoint covers (so the next checkpoint covers it). Issuers take turns: on PostgreSQL a lock
// on audit_checkpoints (which no other writer takes), on SQLite the database's write lock. So the first
// checkpoint of a database chooses its origin once, even when several processes issue their first one at
// the same moment, and every later one reads it back.
import type { Knex } from 'knex';
import type { Database } from '../db/database';
import { newId, nowIso } from '../db/ids';
import { readSealedCheckpointKey, type SealedSigningKey } from '../db/keys';
import { CloacinaSignError } from '../errors';
import { type Kek, kekId } from '../keys/kek';
import { auditEvent } from './audit-trail';
import type { ChainHead } from './chain';
import { lockHead } from './chain-append';
import { verifyAuditChain } from './chain-verify';
import { type CheckpointBody, checkpointText, ORIGIN_PREFIX, signedNote } from './checkpoint-note';
import { auditToDatabase, type DatabaseAuditSink } from './database-sink';
import type { AuditEvent } from './events';
import type { AuditSink } from './sink';

export const CHECKPOINTS_TABLE = 'audit_checkpoints';
export const CHECKPOINT_ISSUED = 'audit.checkpoint.issued';

export interface IssuedCheckpoint extends CheckpointBody {
  id: string;
  keyId: string;
  note: string;
}

/** A stored checkpoint's position and note. */
export interface StoredCheckpoint extends ChainHead {
  note: string;
}

function originIn(knex: Knex | Knex.Transaction): Promise<{ origin: unknown } | undefined> {
  return knex(CHECKPOINTS_TABLE)
    .orderBy([{ column: 'created_at' }, { column: 'id' }])
    .first('origin');
}

/** This database's audit log origin: the one of its first checkpoint, if any. */
export async function storedOrigin(db: Database): Promise<string | undefined> {
  const first = await db.run((knex) => originIn(knex));
  return first ? String(first.origin) : undefined;
}

/** The latest stored checkpoint: the one covering the most rows, the newest of those; undefined when none was issued. */
export async function latestCheckpoint(db: Database): Promise<StoredCheckpoint | undefined> {
  const row = (await db.run((knex) =>
    knex(CHECKPOINTS_TABLE)
      .orderBy([
        { column: 'seq', order: 'desc' },
        { column: 'created_at', order: 'desc' },
        { column: 'id', order: 'desc' },
      ])
      .first('seq', 'head_hash', 'note'),
  )) as { seq: unknown; head_hash: unknown; note: unknown } | undefined;
  return row ? { seq: Number(row.seq), hash: String(row.head_hash), note: String(row.note) } : undefined;
}

/**
 * The audit-checkpoint key `keyId`, usable with `kek`: NOT_FOUND without it, INVALID_KEY for a package key,
 * KEY_REVOKED for a revoked one, KEY_UNSEAL_FAILED when another KEK seals it. With `unseal`, the KEK must
 * also open it (inside Rust; nothing is signed).
 */
export async function checkpointKey(db: Database, kek: Kek, keyId: string, options: { unseal?: boolean } = {}): Promise<SealedSigningKey> {
  const key = await readSealedCheckpointKey(db, keyId);
  if (key.revokedAt) throw new CloacinaSignError('KEY_REVOKED', `signing key ${keyId} was revoked at ${key.revokedAt} and cannot sign`);
  if (key.kekId !== kekId(kek)) {
    throw new CloacinaSignError('KEY_UNSEAL_FAILED', `the key-encryption key (id ${kekId(kek)}) is not the one sealing key ${keyId} (id ${key.kekId})`);
  }
  if (options.unseal) {
    const { native } = await import('../native');
    await native.checkSealedKeyUnder(kek, key.sealedPrivateKey, { keyId: key.id, orgId: key.orgId }, key.publicKey);
  }
  return key;
}

/**
 * Issues a checkpoint of the chain's head with the audit-checkpoint key `keyId` (see checkpointKey for the
 * key's errors; INVALID_INPUT when the chain is not intact: a broken chain is never vouched for). The whole
 * chain is verified first.
 */
export async function issueCheckpoint(db: Database, kek: Kek, keyId: string, options: { auditLines?: readonly AuditSink[] } = {}): Promise<IssuedCheckpoint> {
  const key = await checkpointKey(db, kek, keyId);
  const report = await verifyAuditChain(db);
  if (report.problem || report.headSeq === null || report.headHash === null) {
    throw new CloacinaSignError('INVALID_INPUT', `the audit chain is not intact, so no checkpoint was issued: ${report.problem?.message ?? 'no head'}`);
  }
  return signCheckpoint(db, kek, key, { seq: report.headSeq, hash: report.headHash }, options);
}

/**
 * Signs a checkpoint of `head`, a position of the chain the caller verified, stores it and appends its
 * `audit.checkpoint.issued` row (one transaction), then writes that event to `auditLines`.
 */
export async function signCheckpoint(
  db: Database,
  kek: Kek,
  key: SealedSigningKey,
  head: ChainHead,
  options: { auditLines?: readonly AuditSink[] } = {},
): Promise<IssuedCheckpoint> {
  const rows = auditToDatabase(db) as DatabaseAuditSink;
  const { native } = await import('../native');
  let event: AuditEvent | undefined;
  const issued = await db.run((knex) =>
    knex.transaction(async (trx) => {
      // Issuers take turns (see the top of this file); other writers are not held up on PostgreSQL.
      if (db.engine === 'postgres') await trx.raw(`lock table ${CHECKPOINTS_TABLE} in share row exclusive mode`);
      else await lockHead(trx, db.engine);
      const first = await originIn(trx);
      const origin = first ? String(first.origin) : `${ORIGIN_PREFIX}${newId()}`;
      // Whole seconds, as the timestamp line is written.
      const timestamp = nowIso().replace(/\.\d{3}Z$/, 'Z');
      const body: CheckpointBody = { origin, size: head.seq, headHash: head.hash, timestamp };
      const text = checkpointText(body);
      const line = await native.signNoteWithSealedKey(kek, key.sealedPrivateKey, { keyId: key.id, orgId: key.orgId }, key.publicKey, origin, text);
      const checkpoint: IssuedCheckpoint = { id: newId(), keyId: key.id, note: signedNote(text, line), ...body };
      await trx(CHECKPOINTS_TABLE).insert({
        id: checkpoint.id,
        origin,
        seq: checkpoint.size,
        head_hash: checkpoint.headHash,
        key_id: key.id,
        note: checkpoint.note,
        created_at: nowIso(),
      });
      event = auditEvent({
        eventType: CHECKPOINT_ISSUED,
        orgId: key.orgId,
        keyId: key.id,
        reason: `checkpoint ${checkpoint.id} of ${origin}: size ${checkpoint.size}, head ${checkpoint.headHash}`,
      });
      await rows.insertIn(trx, event);
      return checkpoint;
    }),
  );
  const lines = options.auditLines ?? [];
  if (event && lines.length > 0) {
    const written = event;
    const failed = (await Promise.allSettled(lines.map((sink) => sink.write(written)))).find((result) => result.status === 'rejected');
    if (failed) {
      const reason = (failed as PromiseRejectedResult).reason;
      throw new CloacinaSignError(
        'AUDIT_FAILED',
        `the checkpoint was stored with its audit row, but its audit line could not be written: ${reason instanceof Error ? reason.message : String(reason)}`,
        { cause: reason },
      );
    }
  }
  return issued;
}
