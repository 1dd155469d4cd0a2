// Stored signature documents by package hash, cached like trust: only while the change generation is current.
import type { Database } from '../db/database';
import { cacheFor, GenerationCache } from '../db/generation-cache';
import { DetachedSignature } from '../formats/v1';
import { findSignatures } from '../db/packages';

const MAX_ENTRIES = 10_000;

/** The canonical documents of every stored signature of a package, in the fixed order. */
async function storedDocuments(db: Database, packageHash: string): Promise<Buffer[]> {
  const rows = await findSignatures(db, packageHash);
  return rows.map((row) => Buffer.from(DetachedSignature.fromSignatureInfo(row).toString()));
}

const createSignatureCache = (db: Database) => new GenerationCache(db, (hash) => storedDocuments(db, hash), MAX_ENTRIES);

/** The one stored-signature cache of a database handle: `get(packageHash)`. */
export function signatureCacheFor(db: Database): GenerationCache<Buffer[]> {
  return cacheFor(db, createSignatureCache);
}
