// A row as the driver returns it, and the readers that turn its columns into API values (SQLite and
// PostgreSQL differ in detail: text or timestamps, Buffer or Uint8Array).

/** The columns a module reads, typed loosely. */
export type Row = Record<string, unknown>;

export const text = (value: unknown): string => String(value);
export const optionalText = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));
export const bytes = (value: unknown): Buffer => Buffer.from(value as Uint8Array);
