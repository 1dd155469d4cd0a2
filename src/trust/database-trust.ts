// Trust from the database, read-only: what one organization trusts now (its own trusted keys and those
// inherited through grants) and the packages it revoked, with the hot-reload caches (a revocation reaches every process within 1 s).
// No KEK and no write access are needed.
import type { Database } from '../db/database';
import { findOrganization } from '../db/organizations';
import { revokedPackagesFor } from './package-revocations';
import { recordLoadedVersion, rollbackFloors } from '../db/version-marks';
import { signatureCacheFor } from '../verification/signature-cache';
import { trustCacheFor } from './trust-cache';
import type { TrustSource } from './trust-source';

export interface DatabaseTrustOptions {
  /** The organization whose trust decides: its id or its name. */
  org: string;
}

export function databaseTrust(db: Database, options: DatabaseTrustOptions): TrustSource {
  // An organization's id never changes: resolved once (a failed lookup is retried next time).
  let orgId: Promise<string> | undefined;
  const organization = () =>
    (orgId ??= findOrganization(db, options.org).then(
      (org) => org.id,
      (error: unknown) => {
        orgId = undefined;
        throw error;
      },
    ));
  return {
    organization,
    trustedKeys: async () => trustCacheFor(db).trustedKeys(await organization()),
    storedSignatures: (packageHash) => signatureCacheFor(db).get(packageHash),
    versionMarks: {
      floors: async (names) => rollbackFloors(db, await organization(), names),
      record: async (name, version) => recordLoadedVersion(db, await organization(), name, version),
    },
    revokedPackages: async () => revokedPackagesFor(db, await organization()),
  };
}
