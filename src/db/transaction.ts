// Write transactions: each one first bumps the change version, which takes the write lock at once
// (SQLite: no lock upgrade that could fail with SQLITE_BUSY) and tells other processes to refresh.
import type { Knex } from 'knex';
import type { Database } from './database';

export const CHANGE_CHANNEL = 'cloacina_sign_changes';

export async function writeTransaction<T>(db: Database, work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  const result = await db.run((knex) =>
    knex.transaction(async (trx) => {
      await trx('change_version').where({ id: 1 }).increment('version', 1);
      // Delivered by PostgreSQL only when the transaction commits.
      if (db.engine === 'postgres') await trx.raw('select pg_notify(?, ?)', [CHANGE_CHANNEL, '']);
      return work(trx);
    }),
  );
  db.changes.changedLocally();
  return result;
}

/**
 * Writes each stored with the audit event that records it, in one write transaction (DbKeyManager provides
 * them): `work` returns [event] or [event, result]; `conflict` replaces a unique violation's message.
 */
export interface AuditedWrites<E> {
  readonly db: Database;
  write<T>(conflict: string, work: (trx: Knex.Transaction) => Promise<[E?, T?]>): Promise<T>;
}
