// Signing for the signers: hashing the package when its file is given, and the canonical document made in
// Rust. A key Rust holds (a private key, a sealed key) signs in the one native task, hashing included,
// off the JS thread; a key held elsewhere (a hardware token's) signs the message Rust prepares.
import { type KeyBinding, native, type Pkcs11Kek, type SignatureRequest } from '../native';
import { nativeCounter } from '../progress';
import type { DocumentRequest, PackageDigests, PackageToSign, SignRequest } from './signer';

/** A sealed private key as its database row stores it, with the KEK that opens it (bytes or a token's). */
export interface SealedKeyMaterial {
  kek: Buffer | Pkcs11Kek;
  sealedPrivateKey: Buffer;
  binding: KeyBinding;
  publicKey: Buffer;
}

function nativeRequest(document: DocumentRequest): SignatureRequest {
  return document.version === 1 ? { version: 1, signedAt: document.signedAt } : { version: 2, statement: document.statement };
}

// A version-1 document does not sign the size: a caller with the digest alone may leave it out.
const withSize = (digests: PackageDigests) => ({ ...digests, size: digests.size ?? 0 });

/** @internal The digests a document needs: the given ones, or the file's (SHA-256 for version 1, the statement's digest for version 2). */
export async function digestsOf(pkg: PackageToSign, document: DocumentRequest): Promise<PackageDigests> {
  if ('digests' in pkg) return pkg.digests;
  const algorithm = document.version === 1 ? 'sha256' : document.statement.digestAlgorithm;
  return native.hashFileDigests(pkg.path, { sha256: algorithm === 'sha256', blake3: algorithm === 'blake3' }, nativeCounter(pkg.progress));
}

/** @internal Signs `request` with a private key (raw, DER or PEM) or a sealed key; resolves to the canonical document. */
export function signNatively(request: SignRequest, key: Buffer | SealedKeyMaterial): Promise<string> {
  const source = 'path' in request.package ? request.package.path : withSize(request.package.digests);
  const progress = 'path' in request.package ? nativeCounter(request.package.progress) : undefined;
  return native.signPackage(source, key, nativeRequest(request.document), progress);
}

/**
 * @internal Signs `request` with a key held elsewhere: `sign` gets the exact bytes to sign and returns the
 * 64-byte Ed25519 signature of `publicKey`'s key (raw, 32 bytes), verified before the document is made.
 */
export async function signElsewhere(request: SignRequest, publicKey: Buffer, sign: (message: Buffer) => Promise<Uint8Array>): Promise<string> {
  const digests = withSize(await digestsOf(request.package, request.document));
  const document = nativeRequest(request.document);
  const signature = await sign(native.signatureMessage(digests, document));
  return native.signatureDocument(digests, document, publicKey, Buffer.from(signature));
}

/** @internal Signs each SHA-256 digest (lowercase hex) into its version-1 document dated `signedAt`, the sealed key opened once for all. */
export function signDigestsNatively(sha256: readonly string[], key: SealedKeyMaterial, signedAt: string): Promise<string[]> {
  return native.signDigests([...sha256], key, signedAt);
}
