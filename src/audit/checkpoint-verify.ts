// `audit verify --checkpoint`: the chain must still start with the rows each signed checkpoint covered. The
// row hash has no key, so someone who can write the database can cut the newest rows and move the head back,
// or rewrite every row consistently; neither yields the head a trusted key signed. Two checkpoints that both
// hold also prove the log only grew between them (both are prefixes of the same chain).
import type { Database } from '../db/database';
import { CloacinaSignError } from '../errors';
import { type ChainReport, verifyAuditChain } from './chain-verify';
import { storedOrigin } from './checkpoint-issue';
import { headOf, type ParsedCheckpoint, parseCheckpoint, verifyCheckpointSignatures } from './checkpoint-note';
import { GENESIS_HASH } from './chain';

export interface CheckedCheckpoint {
  origin: string;
  size: number;
  headHash: string;
  timestamp: string;
}

export interface CheckpointReport extends ChainReport {
  /** The checkpoints checked, smallest first. */
  checkpoints: CheckedCheckpoint[];
}

/**
 * Reads and checks the notes (MALFORMED_SIGNATURE, INVALID_SIGNATURE, UNTRUSTED_SIGNER; INVALID_INPUT for
 * checkpoints of another log than each other or than this database's), then walks the chain once per
 * checkpoint, smallest first, requiring its head at the checkpoint's size. The report is the first walk that
 * fails, or the last one.
 */
export async function verifyAgainstCheckpoints(db: Database, notes: readonly string[], trustedKeys: readonly Buffer[]): Promise<CheckpointReport> {
  if (trustedKeys.length === 0) throw new CloacinaSignError('USAGE', '--checkpoint needs at least one --trust-key to check its signature');
  for (const key of trustedKeys) {
    if (key.length !== 32) throw new CloacinaSignError('INVALID_KEY', 'a checkpoint key must be an Ed25519 public key');
  }
  const checkpoints: ParsedCheckpoint[] = notes.map(parseCheckpoint).sort((a, b) => a.size - b.size);
  for (const checkpoint of checkpoints) {
    verifyCheckpointSignatures(checkpoint, trustedKeys);
    if (checkpoint.size === 0 && checkpoint.headHash !== GENESIS_HASH) {
      throw new CloacinaSignError('INVALID_INPUT', 'a checkpoint of an empty chain must record the genesis hash (32 zero bytes)');
    }
  }
  const origins = new Set(checkpoints.map((checkpoint) => checkpoint.origin));
  if (origins.size > 1) throw new CloacinaSignError('INVALID_INPUT', `the checkpoints are of different audit logs: ${[...origins].join(', ')}`);
  const origin = await storedOrigin(db);
  const [given] = origins;
  if (origin !== undefined && given !== undefined && given !== origin) {
    throw new CloacinaSignError('INVALID_INPUT', `the checkpoints are of the audit log ${given}, but this database's is ${origin}`);
  }
  const checked = checkpoints.map(({ origin, size, headHash, timestamp }) => ({ origin, size, headHash, timestamp }));
  let report: ChainReport | undefined;
  for (const checkpoint of checkpoints) {
    report = await verifyAuditChain(db, { expectHead: headOf(checkpoint) });
    if (report.problem) {
      if (report.problem.kind === 'rewritten') {
        report.problem.message = `the chain no longer has the head of the checkpoint of ${checkpoint.timestamp} (${checkpoint.size} rows): ${report.problem.message}`;
      }
      return { ...report, checkpoints: checked };
    }
  }
  return { ...(report ?? (await verifyAuditChain(db))), checkpoints: checked };
}
