// Offline signing with a private key held by the caller.
import { CloacinaSignError } from '../errors';
import { importPublicKey, type KeyInput, publicKeyFingerprint } from '../keys/keypair';
import { native } from '../native';
import { nativeCounter, type ProgressCounter } from '../progress';
import type { SignatureInfo } from './detached-signature';

export interface SignOptions {
  /** Filled with the bytes hashed so far, for progress reporting. */
  progress?: ProgressCounter;
}

/** RFC 3339 UTC, as Cloacina writes it. */
export function rfc3339Now(): string {
  return new Date().toISOString();
}

/**
 * Signs the raw SHA-256 digest of the package. When `publicKey` is given it must belong to
 * `privateKey`: that catches a mismatched key pair before a useless signature is published.
 */
export async function signPackage(packagePath: string, privateKey: KeyInput, publicKey?: KeyInput, options: SignOptions = {}): Promise<SignatureInfo> {
  const key = typeof privateKey === 'string' ? Buffer.from(privateKey, 'utf8') : Buffer.from(privateKey);
  const signed = await native.signFile(packagePath, key, nativeCounter(options.progress));
  if (publicKey !== undefined && publicKeyFingerprint(importPublicKey(publicKey)) !== signed.keyFingerprint) {
    throw new CloacinaSignError('INVALID_KEY', 'the public key does not belong to the private key');
  }
  return { ...signed, signedAt: rfc3339Now() };
}
