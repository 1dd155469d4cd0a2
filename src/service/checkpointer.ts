// `serve --checkpoint-key-id --checkpoint-every`: the service signs a checkpoint of the audit chain at every
// interval in which the chain grew, as `audit checkpoint` does (src/audit/checkpoint-issue.ts).
//
// Each tick reads the row with the highest seq once (its seq and hash come from the same committed row), and
// verifies the chain up to exactly that row before signing it: the whole chain at the first checkpoint, then
// only the rows after the last position this process verified (kept in memory). Appends are serialized by the
// chain head, so committed rows always form a prefix of the chain, whatever other processes append meanwhile;
// every checkpoint of any process is a prefix of every larger one.
//
// "Grew" leaves out the audit.checkpoint.issued rows: the row a checkpoint appends does not make the next
// interval sign again, or an idle service would sign one checkpoint per interval forever; that row is covered
// by the next checkpoint that something else makes necessary.
//
// A failure (database down, chain broken, key revoked meanwhile) is logged, never thrown, and tried again at
// the next interval; a broken chain is never signed.
import type { ChainHead } from '../audit/chain';
import { lastChainRow, verifyAuditChain, verifyChainSegment } from '../audit/chain-verify';
import { CHECKPOINT_ISSUED, CHECKPOINTS_TABLE, checkpointKey, latestCheckpoint, signCheckpoint } from '../audit/checkpoint-issue';
import type { AuditSink } from '../audit/sink';
import type { Database } from '../db/database';
import { CloacinaSignError } from '../errors';
import type { Kek } from '../keys/kek';
import type { LogFields } from './context';

export interface CheckpointSchedule {
  /** An audit-checkpoint key. */
  keyId: string;
  /** The interval, in ms. */
  everyMs: number;
}

type Log = (level: 'info' | 'warn' | 'error', message: string, fields?: LogFields) => void;

/** A chain that does not verify: never signed. */
class BrokenChain extends Error {}

export class Checkpointer {
  /** The last chain position this process verified. */
  private verified: ChainHead | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly db: Database,
    private readonly kek: Kek,
    private readonly schedule: CheckpointSchedule,
    private readonly log: Log,
    private readonly auditLines: readonly AuditSink[] = [],
  ) {}

  /** At start-up: the key must be an audit-checkpoint key, not revoked, that the KEK opens; a CloacinaSignError otherwise. */
  async checkKey(): Promise<void> {
    try {
      await checkpointKey(this.db, this.kek, this.schedule.keyId, { unseal: true });
    } catch (error) {
      if (error instanceof CloacinaSignError) {
        throw new CloacinaSignError(error.code, `--checkpoint-key-id cannot make audit checkpoints: ${error.message}`, { cause: error });
      }
      throw error;
    }
  }

  /** Ticks every interval from now on. */
  start(): void {
    this.scheduleNext();
  }

  private scheduleNext(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.tick().finally(() => {
        this.running = undefined;
        this.scheduleNext();
      });
    }, this.schedule.everyMs);
  }

  /** Stops ticking and waits for a checkpoint in flight (the caller bounds the wait). */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One interval: a checkpoint if the chain grew. Never throws. */
  async tick(): Promise<void> {
    try {
      await this.checkpoint();
    } catch (error) {
      const fields: LogFields = { retryInMs: this.schedule.everyMs };
      if (error instanceof BrokenChain) {
        this.log('error', 'audit chain not intact: no checkpoint signed', { ...fields, problem: error.message });
      } else if (error instanceof CloacinaSignError) {
        this.log('error', 'audit checkpoint failed', { ...fields, code: error.code, error: error.message.slice(0, 300) });
      } else {
        // Not ours, so not known to be clean: its message stays out of the log.
        this.log('error', 'audit checkpoint failed', { ...fields, code: 'INTERNAL', error: error instanceof Error ? error.name : 'unknown' });
      }
    }
  }

  private async checkpoint(): Promise<void> {
    const { db } = this;
    const latest = await latestCheckpoint(db);
    const after = latest?.seq ?? 0;
    const grew = await db.run((knex) => knex('audit_events').where('seq', '>', after).whereNot('event_type', CHECKPOINT_ISSUED).first('id'));
    if (!grew) return;
    // The key may have been revoked since start-up: checked at every checkpoint, as `audit checkpoint` does.
    const key = await checkpointKey(db, this.kek, this.schedule.keyId);
    if (!this.verified) {
      const report = await verifyAuditChain(db);
      if (report.problem || report.headSeq === null || report.headHash === null) {
        throw new BrokenChain(report.problem ? `${report.problem.kind} at seq ${report.problem.seq ?? '-'}: ${report.problem.message}` : 'no chain head');
      }
      this.verified = { seq: report.headSeq, hash: report.headHash };
    }
    // Read once: the checkpoint covers exactly this row and the rows before it.
    const last = await lastChainRow(db);
    if (!last || last.seq < after) throw new BrokenChain(`the chain ends at seq ${last?.seq ?? 0}, before the checkpoint at seq ${after}`);
    const problem = await verifyChainSegment(db, this.verified, last);
    if (problem) throw new BrokenChain(`${problem.kind} at seq ${problem.seq ?? '-'}: ${problem.message}`);
    this.verified = { seq: last.seq, hash: last.hash };
    // The chain must still hold the head of the latest checkpoint: a checkpoint inconsistent with it is never signed.
    if (latest) {
      const at = (await db.run((knex) => knex('audit_events').where({ seq: latest.seq }).first('row_hash'))) as { row_hash?: unknown } | undefined;
      if (latest.seq > 0 && at?.row_hash !== latest.hash) {
        throw new BrokenChain(`the row at seq ${latest.seq} no longer has the head ${latest.hash} of the latest checkpoint in ${CHECKPOINTS_TABLE}`);
      }
    }
    const issued = await signCheckpoint(db, this.kek, key, last, { auditLines: this.auditLines });
    this.log('info', 'audit checkpoint issued', { id: issued.id, origin: issued.origin, size: issued.size, head: issued.headHash });
  }
}
