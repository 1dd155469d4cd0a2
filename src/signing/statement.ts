// What a version-2 signature is asked to say: the package, its version, optionally its organization and
// an expiry (BLAKE3 by default, SHA-256 on request); the document itself is ../formats/v2.
import { futureExpiryTime } from '../time';
import type { StatementRequest } from './signer';

export interface StatementOptions {
  /** The package name (1 to 255 bytes, no control characters). */
  name: string;
  /** A SemVer 2.0.0 version. */
  version: string;
  /** The organization the package is for (optional; signed when given). */
  organization?: string;
  /** The digest the statement names: `blake3` (default: hashes one file on every core) or `sha256`. */
  digest?: 'blake3' | 'sha256';
  /** When the signature stops being valid: an RFC 3339 time, a Date, or a duration from now (`90d`, `12h`, `30m`, `45s`). */
  expires?: string | Date;
  /** The signing time (default now). */
  issuedAt?: Date;
}

/** @internal The statement's fields for a signer (validated in Rust before anything is signed). */
export function statementRequest(options: StatementOptions): StatementRequest {
  const issuedAt = options.issuedAt ?? new Date();
  return {
    name: options.name,
    version: options.version,
    organization: options.organization,
    digestAlgorithm: options.digest ?? 'blake3',
    issuedAt: issuedAt.toISOString(),
    expiresAt: options.expires === undefined ? undefined : futureExpiryTime(options.expires, issuedAt),
  };
}
