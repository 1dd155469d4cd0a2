// What a version-2 signature is asked to say: the package, its version, optionally its organization and
// an expiry (BLAKE3 by default, SHA-256 on request); the document itself is ../formats/v2.
import { CloacinaSignError } from '../errors';
import type { StatementRequest } from './signer';

export interface StatementOptions {
  /** The package name (1 to 255 bytes, no control characters). */
  name: string;
  /** A SemVer 2.0.0 version. */
  version: string;
  /** The organization the package is for (optional; signed when given). */
  organization?: string;
  /** The digest the statement names: `blake3` (default: hashes one file on every core) or `sha256`. */
  digest?: 'blake3' | 'sha256';
  /** When the signature stops being valid: an RFC 3339 time, a Date, or a duration from now (`90d`, `12h`, `30m`, `45s`). */
  expires?: string | Date;
  /** The signing time (default now). */
  issuedAt?: Date;
}

const DURATION = /^(\d{1,6})([dhms])$/;
const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 } as const;

const RFC3339 = /^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d{1,9})?(?:([Zz])|([+-])(\d\d):(\d\d))$/;

/** Milliseconds since the epoch of an RFC 3339 date-time; undefined unless every field is in range (no leap seconds, no local times). */
function rfc3339(text: string): number | undefined {
  const match = RFC3339.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number);
  const [offsetHours, offsetMinutes] = [Number(match[10] ?? 0), Number(match[11] ?? 0)];
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return undefined;
  const local = Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(local);
  // Date.UTC rolls 2027-02-30 over to March: a date that does not round-trip does not exist.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return undefined;
  const fraction = match[7] ? Math.floor(Number(`0${match[7]}`) * 1000) : 0;
  const offset = match[8] ? 0 : (match[9] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
  return local + fraction - offset;
}

/** An expiry as RFC 3339 UTC: a duration from `now` (`90d`, `12h`, `30m`, `45s`), an RFC 3339 time, or a Date. */
export function expiryTime(expires: string | Date, now: Date = new Date()): string {
  if (expires instanceof Date) return expires.toISOString();
  const duration = DURATION.exec(expires.trim());
  if (duration) return new Date(now.getTime() + Number(duration[1]) * UNIT_MS[duration[2] as keyof typeof UNIT_MS]).toISOString();
  const time = rfc3339(expires.trim());
  if (time === undefined) {
    throw new CloacinaSignError(
      'INVALID_INPUT',
      `expiry ${JSON.stringify(expires)} is neither an RFC 3339 time with an offset (2027-01-31T12:00:00Z) nor a duration like 90d, 12h, 30m or 45s`,
    );
  }
  return new Date(time).toISOString();
}

/**
 * expiryTime, refusing an expiry that is not after `now`: such a statement would never be valid (said as
 * that, not as the malformed document the signer would otherwise refuse to write).
 */
export function futureExpiryTime(expires: string | Date, now: Date = new Date()): string {
  const expiresAt = expiryTime(expires, now);
  if (Date.parse(expiresAt) <= now.getTime()) {
    throw new CloacinaSignError(
      'INVALID_INPUT',
      `expiry is in the past: ${expiresAt} is not after ${now.toISOString()}, so the signature would never be valid`,
    );
  }
  return expiresAt;
}

/** @internal The statement's fields for a signer (validated in Rust before anything is signed). */
export function statementRequest(options: StatementOptions): StatementRequest {
  const issuedAt = options.issuedAt ?? new Date();
  return {
    name: options.name,
    version: options.version,
    organization: options.organization,
    digestAlgorithm: options.digest ?? 'blake3',
    issuedAt: issuedAt.toISOString(),
    expiresAt: options.expires === undefined ? undefined : futureExpiryTime(options.expires, issuedAt),
  };
}
