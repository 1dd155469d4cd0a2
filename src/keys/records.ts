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
  publicKey: Buffer;
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

/* eslint-disable @typescript-eslint/no-explicit-any */
export function organizationFromRow(row: any): Organization {
  return { id: row.id, name: row.name, createdAt: row.created_at };
}

export function signingKeyFromRow(row: any): SigningKeyInfo {
  return {
    id: row.id,
    orgId: row.org_id,
    name: row.name,
    publicKey: Buffer.from(row.public_key),
    fingerprint: row.fingerprint,
    createdAt: row.created_at,
    revokedAt: row.revoked_at ?? null,
    kekId: row.kek_id,
    sealVersion: Number(row.seal_version),
  };
}

export function trustedKeyFromRow(row: any): TrustedKeyInfo {
  return {
    id: row.id,
    orgId: row.org_id,
    name: row.name ?? null,
    publicKey: Buffer.from(row.public_key),
    fingerprint: row.fingerprint,
    createdAt: row.created_at,
    revokedAt: row.revoked_at ?? null,
  };
}

export function grantFromRow(row: any): TrustGrant {
  return { id: row.id, parentOrgId: row.parent_org_id, childOrgId: row.child_org_id, createdAt: row.created_at, revokedAt: row.revoked_at ?? null };
}
