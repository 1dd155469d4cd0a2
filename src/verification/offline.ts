// Offline verification, as Cloacina's verify_package_offline: one package, one detached signature, one
// public key. No audit; runners use createPackageLoader with publicKeyTrust, which audits.
import { importPublicKey, type KeyInput } from '../keys/keypair';
import { native } from '../native';
import { nativeCounter, type ProgressCounter } from '../progress';
import { DetachedSignature } from '../signing/detached-signature';

export interface VerifiedPackage {
  packageHash: string;
  signerFingerprint: string;
  signedAt: string;
}

/**
 * Throws TamperedPackage, UntrustedSigner, InvalidSignature, SignatureNotFound or MalformedSignature
 * when the package must not be trusted; resolves only when the signature verifies under `publicKey`.
 */
export async function verifyPackageOffline(
  packagePath: string,
  signaturePath: string,
  publicKey: KeyInput,
  options: { progress?: ProgressCounter } = {},
): Promise<VerifiedPackage> {
  const key = importPublicKey(publicKey);
  // The package first: a missing package is UNREADABLE_FILE, not a missing signature.
  const packageHash = await native.hashFile(packagePath, nativeCounter(options.progress));
  const signature = await DetachedSignature.readFromFile(signaturePath);
  const candidates = [{ document: Buffer.from(signature.toString()), publicKey: key }];
  const verified = await native.verifyDigest(packageHash, candidates);
  return { packageHash: verified.packageHash, signerFingerprint: verified.keyFingerprint, signedAt: verified.signedAt };
}
