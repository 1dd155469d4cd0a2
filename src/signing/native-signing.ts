// The one native signing task, for the signers whose key Rust holds: hashing the package (when its file
// is given) and signing happen in a single trip to the worker pool, off the JS thread.
import { type KeyBinding, native, type Pkcs11Kek } from '../native';
import { nativeCounter } from '../progress';
import type { SignRequest } from './signer';

/** A sealed private key as its database row stores it, with the KEK that opens it (bytes or a token's). */
export interface SealedKeyMaterial {
  kek: Buffer | Pkcs11Kek;
  sealedPrivateKey: Buffer;
  binding: KeyBinding;
  publicKey: Buffer;
}

/** @internal Signs `request` with a private key (raw, DER or PEM) or a sealed key; resolves to the canonical document. */
export function signNatively(request: SignRequest, key: Buffer | SealedKeyMaterial): Promise<string> {
  // A version-1 document does not sign the size: a caller with the digest alone may leave it out.
  const source = 'path' in request.package ? request.package.path : { ...request.package.digests, size: request.package.digests.size ?? 0 };
  const progress = 'path' in request.package ? nativeCounter(request.package.progress) : undefined;
  const document = request.document.version === 1 ? { version: 1, signedAt: request.document.signedAt } : { version: 2, statement: request.document.statement };
  return native.signPackage(source, key, document, progress);
}

/** @internal Signs each SHA-256 digest (lowercase hex) into its version-1 document dated `signedAt`, the sealed key opened once for all. */
export function signDigestsNatively(sha256: readonly string[], key: SealedKeyMaterial, signedAt: string): Promise<string[]> {
  return native.signDigests([...sha256], key, signedAt);
}
