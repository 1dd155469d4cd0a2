// What signs a package: a key file's key, a database key (opened inside Rust only), the signing service,
// or any other holder of an Ed25519 key. A signer turns one request into one canonical signature document.
import type { ProgressCounter } from '../progress';

/** A version-2 statement's fields besides the package's size and digest (those come with the package). */
export interface StatementRequest {
  name: string;
  version: string;
  organization?: string;
  digestAlgorithm: 'blake3' | 'sha256';
  /** RFC 3339 UTC. */
  issuedAt: string;
  /** RFC 3339 UTC. */
  expiresAt?: string;
}

/** Which document to sign: version 1 (the SHA-256 digest alone) or version 2 (a signed statement). */
export type DocumentRequest = { version: 1; signedAt: string } | { version: 2; statement: StatementRequest };

/** A package's size and digests (lowercase hex), computed where the package is. */
export interface PackageDigests {
  /** Bytes; signed by version 2 only. */
  size?: number;
  sha256?: string;
  blake3?: string;
}

/** The package to sign: its file (hashed by the signer, counted in `progress`), or its digests computed elsewhere. */
export type PackageToSign = { path: string; progress?: ProgressCounter } | { digests: PackageDigests };

export interface SignRequest {
  package: PackageToSign;
  document: DocumentRequest;
}

export interface SignResponse {
  /** The canonical document (what the `.sig` file holds, without its newline). */
  document: string;
  /** Set when the signer also stored the signature (the signing service, asked to store it). */
  signatureId?: string;
}

export interface Signer {
  sign(request: SignRequest): Promise<SignResponse>;
}
