// Row identities and timestamps, made by the application so both engines store the same values.
import { randomUUID } from 'node:crypto';

export function newId(): string {
  return randomUUID();
}

/** Timestamps are ISO 8601 UTC strings with milliseconds: they sort as text and read back identically. */
export function nowIso(): string {
  return new Date().toISOString();
}
