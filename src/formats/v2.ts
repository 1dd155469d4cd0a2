// The version-2 signature document: a signed statement naming the package, its version, optionally its
// organization and an expiry, its size and its digest. Its exact encoding is specified in the README and
// in crates/core/src/statement.rs; parsing is strict and done in Rust.
import { CloacinaSignError } from '../errors';
import { type OutputOptions, writeFileAtomic } from '../files';
import { native } from '../native';
import { type PackageStatement, statementOf } from '../verification/verifier';

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
