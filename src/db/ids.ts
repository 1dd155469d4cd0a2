// Row identities and timestamps, made by the application so both engines store the same values.
import { nodeCrypto } from '../node-crypto';

export function newId(): string {
  return nodeCrypto().randomUUID();
}

/**
 * A UUIDv7 (RFC 9562): the Unix time in milliseconds in the first 48 bits, then 74 random bits (those of a
 * random UUID). Ids made one after another sort after each other (within a millisecond, in any order), so a
 * table keyed by them, such as audit_events, appends to the end of its id index instead of touching a
 * random page of it for every row.
 */
export function newOrderedId(): string {
  const time = Date.now().toString(16).padStart(12, '0');
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${nodeCrypto().randomUUID().slice(15)}`;
}

/** Timestamps are ISO 8601 UTC strings with milliseconds: they sort as text and read back identically. */
export function nowIso(): string {
  return new Date().toISOString();
}
