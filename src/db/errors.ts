// Driver errors become typed ones: a unique violation is ALREADY_EXISTS, anything else DATABASE_ERROR.
import { CloacinaSignError } from '../errors';
import { redactUrl } from './url';

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EAI_AGAIN', '3D000', '28P01', '28000']);

export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | undefined;
  return e?.code === '23505' || (e?.code === 'SQLITE_CONSTRAINT' && /UNIQUE/.test(e.message ?? ''));
}

function driverMessage(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return driverMessage(error.errors[0]);
  const e = error as { code?: string; message?: string } | undefined;
  const message = (e?.message ?? String(error)).split('\n')[0];
  return redactUrl(message.replace(/^.*? - /, ''));
}

/** Wraps any non-typed error from the database layer, naming the database (password masked). */
export function databaseError(error: unknown, display: string): CloacinaSignError {
  if (error instanceof CloacinaSignError) return error;
  if (isUniqueViolation(error)) return new CloacinaSignError('ALREADY_EXISTS', driverMessage(error), { cause: error });
  const code = (error as { code?: string } | undefined)?.code ?? (error instanceof AggregateError ? (error.errors[0] as { code?: string })?.code : undefined);
  const what = code && UNREACHABLE.has(code) ? 'cannot reach the database' : 'database error on';
  return new CloacinaSignError('DATABASE_ERROR', `${what} ${display}: ${driverMessage(error)}`, { cause: error });
}
