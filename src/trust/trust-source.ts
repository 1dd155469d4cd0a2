// What a verifier trusts, injected as a value: the keys of an organization in the database
// (databaseTrust) or public keys pinned by the runner (publicKeyTrust).
import type { RevokedPackages } from './revoked-packages';

/** A public key trusted now, in its stored form: raw 32-byte Ed25519, or the SPKI DER of an ECDSA P-256 key. */
export interface TrustedPublicKey {
  publicKey: Buffer;
}

export interface TrustSource {
  /** The organization whose trust decides (named in audit events); null for pinned public keys. */
  organization(): Promise<string | null>;
  /** The keys trusted now, by lowercase hex fingerprint (SHA-256 of the stored form: raw Ed25519 key, or P-256 SPKI DER). */
  trustedKeys(): Promise<ReadonlyMap<string, TrustedPublicKey>>;
  /** The signature documents stored for a package, when this source stores signatures (the database does). */
  storedSignatures?(packageHash: string): Promise<readonly Buffer[]>;
  /** Rollback marks (the database has them): the highest version loaded per package name. */
  versionMarks?: VersionMarks;
  /** The packages (exact digests) this trust revoked, whoever signed them: refused with PACKAGE_REVOKED. */
  revokedPackages?(): Promise<RevokedPackages>;
}

/** The highest version of each package an organization has loaded (rollback protection). */
export interface VersionMarks {
  /** The marks of these names (name -> version); names without a mark are absent. */
  floors(names: readonly string[]): Promise<Map<string, string>>;
  /** Raises the mark of `name` to `version` when it is higher. */
  record(name: string, version: string): Promise<void>;
}
