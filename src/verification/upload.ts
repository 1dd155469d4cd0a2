// An upload: a package's digests and its signature document, verified against an organization's trust and
// only then stored, the package record, the document and the upload's audit row in one transaction. The
// signing service's upload route and `package upload` (straight into the database) both store through here.
import type { DatabaseAuditSink } from '../audit/database-sink';
import type { AuditEvent } from '../audit/events';
import type { Database } from '../db/database';
import { type NameConflict, type StoredPackage, storeDocument } from '../db/packages';
import type { DocumentInfo, NativeVerified } from '../native';
import type { TrustSource } from '../trust/trust-source';
import { SignatureSource } from './signature-source';
import { decideDigest } from './verifier';

/** The uploaded package as hashed: its SHA-256 always (packages are found by it), its BLAKE3 when the statement names it. */
export interface UploadedDigests {
  /** How the package is named in a refusal. */
  label: string;
  sha256: string;
  size?: number;
  blake3?: string;
}

export interface UploadStore {
  /** The package's name; see StoreOptions for when a stored one is kept. */
  name: string | null;
  nameConflict?: NameConflict;
  /** Where the audit row is written, in the store's transaction. */
  rows: DatabaseAuditSink;
  /** The `package.uploaded` event of an upload that verified; called before anything is stored. */
  event(verified: NativeVerified): AuditEvent;
}

export interface VerifiedUpload {
  stored: StoredPackage;
  verified: NativeVerified;
  /** The event written with the rows (its JSON lines are the caller's). */
  event: AuditEvent;
}

/** Verifies `document` over the digests against `trust`; a refused upload throws and stores nothing. */
export async function uploadVerified(
  db: Database,
  trust: TrustSource,
  document: DocumentInfo,
  digests: UploadedDigests,
  store: UploadStore,
): Promise<VerifiedUpload> {
  const verified = await decideDigest(trust, digests.sha256, SignatureSource.Memory(document.canonical), {
    label: digests.label,
    size: digests.size,
    blake3: digests.blake3,
  });
  const event = store.event(verified);
  const stored = await storeDocument(db, document, {
    packageHash: digests.sha256,
    name: store.name,
    nameConflict: store.nameConflict,
    audit: { rows: store.rows, event },
  });
  return { stored, verified, event };
}
