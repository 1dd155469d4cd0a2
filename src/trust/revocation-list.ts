// The revocation list of pinned-key runners: a signed (Rust: crates/core/src/revocation_list.rs),
// versioned, expiring list of the packages an organization revoked. A runner verifies it with its pinned
// keys at start-up and before every decision (the file is re-read, so a newer list applies without a
// restart), refuses it once expired (REVOCATION_LIST_EXPIRED) and refuses one older than the newest it has
// seen (ROLLBACK_REFUSED), so yesterday's list cannot be replayed to bring a revoked package back.
// The newest sequence seen is kept in memory, and across restarts in the state file when there is one:
//   {"version":1,"sequences":{"<organization>":<sequence>}}
// written atomically, read before every check (several runners may share it). Keep it where only the
// runner can write: whoever can lower it can replay an older, unexpired list.
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { nodeCrypto } from '../node-crypto';
import { CloacinaSignError, errorForCode } from '../errors';
import { FileNotFound, readSmallFileSync } from '../files';
import { native, type RevocationListFields } from '../native';
import { RevokedPackages } from './revoked-packages';

/** Largest revocation list read (as the Rust reader's limit). */
export const MAX_REVOCATION_LIST_BYTES = 4 * 1024 * 1024;
const MAX_STATE_BYTES = 64 * 1024;

export interface RevocationListOptions {
  /** The list: a file path (re-read before every decision) or its bytes. */
  list: string | Uint8Array;
  /** The state file keeping the newest sequence seen per organization; without it, only this process remembers. */
  state?: string;
}

type Sequences = Record<string, number>;

function readState(path: string): Sequences {
  let bytes: Buffer;
  try {
    bytes = readSmallFileSync(path, MAX_STATE_BYTES, 'revocation state file');
  } catch (error) {
    // No state yet: this runner has seen no list.
    if (error instanceof FileNotFound) return {};
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new CloacinaSignError('INVALID_INPUT', `${path} is not a revocation state file (not JSON)`);
  }
  const sequences = (parsed as { version?: unknown; sequences?: unknown })?.sequences;
  const valid =
    (parsed as { version?: unknown })?.version === 1 &&
    typeof sequences === 'object' &&
    sequences !== null &&
    Object.values(sequences).every((n) => Number.isSafeInteger(n) && (n as number) >= 1);
  if (!valid) throw new CloacinaSignError('INVALID_INPUT', `${path} is not a revocation state file ({"version":1,"sequences":{...}})`);
  return sequences as Sequences;
}

function writeState(path: string, sequences: Sequences): void {
  const temporary = join(dirname(path), `.${nodeCrypto().randomBytes(8).toString('hex')}.tmp`);
  try {
    const fd = openSync(temporary, 'wx', 0o600);
    try {
      writeSync(fd, `${JSON.stringify({ version: 1, sequences })}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
  } catch (error) {
    throw new CloacinaSignError('WRITE_FAILED', `cannot write the revocation state file ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * The revoked packages of a pinned revocation list, checked now: its signature with `ed25519Keys` (raw 32
 * bytes), its expiry, its sequence against the newest seen. Returns a function doing the same before every
 * decision.
 */
export function pinnedRevocations(options: RevocationListOptions, ed25519Keys: readonly Buffer[]): () => Promise<RevokedPackages> {
  const name = typeof options.list === 'string' ? options.list : 'the revocation list';
  const seen: Sequences = {};
  let last: { bytes: Buffer; fields: RevocationListFields; revoked: RevokedPackages } | undefined;

  const current = (): RevokedPackages => {
    const bytes = typeof options.list === 'string' ? readSmallFileSync(options.list, MAX_REVOCATION_LIST_BYTES, 'revocation list') : Buffer.from(options.list);
    if (!last?.bytes.equals(bytes)) {
      let fields: RevocationListFields;
      try {
        fields = native.verifyRevocationList(bytes, [...ed25519Keys]);
      } catch (error) {
        if (error instanceof CloacinaSignError) throw errorForCode(error.code, `${name}: ${error.message}`, { cause: error });
        throw error;
      }
      last = {
        bytes,
        fields,
        revoked: new RevokedPackages(fields.revoked.map((entry) => ({ sha256: entry.sha256 ?? null, blake3: entry.blake3 ?? null, reason: entry.reason }))),
      };
    }
    const { fields } = last;
    if (Date.now() / 1000 >= fields.expiresAtUnix!) {
      throw errorForCode(
        'REVOCATION_LIST_EXPIRED',
        `${name} (sequence ${fields.sequence} of ${JSON.stringify(fields.organization)}) expired at ${fields.expiresAt}: nothing is loaded until a current list is in place`,
      );
    }
    const stored = options.state ? readState(options.state) : {};
    const highest = Math.max(seen[fields.organization] ?? 0, stored[fields.organization] ?? 0);
    if (fields.sequence < highest) {
      throw errorForCode(
        'ROLLBACK_REFUSED',
        `${name} is sequence ${fields.sequence} of ${JSON.stringify(fields.organization)}, older than sequence ${highest} already seen: an older list is never used again`,
      );
    }
    seen[fields.organization] = fields.sequence;
    if (options.state && fields.sequence > (stored[fields.organization] ?? 0)) writeState(options.state, { ...stored, [fields.organization]: fields.sequence });
    return last.revoked;
  };

  current();
  return async () => current();
}
