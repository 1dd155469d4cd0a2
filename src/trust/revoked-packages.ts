// Revoked packages: exact artifacts (a SHA-256, a BLAKE3 or both) an organization refuses whoever signed
// them. The set is consulted after the signature decision and before any byte of the package is parsed.
import { errorForCode } from '../errors';
import type { DigestRequest } from '../native';

/** One revoked package. */
export interface PackageRevocation {
  /** Lowercase hex; null when only the other digest was revoked. */
  sha256: string | null;
  blake3: string | null;
  reason: string;
  /** Database trust: the organization that revoked it (the trusting one, or one whose trust it inherits). */
  orgId?: string;
  revokedAt?: string;
}

/** The digests known of a package (lowercase hex). */
export interface KnownDigests {
  sha256?: string | null;
  blake3?: string | null;
}

export class RevokedPackages {
  private readonly bySha256 = new Map<string, PackageRevocation>();
  private readonly byBlake3 = new Map<string, PackageRevocation>();
  /** Digests a package must have computed so that every revocation can be matched. */
  private readonly needs = { sha256: false, blake3: false };

  constructor(readonly entries: readonly PackageRevocation[]) {
    for (const entry of entries) {
      if (entry.sha256) this.bySha256.set(entry.sha256, entry);
      if (entry.blake3) this.byBlake3.set(entry.blake3, entry);
      // A revocation naming both digests matches whichever the signature needed computed.
      if (!entry.blake3) this.needs.sha256 = true;
      if (!entry.sha256) this.needs.blake3 = true;
    }
  }

  static readonly NONE = new RevokedPackages([]);

  get size(): number {
    return this.entries.length;
  }

  /** The revocation matching one of these digests, if any. */
  find(digests: KnownDigests): PackageRevocation | undefined {
    return (digests.sha256 ? this.bySha256.get(digests.sha256) : undefined) ?? (digests.blake3 ? this.byBlake3.get(digests.blake3) : undefined);
  }

  /** @internal `request` plus the digests a revocation naming one digest only needs. */
  widen(request: DigestRequest): DigestRequest {
    return { sha256: request.sha256 || this.needs.sha256, blake3: request.blake3 || this.needs.blake3 };
  }

  /** Whether these digests are enough to match every revocation. */
  covers(digests: KnownDigests): boolean {
    return (!this.needs.sha256 || Boolean(digests.sha256)) && (!this.needs.blake3 || Boolean(digests.blake3));
  }
}

/** The trust's revoked packages (none when it keeps none). */
export function revokedPackagesOf(trust: { revokedPackages?(): Promise<RevokedPackages> }): Promise<RevokedPackages> {
  return trust.revokedPackages ? trust.revokedPackages() : Promise.resolve(RevokedPackages.NONE);
}

/** PACKAGE_REVOKED when one of the digests was revoked. `label` names the package in the message. */
export function refuseRevoked(revoked: RevokedPackages, digests: KnownDigests, label: string): void {
  const hit = revoked.find(digests);
  if (!hit) return;
  const digest = hit.sha256 && hit.sha256 === digests.sha256 ? `SHA-256 ${hit.sha256}` : `BLAKE3 ${hit.blake3}`;
  throw errorForCode('PACKAGE_REVOKED', `${label} (${digest}) was revoked: ${JSON.stringify(hit.reason)}; it is refused whoever signed it`);
}
