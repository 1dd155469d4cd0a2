// The signatures to try for a package, each paired with the trusted key its fingerprint names.
import { CloacinaSignError, SignatureNotFound } from '../errors';
import { native, type VerifyCandidate } from '../native';
import { DetachedSignature } from '../signing/detached-signature';
import type { TrustedPublicKey, TrustSource } from '../trust/trust-source';
import type { SignatureSource } from './signature-source';

/** The canonical document of a signature file (read and parsed in Rust, off the JS thread). */
async function detachedFile(path: string): Promise<Buffer[]> {
  return [Buffer.from(await native.readSignatureFile(path))];
}

async function stored(trust: TrustSource, packageHash: string, source: SignatureSource): Promise<readonly Buffer[]> {
  if (trust.storedSignatures) return trust.storedSignatures(packageHash);
  if (source.kind === 'auto') return [];
  throw new CloacinaSignError('INVALID_INPUT', 'pinned public keys have no stored signatures: use the .sig file (SignatureSource.Auto or DetachedFile)');
}

/**
 * The signature documents of a package, canonical, in a fixed order:
 * - Auto: the `.sig` beside the package (when there is one), then the stored signatures (signed_at,
 *   then id). All are candidates: a stale or untrusted `.sig` never hides a valid stored signature.
 *   A `.sig` that cannot be read or parsed is an error, never skipped.
 * - DetachedFile, Memory: that one document. Database: the stored signatures.
 */
export async function signatureDocuments(
  packagePath: string,
  packageHash: string,
  source: SignatureSource,
  trust: TrustSource,
  /** Auto only: the `.sig` beside the package, when the caller already read it ([] when there is none). */
  besideRead?: readonly Buffer[],
): Promise<Buffer[]> {
  switch (source.kind) {
    case 'detached-file':
      return detachedFile(source.path);
    case 'memory': {
      const signature = source.signature;
      const parsed =
        typeof signature === 'string' || signature instanceof Uint8Array ? DetachedSignature.parse(signature) : DetachedSignature.fromSignatureInfo(signature);
      return [Buffer.from(parsed.toString())];
    }
    case 'database':
      return [...(await stored(trust, packageHash, source))];
    case 'auto': {
      const [beside, inDatabase] = await Promise.all([
        besideRead ??
          detachedFile(DetachedSignature.defaultPath(packagePath)).catch((error: unknown) => {
            if (error instanceof SignatureNotFound) return [];
            throw error;
          }),
        stored(trust, packageHash, source),
      ]);
      return beside.length === 0 ? [...inDatabase] : [...beside, ...inDatabase.filter((document) => !document.equals(beside[0]))];
    }
  }
}

// Canonical documents (made by DetachedSignature) always carry the fingerprint in this form.
const FINGERPRINT = /"key_fingerprint":"([0-9a-f]{64})"/;

/** Pairs each document with the trusted key of its fingerprint (none when untrusted, revoked included). */
export function pairWithTrustedKeys(documents: readonly Buffer[], trusted: ReadonlyMap<string, TrustedPublicKey>): VerifyCandidate[] {
  return documents.map((document) => {
    const fingerprint = FINGERPRINT.exec(document.toString('latin1'))?.[1];
    const key = fingerprint ? trusted.get(fingerprint) : undefined;
    return key ? { document, publicKey: key.publicKey } : { document };
  });
}

/** The candidates for a package of this hash (the caller's hash: the loader hashes the sealed copy it will map). */
export async function candidatesFor(
  packagePath: string,
  packageHash: string,
  source: SignatureSource,
  trust: TrustSource,
  besideRead?: readonly Buffer[],
): Promise<VerifyCandidate[]> {
  const [trusted, documents] = await Promise.all([trust.trustedKeys(), signatureDocuments(packagePath, packageHash, source, trust, besideRead)]);
  return pairWithTrustedKeys(documents, trusted);
}
