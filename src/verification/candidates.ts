// The signatures to try for a package, in two phases: the documents that do not depend on the package's
// digest are read first (they say which digests to compute: SHA-256 for version 1 and cosign, the
// statement's digest for version 2); the stored ones, found by the package's SHA-256, join them once it is
// known. Rust pairs each with the trusted key it can be verified with (crates/core/src/verify.rs).
import { CloacinaSignError, SignatureNotFound } from '../errors';
import { type DigestRequest, type DocumentInfo, native, type VerifyCandidate } from '../native';
import { loadedByCache } from '../db/generation-cache';
import { DetachedSignature } from '../formats/v1';
import type { TrustSource } from '../trust/trust-source';
import type { SignatureSource } from './signature-source';

/** The `.sig` beside a package, or none. A `.sig` that cannot be read or parsed is an error, never skipped. */
export async function besideDocuments(packagePath: string): Promise<DocumentInfo[]> {
  try {
    return [await native.readSignatureFile(DetachedSignature.defaultPath(packagePath))];
  } catch (error) {
    if (error instanceof SignatureNotFound) return [];
    throw error;
  }
}

/**
 * A signature file the caller named: one that is not there is a file that cannot be read (UNREADABLE_FILE,
 * most often a typo), not a package without a signature. SIGNATURE_NOT_FOUND stays for the places where a
 * signature was looked for (`<package>.sig`, the stored signatures).
 */
export async function namedSignatureFile(path: string): Promise<DocumentInfo> {
  return native.readSignatureFile(path).catch(namedFileError(path));
}

/** For a `.catch` where a named signature file is read: its absence becomes UNREADABLE_FILE (see namedSignatureFile). */
export function namedFileError(path: string): (error: unknown) => never {
  return (error) => {
    if (error instanceof SignatureNotFound) throw new CloacinaSignError('UNREADABLE_FILE', `cannot read the signature file ${path}: it does not exist`);
    throw error;
  };
}

/**
 * The documents that do not depend on the package's digest: the `.sig` beside the package (Auto;
 * `beside` when the caller already read it), the named file (DetachedFile), the caller's (Memory).
 */
export async function documentsBeforeHashing(packagePath: string | null, source: SignatureSource, beside?: DocumentInfo[]): Promise<DocumentInfo[]> {
  switch (source.kind) {
    case 'detached-file':
      return [await namedSignatureFile(source.path)];
    case 'memory': {
      const signature = source.signature;
      if (typeof signature === 'string' || signature instanceof Uint8Array) {
        return [native.parseSignatureDocument(Buffer.from(typeof signature === 'string' ? Buffer.from(signature, 'utf8') : signature))];
      }
      return [native.parseSignatureDocument(Buffer.from(DetachedSignature.fromSignatureInfo(signature).toString()))];
    }
    case 'database':
      return [];
    case 'auto':
      return beside ?? (packagePath === null ? [] : besideDocuments(packagePath));
  }
}

/** Whether stored signatures are looked up for this source (the database's, found by SHA-256). */
export function usesStoredSignatures(source: SignatureSource, trust: TrustSource): boolean {
  if (source.kind === 'database' && !trust.storedSignatures) {
    throw new CloacinaSignError('INVALID_INPUT', 'pinned public keys have no stored signatures: use the .sig file (SignatureSource.Auto or DetachedFile)');
  }
  return Boolean(trust.storedSignatures) && (source.kind === 'auto' || source.kind === 'database');
}

/** The digests to compute of the package: what each document needs (a cosign signature: SHA-256), and SHA-256 to find stored signatures. */
export function digestsToCompute(documents: readonly DocumentInfo[], stored: boolean): DigestRequest {
  const request = { sha256: stored, blake3: false };
  for (const document of documents) {
    if (document.statement?.digestAlgorithm === 'blake3') request.blake3 = true;
    else request.sha256 = true;
  }
  // Nothing to check against: SHA-256 still names the package in the audit trail and the messages.
  if (!request.sha256 && !request.blake3) request.sha256 = true;
  return request;
}

/**
 * Every candidate for a package, in a fixed order: the documents read before hashing (the `.sig`
 * first), then, with `sha256`, the stored signatures (signed_at, then id) that are not the same
 * document. A stale or untrusted `.sig` never hides a valid stored signature: all are tried.
 * Each document is paired with the trusted key its fingerprint names (none when untrusted, revoked
 * included); a cosign signature, which names no key, makes one candidate per trusted ECDSA P-256 key
 * in the trust source's order (the first that verifies is the signer), or one without a key when none
 * is trusted (UNTRUSTED_SIGNER).
 */
export async function candidatesFor(before: readonly DocumentInfo[], sha256: string | null, trust: TrustSource): Promise<VerifyCandidate[]> {
  const [trusted, stored] = await Promise.all([trust.trustedKeys(), sha256 && trust.storedSignatures ? trust.storedSignatures(sha256) : undefined]);
  const keys = () => [...trusted.values()].map((key) => key.publicKey);
  if (before.length === 0 && stored && loadedByCache(stored) && loadedByCache(trusted)) {
    // Stored signatures alone: paired once per (stored documents, trusted keys) while both caches hold them.
    const byTrusted = storedPairings.get(stored) ?? new WeakMap();
    storedPairings.set(stored, byTrusted);
    const paired = byTrusted.get(trusted) ?? native.pairWithTrustedKeys([...stored], keys());
    byTrusted.set(trusted, paired);
    return paired;
  }
  const first = before.map((document) => Buffer.from(document.canonical));
  const documents = [...first, ...(stored ?? []).filter((document) => !first.some((other) => other.equals(document)))];
  return native.pairWithTrustedKeys(documents, keys());
}

/**
 * Candidates made of stored signatures alone, by the array and the map database trust returned. Both come from
 * generation caches, which never change a value they loaded and load new ones once trust or signatures change,
 * so a pairing is reused exactly as long as both still hold (objects from any other trust source are paired
 * every time). Pairing parses each document and each key: most of the main thread's work in a verification
 * with database trust.
 */
const storedPairings = new WeakMap<readonly Buffer[], WeakMap<ReadonlyMap<string, unknown>, VerifyCandidate[]>>();
