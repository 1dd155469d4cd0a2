// What the key tables hold, as the API returns it (never the sealed private key).

export interface Organization {
  id: string;
  name: string;
  createdAt: string;
}

export interface SigningKeyInfo {
  id: string;
  orgId: string;
  name: string;
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Buffer;
  fingerprint: string;
  createdAt: string;
  revokedAt: string | null;
  /** Identifier of the KEK that seals the private key (not the KEK). */
  kekId: string;
  sealVersion: number;
}

export interface TrustedKeyInfo {
  id: string;
  /** The organization whose row this is (for inherited keys, the org that trusts it directly). */
  orgId: string;
  name: string | null;
  /**
   * The stored form: raw 32 bytes for Ed25519, SPKI DER (91 bytes) for ECDSA P-256 (cosign keys); the
   * length alone tells them apart (publicKeyAlgorithm).
   */
  publicKey: Buffer;
  /** SHA-256 of `publicKey`. */
  fingerprint: string;
  createdAt: string;
  revokedAt: string | null;
}

export interface TrustGrant {
  id: string;
  parentOrgId: string;
  childOrgId: string;
  createdAt: string;
  revokedAt: string | null;
}

export interface ExportedPublicKey {
  keyId: string;
  orgId: string;
  fingerprint: string;
  raw: Buffer;
  pem: string;
}

/** A row as the driver returns it: the columns this module reads, typed loosely (SQLite and PostgreSQL differ in detail). */
export type Row = Record<string, unknown>;

const text = (value: unknown): string => String(value);
const optionalText = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));
const bytes = (value: unknown): Buffer => Buffer.from(value as Uint8Array);

export function organizationFromRow(row: Row): Organization {
  return { id: text(row.id), name: text(row.name), createdAt: text(row.created_at) };
}

export function signingKeyFromRow(row: Row): SigningKeyInfo {
  return {
    id: text(row.id),
    orgId: text(row.org_id),
    name: text(row.name),
    publicKey: bytes(row.public_key),
    fingerprint: text(row.fingerprint),
    createdAt: text(row.created_at),
    revokedAt: optionalText(row.revoked_at),
    kekId: text(row.kek_id),
    sealVersion: Number(row.seal_version),
  };
}

export function trustedKeyFromRow(row: Row): TrustedKeyInfo {
  return {
    id: text(row.id),
    orgId: text(row.org_id),
    name: optionalText(row.name),
    publicKey: bytes(row.public_key),
    fingerprint: text(row.fingerprint),
    createdAt: text(row.created_at),
    revokedAt: optionalText(row.revoked_at),
  };
}

export function grantFromRow(row: Row): TrustGrant {
  return {
    id: text(row.id),
    parentOrgId: text(row.parent_org_id),
    childOrgId: text(row.child_org_id),
    createdAt: text(row.created_at),
    revokedAt: optionalText(row.revoked_at),
  };
}
