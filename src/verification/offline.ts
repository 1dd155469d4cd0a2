// Offline verification, as Cloacina's verify_package_offline: one package, one detached signature, one
// public key. No audit; runners use createPackageLoader with publicKeyTrust, which audits.
import { importPublicKey, type KeyInput } from '../keys/keypair';
import { native } from '../native';
import { nativeCounter, type ProgressCounter } from '../progress';
import { resultOf } from './result';

/** What an offline verification establishes: the digest the signature covers, who signed it, and when. */
export interface OfflineVerification {
  /** Lowercase hex digest of the package that the signature covers: SHA-256 (version 1, cosign), or the statement's digest. */
  packageHash: string;
  /** Fingerprint of the key whose signature verified. */
  signerFingerprint: string;
  /** Null for a cosign signature (it carries no time). */
  signedAt: string | null;
}

/**
 * Throws TamperedPackage, UntrustedSigner, InvalidSignature, SignatureNotFound or MalformedSignature
 * when the package must not be trusted; resolves only when the signature verifies under `publicKey`: an
 * Ed25519 key with a Cloacina signature (version 1 or 2), or an ECDSA P-256 key (`cosign.pub`) with a
 * cosign signature (`cosign sign-blob`).
 */
export async function verifyPackageOffline(
  packagePath: string,
  signaturePath: string,
  publicKey: KeyInput,
  options: { progress?: ProgressCounter } = {},
): Promise<OfflineVerification> {
  const key = importPublicKey(publicKey);
  // One task: the package must exist (UNREADABLE_FILE), then the signature is read (either version) and decided.
  const verified = await native.verifyFileWithKeys(packagePath, signaturePath, [key], undefined, nativeCounter(options.progress));
  const result = resultOf(packagePath, verified, null);
  return { packageHash: result.packageHash, signerFingerprint: result.signerFingerprint, signedAt: result.signedAt };
}
