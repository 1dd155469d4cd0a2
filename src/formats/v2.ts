// The version-2 signature document: a signed statement naming the package, its version, optionally its
// organization and an expiry, its size and its digest. Its exact encoding is specified in docs/formats.md
// and in crates/core/src/statement.rs; parsing is strict and done in Rust.
import { CloacinaSignError } from '../errors';
import { type OutputOptions, writeFileAtomic } from '../files';
import { native, type StatementFields } from '../native';

/** What a version-2 signature says about the package, every field signed. */
export interface PackageStatement {
  name: string;
  /** A SemVer 2.0.0 version. */
  version: string;
  organization: string | null;
  size: number;
  digestAlgorithm: 'blake3' | 'sha256';
  digest: string;
  /** RFC 3339 UTC. */
  issuedAt: string;
  expiresAt: string | null;
}

/** A version-2 signature: the canonical document (what the `.sig` holds, without its newline) and what it says. */
export interface SignedStatementDocument {
  document: string;
  statement: PackageStatement;
  keyFingerprint: string;
}

/** What a canonical version-2 document says (its fields as parsed; verified only by a verifier). */
export function signedStatementOf(document: string): SignedStatementDocument {
  const info = native.parseSignatureDocument(Buffer.from(document));
  if (!info.statement) throw new CloacinaSignError('INVALID_INPUT', 'not a version-2 signature document');
  return { document: info.canonical, statement: statementOf(info.statement), keyFingerprint: info.keyFingerprint as string };
}

/** Writes a signature document as its `.sig` file: the canonical JSON and a newline, atomically, under the output rules. */
export async function writeSignatureDocument(path: string, document: string, options: OutputOptions = {}): Promise<void> {
  await writeFileAtomic(path, `${document}\n`, { ...options, mode: 0o644 });
}

/** @internal */
export function statementOf(fields: StatementFields): PackageStatement {
  return {
    name: fields.name,
    version: fields.version,
    organization: fields.organization ?? null,
    size: fields.size,
    digestAlgorithm: fields.digestAlgorithm as PackageStatement['digestAlgorithm'],
    digest: fields.digest,
    issuedAt: fields.issuedAt,
    expiresAt: fields.expiresAt ?? null,
  };
}
