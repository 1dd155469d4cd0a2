// Driver errors become typed ones: a unique violation is ALREADY_EXISTS; a database that does not answer
// (down, stalled, locked) is DATABASE_UNAVAILABLE; anything else DATABASE_ERROR.
import { CloacinaSignError } from '../errors';
import { redactText } from './url';

// Not reachable at all (exit 2, DATABASE_ERROR): wrong address, no such database, authentication.
const UNREACHABLE = new Set(['ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN', '3D000', '28P01', '28000']);
// Reachable but not answering in time, or gone mid-query (DATABASE_UNAVAILABLE): retrying later may work.
// 57014: statement timeout; 55P03: lock timeout; 57P01..03: server shutting down or restarting.
const UNAVAILABLE = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'ECONNRESET', 'EPIPE', 'SQLITE_BUSY', 'SQLITE_LOCKED', '57014', '55P03', '57P01', '57P02', '57P03']);
// A wait that ran out against the bound: the server's statement or lock timeout, SQLite's busy timeout.
const WAITED_OUT = new Set(['57014', '55P03', 'SQLITE_BUSY', 'SQLITE_LOCKED']);
// "not queryable": pg's Client after its connection was lost (e.g. closed by the stall detector mid-transaction).
const UNAVAILABLE_MESSAGE =
  /Connection terminated|Timeout acquiring a connection|no answer within|timeout expired|Connection ended|encountered a connection error and is not queryable/i;

export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | undefined;
  return e?.code === '23505' || (e?.code === 'SQLITE_CONSTRAINT' && /UNIQUE/.test(e.message ?? ''));
}

function driverMessage(error: unknown, secrets: readonly string[]): string {
  if (error instanceof AggregateError && error.errors.length > 0) return driverMessage(error.errors[0], secrets);
  const e = error as { code?: string; message?: string } | undefined;
  const message = (e?.message ?? String(error)).split('\n')[0];
  return redactText(message.replace(/^.*? - /, ''), secrets);
}

/**
 * Wraps any non-typed error from the database layer, naming the database (password masked). `secrets`
 * (the password of the URL, see urlSecrets) are masked wherever the driver's message repeats them.
 * With `boundMs`, a wait that ran out (a timeout, or `stalled`: the connection was torn down because one
 * did) says which bound it was.
 */
export function databaseError(
  error: unknown,
  display: string,
  secrets: readonly string[] = [],
  bound: { boundMs?: number; stalled?: boolean } = {},
): CloacinaSignError {
  if (error instanceof CloacinaSignError) return error;
  if (isUniqueViolation(error)) return new CloacinaSignError('ALREADY_EXISTS', driverMessage(error, secrets), { cause: error });
  const code = (error as { code?: string } | undefined)?.code ?? (error instanceof AggregateError ? (error.errors[0] as { code?: string })?.code : undefined);
  const message = driverMessage(error, secrets);
  const timedOut = (code !== undefined && WAITED_OUT.has(code)) || (error as Error)?.name === 'KnexTimeoutError';
  if (bound.boundMs !== undefined && (timedOut || bound.stalled)) {
    const why = bound.stalled && !timedOut ? '' : `: ${message}`;
    return new CloacinaSignError('DATABASE_UNAVAILABLE', `the database ${display} did not answer within ${bound.boundMs} ms${why}`, { cause: error });
  }
  if (timedOut || (code && UNAVAILABLE.has(code)) || UNAVAILABLE_MESSAGE.test(message)) {
    return new CloacinaSignError('DATABASE_UNAVAILABLE', `the database ${display} is not answering: ${message}`, { cause: error });
  }
  if (code === 'SQLITE_READONLY') {
    return new CloacinaSignError('DATABASE_ERROR', `the database ${display} is read-only for this process: ${message}`, { cause: error });
  }
  const what = code && UNREACHABLE.has(code) ? 'cannot reach the database' : 'database error on';
  return new CloacinaSignError('DATABASE_ERROR', `${what} ${display}: ${message}`, { cause: error });
}
