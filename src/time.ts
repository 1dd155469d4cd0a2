// Times given on the command line and to the library: durations from now and RFC 3339 date-times, parsed
// strictly (a date that does not exist, such as 2027-02-30, is refused rather than rolled over).
import { CloacinaSignError } from './errors';

const DURATION = /^(\d{1,6})([dhms])$/;
const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 } as const;

const RFC3339 = /^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d{1,9})?(?:([Zz])|([+-])(\d\d):(\d\d))$/;

/** Milliseconds since the epoch of an RFC 3339 date-time; undefined unless every field is in range (no leap seconds, no local times). */
export function rfc3339(text: string): number | undefined {
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
 * expiryTime, refusing an expiry that is not after `now`: whatever it would bound would never be valid
 * (said as that, not as a malformed value).
 */
export function futureExpiryTime(expires: string | Date, now: Date = new Date()): string {
  const expiresAt = expiryTime(expires, now);
  if (Date.parse(expiresAt) <= now.getTime()) {
    throw new CloacinaSignError('INVALID_INPUT', `expiry is in the past: ${expiresAt} is not after ${now.toISOString()}`);
  }
  return expiresAt;
}
