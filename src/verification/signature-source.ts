// Where verification finds a package's signatures.
import type { SignatureInfo } from '../formats/v1';

export type SignatureSource =
  /** `<package>.sig` when it exists, else the signatures stored in the database. */
  | { kind: 'auto' }
  | { kind: 'detached-file'; path: string }
  | { kind: 'database' }
  /** A signature held by the caller: a document (JSON text or bytes) or its fields. */
  | { kind: 'memory'; signature: string | Uint8Array | SignatureInfo };

export const SignatureSource = {
  Auto: { kind: 'auto' } as SignatureSource,
  Database: { kind: 'database' } as SignatureSource,
  DetachedFile: (path: string): SignatureSource => ({ kind: 'detached-file', path }),
  Memory: (signature: string | Uint8Array | SignatureInfo): SignatureSource => ({ kind: 'memory', signature }),
};
