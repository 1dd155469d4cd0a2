// The audit hash chain: every audit_events row carries its position (`seq`: 1, 2, 3, ... without gaps), the
// hash of the row before it (`prev_hash`) and its own hash (`row_hash`), and audit_chain_head holds the seq
// and hash of the last row. How writers append, one after another in any number of processes, is in
// chain-append.ts; this file is the definition.
//
// row_hash = lowercase hex of SHA-256 over, byte for byte:
//
//   "cloacina-sign/audit-row/v1" 0x00
//   prev_hash                      32 raw bytes (the hex decoded; 32 zero bytes for seq 1)
//   u64be(seq)
//   value(id) value(event_type) value(timestamp) value(org_id) value(key_id) value(package_path)
//   value(package_hash) value(signer_fingerprint) value(signature_verified) value(reason) value(actor)
//
//   value(null)   = 0x00
//   value(string) = 0x01 || u32be(byte length of its UTF-8) || its UTF-8 bytes
//   value(false)  = 0x02 0x00;   value(true) = 0x02 0x01
//
// Every column of the row is covered (prev_hash and seq directly, row_hash is the result); strings exactly as
// stored, never trimmed or normalized. The fixed order, the type tags and the length prefixes make the
// encoding unambiguous: two different rows never encode to the same bytes.
import { nodeCrypto } from '../node-crypto';
import type { AuditEvent } from './events';

/** The prev_hash of seq 1. */
export const GENESIS_HASH = '0'.repeat(64);
export const HEAD_TABLE = 'audit_chain_head';
const DOMAIN = Buffer.from('cloacina-sign/audit-row/v1\0', 'utf8');

/** The columns of an audit_events row the row hash covers besides seq and prev_hash, in hashing order. */
export const HASHED_COLUMNS = [
  'id',
  'event_type',
  'timestamp',
  'org_id',
  'key_id',
  'package_path',
  'package_hash',
  'signer_fingerprint',
  'signature_verified',
  'reason',
  'actor',
] as const satisfies readonly (keyof AuditEvent)[];

export type HashedColumn = (typeof HASHED_COLUMNS)[number];
/** A row's hashed values, typed as the encoding takes them. */
export type HashedValues = { [C in HashedColumn]: C extends 'signature_verified' ? boolean | null : string | null };

/** Every column an appended row writes, in the order of `appendChained`'s INSERT. */
export const CHAIN_COLUMNS = [...HASHED_COLUMNS, 'seq', 'prev_hash', 'row_hash'] as const;

const HEX64 = /^[0-9a-f]{64}$/;

export function isHash(value: unknown): value is string {
  return typeof value === 'string' && HEX64.test(value);
}

// Every row is encoded into this one buffer, grown when a row needs more: hashing runs once per audited
// operation, and a fresh buffer per string and per row cost more than the SHA-256 itself.
let scratch = Buffer.allocUnsafe(4096);
/** The most bytes a string of `length` UTF-16 code units encodes to (3 per unit; a surrogate pair takes 4 for 2). */
const maxUtf8 = (length: number) => 3 * length;

/** The row hash of `row` at `seq` after `prevHash` (see the top of this file). */
export function rowHash(prevHash: string, seq: number, row: HashedValues): string {
  if (!isHash(prevHash)) throw new Error('prev_hash must be 64 lowercase hex digits');
  let size = DOMAIN.length + 32 + 8;
  for (const column of HASHED_COLUMNS) {
    const value = row[column];
    size += typeof value === 'string' ? 5 + maxUtf8(value.length) : 2;
  }
  if (size > scratch.length) scratch = Buffer.allocUnsafe(Math.max(size, 2 * scratch.length));
  const out = scratch;
  let offset = DOMAIN.copy(out, 0);
  offset += out.write(prevHash, offset, 32, 'hex');
  // u64be without a BigInt: seq is a safe integer, below 2^53.
  out.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), offset);
  out.writeUInt32BE(seq % 0x1_0000_0000, offset + 4);
  offset += 8;
  for (const column of HASHED_COLUMNS) {
    const value = row[column];
    if (value === null || value === undefined) {
      out[offset++] = 0x00;
    } else if (typeof value === 'boolean') {
      out[offset++] = 0x02;
      out[offset++] = value ? 0x01 : 0x00;
    } else {
      // The UTF-8 first, after room for its tag and length, then the length it took.
      const length = out.write(value, offset + 5, 'utf8');
      out[offset] = 0x01;
      out.writeUInt32BE(length, offset + 1);
      offset += 5 + length;
    }
  }
  return nodeCrypto().hash('sha256', out.subarray(0, offset), 'hex');
}

/**
 * A stored row's hashed values, checked against the types writers store (text or null; signature_verified a
 * boolean, or 0/1 on SQLite); a string saying what is wrong otherwise.
 */
export function hashedValuesOf(row: Record<string, unknown>): HashedValues | string {
  const out: Record<string, string | boolean | null> = {};
  for (const column of HASHED_COLUMNS) {
    const value = row[column];
    if (column === 'signature_verified') {
      if (value === null || typeof value === 'boolean') out[column] = value;
      else if (value === 0 || value === 1) out[column] = value === 1;
      else return `${column} holds ${JSON.stringify(value)}, which no writer stores`;
    } else if (value === null || value === undefined || typeof value === 'string') {
      out[column] = value ?? null;
    } else {
      return `${column} holds a ${Buffer.isBuffer(value) ? 'blob' : typeof value}, not text`;
    }
  }
  return out as HashedValues;
}

export interface ChainHead {
  seq: number;
  hash: string;
}

/** A seq as the drivers return it (PostgreSQL bigint: a string), or undefined when it is not a chain position. */
export function seqOf(value: unknown): number | undefined {
  const n = typeof value === 'string' && /^-?[0-9]+$/.test(value) ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) ? n : undefined;
}
