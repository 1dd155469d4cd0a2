// Audit event types and the fields every event carries. Never put secrets in any field.

export type AuditEventType =
  | 'package.load.success'
  | 'package.load.failure'
  | 'package.signed'
  | 'package.sign.failure'
  | 'key.signing.created'
  | 'key.signing.revoked'
  | 'key.signing.rewrapped'
  | 'key.exported'
  | 'key.trusted.added'
  | 'key.trusted.revoked'
  | 'key.trust_acl.granted'
  | 'key.trust_acl.revoked'
  | 'verification.success'
  | 'verification.failure'
  | 'package.version.reset'
  | 'package.revoked'
  | 'package.unrevoked'
  | 'package.uploaded'
  | 'package.upload.failure'
  | 'api.request.refused'
  | 'token.created'
  | 'token.revoked'
  | 'audit.checkpoint.issued';

/** The digest algorithm of `package_hash`: SHA-256 (version 1, uploads, the service) or a version-2 statement's. */
export type DigestAlgorithm = 'sha256' | 'blake3';

export interface AuditEventInput {
  eventType: AuditEventType;
  orgId?: string | null;
  keyId?: string | null;
  packagePath?: string | null;
  packageHash?: string | null;
  signerFingerprint?: string | null;
  signatureVerified?: boolean | null;
  reason?: string | null;
  /** Who acted, when it is not the process itself: the signing service writes the API token's id (never the token). */
  actor?: string | null;
  /** The algorithm of `packageHash` (default SHA-256): a version-2 statement's digest may be BLAKE3. */
  digestAlgorithm?: DigestAlgorithm | null;
}

/** One audit event as logged and stored (snake_case, as in the JSON line and the audit_events row). */
export interface AuditEvent {
  id: string;
  event_type: AuditEventType;
  timestamp: string;
  org_id: string | null;
  key_id: string | null;
  package_path: string | null;
  package_hash: string | null;
  signer_fingerprint: string | null;
  signature_verified: boolean | null;
  reason: string | null;
  /** The API token id behind a signing-service request; null otherwise. */
  actor: string | null;
  /**
   * Not a column and not a flat field of the JSON line: the algorithm of package_hash when it is not
   * SHA-256 (the line's ECS part then names it: `file.hash.blake3`).
   */
  digest_algorithm?: DigestAlgorithm;
}
