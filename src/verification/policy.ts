// The operator's load policy, checked in Rust on signed fields only (see crates/core/src/policy.rs):
// a version-2 statement's name, version and expiry, rollback marks; version 1 signs none of them.
import type { DocumentInfo, PolicyOptions } from '../native';
import type { TrustSource } from '../trust/trust-source';

export interface PackagePolicy {
  /** The package name the signed statement must carry (PACKAGE_NAME_MISMATCH). */
  expectName?: string;
  /**
   * The organization the signed statement must name (ORGANIZATION_MISMATCH; a statement naming none is refused
   * too). Never implied by database trust: a grant makes one organization trust another's keys, and so its
   * packages, whatever organization they were signed for.
   */
  expectOrganization?: string;
  /** Allowed versions: exact ones (`['1.0.0', '1.1.0']` or `'1.0.0,1.1.0'`) or a range (`'>=1.2.0, <2.0.0'`, `'^1.4'`) (VERSION_NOT_ALLOWED). */
  allowedVersions?: string | readonly string[];
  /** Refuse version-1 signatures (V2_REQUIRED). A policy on name, organization or versions refuses them anyway: they sign none of them. */
  requireV2?: boolean;
  /** How far clocks may disagree when checking expiry (SIGNATURE_EXPIRED), in seconds. Default 60. */
  clockSkewSeconds?: number;
  /**
   * Database trust only: a successful load records the highest version loaded per package name in the
   * organization, and a lower version is then refused (ROLLBACK_REFUSED) until an operator lowers the
   * mark (`packages reset-version`, audited). It implies `requireV2`: a version-1 (or cosign) signature
   * signs no name and no version, so it could carry any old package past the marks.
   */
  rollbackProtection?: boolean;
}

/** @internal The policy for Rust, with the rollback marks of the package names the documents claim (checked on the verified one). */
export async function nativePolicy(policy: PackagePolicy, trust: TrustSource, documents: readonly DocumentInfo[]): Promise<PolicyOptions> {
  const names = documents.flatMap((document) => (document.statement ? [document.statement.name] : []));
  const floors = policy.rollbackProtection && trust.versionMarks && names.length > 0 ? await trust.versionMarks.floors(names) : new Map<string, string>();
  const allowed = policy.allowedVersions;
  return {
    expectName: policy.expectName,
    expectOrganization: policy.expectOrganization,
    allowedVersions: allowed === undefined ? undefined : typeof allowed === 'string' ? allowed : allowed.join(','),
    // Rollback protection needs a signed name and version on every package, marked or not.
    requireV2: policy.requireV2 || policy.rollbackProtection,
    clockSkewSeconds: policy.clockSkewSeconds,
    rollbackFloors: [...floors].map(([name, version]) => ({ name, version })),
  };
}
