// The sealed decision: copy the package once into sealed memory, decide on exactly those bytes (trust,
// signature, policy, revocations), and only then check what the cleared bytes are. Shared by verify (when a size or
// format is required) and every guarded load. Internal: its types are the binding's.
import { CloacinaSignError } from '../errors';
import { type ClearedPackage, native, nativeMethods, type NativeVerified, type PackageFormat } from '../native';
import { type KnownDigests, refuseRevoked, type RevokedPackages, revokedPackagesOf } from '../trust/revoked-packages';
import type { TrustSource } from '../trust/trust-source';
import { candidatesFor, digestsToCompute, documentsBeforeHashing, usesStoredSignatures } from './candidates';
import { nativePolicy, type PackagePolicy } from './policy';
import type { SignatureSource } from './signature-source';
import type { PackageStatement } from '../formats/v2';
import { noSignature, type PackageFormatName, resultOf } from './result';

const NATIVE_FORMATS: Record<PackageFormatName, PackageFormat> = {
  elf: 'SharedLibrary' as PackageFormat,
  wasm: 'Wasm' as PackageFormat,
  any: 'Any' as PackageFormat,
};

/** @internal The binding's name of a format. */
export function nativeFormat(format: PackageFormatName): PackageFormat {
  const named = NATIVE_FORMATS[format];
  if (named === undefined) throw new CloacinaSignError('INVALID_INPUT', 'the package format must be elf, wasm or any');
  return named;
}

/** @internal A size limit as given by a caller: undefined, or a non-negative integer (else INVALID_INPUT). */
export function checkPackageLimit(max: unknown): void {
  if (max !== undefined && !(Number.isSafeInteger(max) && (max as number) >= 0)) {
    throw new CloacinaSignError('INVALID_INPUT', 'maxPackageBytes must be a non-negative integer');
  }
}

/** What a sealed decision needs: whose trust, whether a signature is required, the size limit, the policy. */
export interface SealedDecisionPolicy {
  trust: TrustSource;
  requireSignatures: boolean;
  maxPackageBytes: number;
  policy: PackagePolicy;
}

/** What was decided about sealed bytes. */
export interface SealedDecision {
  /** Lowercase hex digest of the sealed bytes: the one the signature covers (SHA-256 when unsigned). */
  packageHash: string;
  /** Null when the package was allowed unsigned. */
  signerFingerprint: string | null;
  /** Version 2: the signed statement. */
  statement: PackageStatement | null;
  /** Size of the sealed bytes. */
  size: number;
  /** The native verdict; null when the package was allowed unsigned. */
  verified: NativeVerified | null;
}

/**
 * @internal
 * Copies the package once into sealed memory (its size checked first) and decides on exactly those bytes:
 * trust, then signature and policy. Nothing parses the bytes here: the caller checks the format of the
 * cleared package it gets. With signatures required, a missing or failing signature is a hard failure.
 * Without, an unsigned package is allowed, but a signature that is present must still verify: a bad
 * signature is never ignored. `noteHash` learns the digest as soon as it is known, `noteSigner` the signer
 * once its signature verified (both for the audit).
 */
export async function decideSealed(
  policy: SealedDecisionPolicy,
  path: string,
  source: SignatureSource,
  noteHash: (hash: string) => void,
  noteSigner: (fingerprint: string) => void = () => {},
): Promise<{ cleared: ClearedPackage; decision: SealedDecision }> {
  // The documents that do not depend on the digest say which digests the sealing pass computes.
  const before = await documentsBeforeHashing(path, source);
  const stored = usesStoredSignatures(source, policy.trust);
  // Revocations naming one digest only need that digest computed too, whatever the signature needs.
  const request = (await revokedPackagesOf(policy.trust)).widen(digestsToCompute(before, stored));
  const sealed = await native.sealPackage(path, policy.maxPackageBytes, request);
  try {
    const digests = sealed.digests;
    const hash = (digests.sha256 ?? digests.blake3) as string;
    noteHash(hash);
    const candidates = await candidatesFor(before, stored ? (digests.sha256 ?? null) : null, policy.trust);
    if (candidates.length === 0 && !policy.requireSignatures) {
      const decision = { packageHash: hash, signerFingerprint: null, statement: null, size: digests.size, verified: null };
      return { cleared: unlessRevoked(nativeMethods.allowUnsigned(sealed), await revokedPackagesOf(policy.trust), digests, path), decision };
    }
    if (candidates.length === 0) throw noSignature(path, hash, policy.trust, source);
    const cleared = nativeMethods.verifySealed(sealed, candidates, await nativePolicy(policy.policy, policy.trust, before));
    const verified = resultOf(path, cleared.verified!, null);
    noteHash(verified.packageHash);
    // The verdict is known from here on: a refusal after it (a revocation, the format) still says who signed.
    if (verified.signerFingerprint) noteSigner(verified.signerFingerprint);
    // After the signature decision, before anything parses the bytes: the revocations as they are now.
    unlessRevoked(cleared, await revokedPackagesOf(policy.trust), digests, path);
    return {
      cleared,
      decision: {
        packageHash: verified.packageHash,
        signerFingerprint: verified.signerFingerprint,
        statement: verified.statement,
        size: digests.size,
        verified: cleared.verified!,
      },
    };
  } finally {
    // A cleared package owns the image now; on a refusal this releases the sealed memory at once.
    sealed.discard();
  }
}

/** The cleared package, unless the organization revoked it (then it is released at once: PACKAGE_REVOKED). */
function unlessRevoked(cleared: ClearedPackage, revoked: RevokedPackages, digests: KnownDigests, path: string): ClearedPackage {
  try {
    refuseRevoked(revoked, digests, path);
  } catch (error) {
    cleared.discard();
    throw error;
  }
  return cleared;
}

/** @internal Checks a cleared package against each format in turn; releases it when one fails. */
export async function checkFormats(cleared: ClearedPackage, formats: readonly PackageFormat[]): Promise<void> {
  try {
    for (const format of formats) await nativeMethods.checkFormat(cleared, format);
  } catch (error) {
    cleared.discard();
    throw error;
  }
}
