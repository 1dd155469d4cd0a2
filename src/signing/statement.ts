// Version-2 signatures: a signed statement naming the package, its version, optionally its organization
// and an expiry, its size and its digest (BLAKE3 by default, SHA-256 on request). The statement's exact
// encoding is specified in the README and in crates/core/src/statement.rs.
import { CloacinaSignError } from '../errors';
import { type OutputOptions, writeFileAtomic } from '../files';
import { native, type StatementInput } from '../native';
import { nativeCounter, type ProgressCounter } from '../progress';
import { type PackageStatement, statementOf } from '../verification/verifier';

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

/** A version-2 signature: the canonical document (what the `.sig` holds, without its newline) and what it says. */
export interface SignedStatementDocument {
  document: string;
  statement: PackageStatement;
  keyFingerprint: string;
}

const DURATION = /^(\d{1,6})([dhms])$/;
const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 } as const;

/** An expiry as RFC 3339 UTC: a duration from `now` (`90d`, `12h`, `30m`, `45s`), an RFC 3339 time, or a Date. */
export function expiryTime(expires: string | Date, now: Date = new Date()): string {
  if (expires instanceof Date) return expires.toISOString();
  const duration = DURATION.exec(expires.trim());
  if (duration) return new Date(now.getTime() + Number(duration[1]) * UNIT_MS[duration[2] as keyof typeof UNIT_MS]).toISOString();
  const time = Date.parse(expires);
  if (!/^\d{4}-\d\d-\d\dT/.test(expires.trim()) || Number.isNaN(time)) {
    throw new CloacinaSignError('INVALID_INPUT', `expiry ${JSON.stringify(expires)} is neither an RFC 3339 time nor a duration like 90d, 12h, 30m or 45s`);
  }
  return new Date(time).toISOString();
}

/** The statement's fields for the native signer (validated there before anything is signed). */
export function statementInput(options: StatementOptions): StatementInput {
  const issuedAt = options.issuedAt ?? new Date();
  return {
    name: options.name,
    version: options.version,
    organization: options.organization,
    digestAlgorithm: options.digest ?? 'blake3',
    issuedAt: issuedAt.toISOString(),
    expiresAt: options.expires === undefined ? undefined : expiryTime(options.expires, issuedAt),
  };
}

/** What a canonical version-2 document says (its fields as parsed; verified only by a verifier). */
export function signedStatementOf(document: string): SignedStatementDocument {
  const info = native.parseSignatureDocument(Buffer.from(document));
  if (!info.statement) throw new CloacinaSignError('INVALID_INPUT', 'not a version-2 signature document');
  return { document: info.canonical, statement: statementOf(info.statement), keyFingerprint: info.keyFingerprint };
}

/** Hashes the package and signs a version-2 statement about it with a private key held by the caller. */
export async function signStatement(
  packagePath: string,
  privateKey: Uint8Array | string,
  options: StatementOptions,
  signOptions: { progress?: ProgressCounter } = {},
): Promise<SignedStatementDocument> {
  const key = typeof privateKey === 'string' ? Buffer.from(privateKey, 'utf8') : Buffer.from(privateKey);
  return signedStatementOf(await native.signStatementFile(packagePath, key, statementInput(options), nativeCounter(signOptions.progress)));
}

/** Writes a signature document as its `.sig` file: the canonical JSON and a newline, atomically, under the output rules. */
export async function writeSignatureDocument(path: string, document: string, options: OutputOptions = {}): Promise<void> {
  await writeFileAtomic(path, `${document}\n`, { ...options, mode: 0o644 });
}
