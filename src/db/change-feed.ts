// Hot reload: a generation number that moves whenever trust, keys or stored signatures may have changed.
// Caches keep the generation they were filled at and are used only while it is current.
//  - Writes through this process move it at once.
//  - Other processes: every write transaction increments change_version.version; when the last check is
//    older than maxStalenessMs (250 ms), the next lookup re-reads that one row before using any cache.
//  - PostgreSQL additionally LISTENs on the change channel, so notified changes apply without waiting.
// A cache is therefore never used more than maxStalenessMs (+ one query) after a change was committed.
// The check is shared by every concurrent lookup and bounded by the database's timeout: a database that
// stops answering fails lookups with DATABASE_UNAVAILABLE (caches are never used unchecked), and the next
// lookup tries again.
import type { Database } from './database';
import { PgListener } from './pg-listener';

export const DEFAULT_MAX_STALENESS_MS = 250;

export class ChangeFeed {
  private generationValue = 0;
  private dbVersion: string | undefined;
  private checkedAt = 0;
  private checking: Promise<void> | undefined;
  private listener: PgListener | undefined;
  private readonly maxStalenessMs: number;
  private readonly listen: boolean;

  constructor(
    private readonly db: Database,
    options: { maxStalenessMs?: number; listen?: boolean } = {},
  ) {
    this.maxStalenessMs = Math.min(options.maxStalenessMs ?? DEFAULT_MAX_STALENESS_MS, 1000);
    this.listen = options.listen ?? true;
  }

  /** The current generation, after re-checking the database if the last check is too old. */
  async current(): Promise<number> {
    if (this.listen && this.db.engine === 'postgres' && !this.listener) {
      // Started in the background: the version check below is the safety net, so a listener that
      // cannot connect (or a server that stalls) never holds a verification up.
      this.listener = new PgListener(this.db.target.connection, () => this.changedLocally(), this.db.timeoutMs);
      void this.listener.start();
    }
    if (Date.now() - this.checkedAt >= this.maxStalenessMs || this.dbVersion === undefined) {
      this.checking ??= this.check().finally(() => {
        this.checking = undefined;
      });
      await this.checking;
    }
    return this.generationValue;
  }

  /** Whether a cache filled at `generation` may still be used (call after `current()`). */
  isCurrent(generation: number): boolean {
    return generation === this.generationValue;
  }

  /** A write in this process (or a notification): every cache is stale from now on. */
  changedLocally(): void {
    this.generationValue += 1;
  }

  private async check(): Promise<void> {
    const startedAt = Date.now();
    const row = await this.db.run((knex) => knex('change_version').where({ id: 1 }).first('version'));
    const version = String(row?.version ?? 'missing');
    if (version !== this.dbVersion) {
      this.dbVersion = version;
      this.generationValue += 1;
    }
    // The check is as old as the moment it was issued, not when it answered.
    this.checkedAt = startedAt;
  }

  /** The path to the server stalled: the listener's connection is as silent as the others; start it afresh. */
  reconnect(): void {
    this.changedLocally();
    this.listener?.reconnect();
  }

  async close(): Promise<void> {
    await this.listener?.stop();
  }
}
