// `audit witness`: cosigns a checkpoint (c2sp.org/tlog-cosignature) only when it is consistent with the last
// one this witness cosigned: same log, no fewer rows, and the database's chain holds both heads (the older
// one a prefix of the newer). A log that shows different histories to different parties (a fork) or moves
// back (a rollback) then cannot get both views cosigned. The cosigned message is built and signed in Rust.
import type { Database } from '../db/database';
import { CloacinaSignError } from '../errors';
import { verifyAuditChain } from './chain-verify';
import { storedOrigin } from './checkpoint-issue';
import { headOf, parseCheckpoint, verifyCheckpointSignatures } from './checkpoint-note';
import { readWitnessState, type WitnessState, writeWitnessState } from './witness-state';

export interface WitnessRequest {
  note: string;
  /** The witness's Ed25519 private key (32-byte seed). */
  witnessKey: Buffer;
  /** The witness's key name (in the cosignature line). */
  witnessName: string;
  statePath: string;
  /** Keys the checkpoint must be signed with (raw Ed25519). */
  originKeys: readonly Buffer[];
}

export type WitnessOutcome =
  | { cosigned: true; note: string; origin: string; size: number; head: string; time: number }
  | { cosigned: false; kind: 'origin' | 'rollback' | 'fork' | 'inconsistent'; message: string };

export async function witnessCheckpoint(db: Database, request: WitnessRequest): Promise<WitnessOutcome> {
  if (request.originKeys.length === 0) throw new CloacinaSignError('USAGE', 'witnessing needs an --origin-key to check the checkpoint signature');
  const checkpoint = parseCheckpoint(request.note);
  verifyCheckpointSignatures(checkpoint, request.originKeys);
  const { origin, size, headHash: head } = checkpoint;
  const databaseOrigin = await storedOrigin(db);
  if (databaseOrigin !== undefined && databaseOrigin !== origin) {
    return { cosigned: false, kind: 'origin', message: `the checkpoint is of ${origin}, but this database's audit log is ${databaseOrigin}` };
  }
  const last = await readWitnessState(request.statePath);
  if (last) {
    const refusal = againstLast(last, origin, size, head);
    if (refusal) return refusal;
  }
  const current = await verifyAuditChain(db, { expectHead: headOf(checkpoint) });
  if (current.problem) {
    return {
      cosigned: false,
      kind: 'inconsistent',
      message: `the database's chain does not hold the checkpoint's head ${head} at ${size} row(s): ${current.problem.message}`,
    };
  }
  if (last) {
    const earlier = await verifyAuditChain(db, { expectHead: { seq: last.size, hash: last.head } });
    if (earlier.problem) {
      return {
        cosigned: false,
        kind: 'fork',
        message: `fork: the chain at ${size} row(s) (head ${head}) does not extend the one cosigned at ${last.size} row(s) (head ${last.head}): ${earlier.problem.message}`,
      };
    }
  }
  const time = Math.floor(Date.now() / 1000);
  const { native } = await import('../native');
  const line = native.cosignCheckpoint(request.witnessKey, request.witnessName, time, checkpoint.text);
  // Remembered before the cosignature leaves: a cosigned checkpoint is always one the next check starts from.
  await writeWitnessState(request.statePath, { origin, size, head });
  return { cosigned: true, note: `${request.note}${line}`, origin, size, head, time };
}

function againstLast(last: WitnessState, origin: string, size: number, head: string): WitnessOutcome | undefined {
  if (last.origin !== origin) {
    return { cosigned: false, kind: 'origin', message: `this witness cosigns ${last.origin}, not ${origin}` };
  }
  if (size < last.size) {
    return {
      cosigned: false,
      kind: 'rollback',
      message: `rollback: the checkpoint has ${size} row(s) (head ${head}), fewer than the ${last.size} row(s) cosigned before (head ${last.head})`,
    };
  }
  if (size === last.size && head !== last.head) {
    return { cosigned: false, kind: 'fork', message: `fork: at ${size} row(s) the checkpoint's head is ${head}, but the head cosigned before is ${last.head}` };
  }
  return undefined;
}
