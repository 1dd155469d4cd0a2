// Stored signature documents by package hash, cached like trust: only while the change generation is current.
import type { Database } from '../db/database';
import { DetachedSignature } from '../signing/detached-signature';
import { findSignatures } from '../signing/db-signer';

const MAX_ENTRIES = 10_000;

interface Entry {
  generation: number;
  documents: Promise<Buffer[]>;
}

class SignatureCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly db: Database) {}

  /** The canonical documents of every stored signature of the package, in the fixed order. */
  async documents(packageHash: string): Promise<Buffer[]> {
    const generation = await this.db.changes.current();
    const entry = this.entries.get(packageHash);
    if (entry && entry.generation === generation) return entry.documents;
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    const documents = findSignatures(this.db, packageHash).then((rows) =>
      rows.map((row) => Buffer.from(DetachedSignature.fromSignatureInfo(row).toString())),
    );
    const fresh = { generation, documents };
    this.entries.set(packageHash, fresh);
    documents.catch(() => {
      if (this.entries.get(packageHash) === fresh) this.entries.delete(packageHash);
    });
    return documents;
  }
}

const caches = new WeakMap<Database, SignatureCache>();

export function signatureCacheFor(db: Database): SignatureCache {
  let cache = caches.get(db);
  if (!cache) {
    cache = new SignatureCache(db);
    caches.set(db, cache);
  }
  return cache;
}
