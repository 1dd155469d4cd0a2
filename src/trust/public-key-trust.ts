// Trust in public keys pinned by the runner: no database at all (no knex, sqlite3 or pg is loaded).
import { CloacinaSignError } from '../errors';
import { readSmallFileSync } from '../files';
import { importPublicKey, publicKeyFingerprint } from '../keys/keypair';
import { pinnedRevocations } from './revocation-list';
import type { TrustedPublicKey, TrustSource } from './trust-source';

const MAX_KEY_FILE_BYTES = 64 * 1024;

/**
 * Trusts exactly these public keys: each a key file path (SPKI PEM or DER, or raw 32 bytes), or the
 * key itself as bytes. Ed25519 keys verify Cloacina's signatures; ECDSA P-256 keys (`cosign.pub`)
 * verify cosign signatures. Files are read now, so a missing or invalid key fails at start-up, not at
 * the first load.
 */
export interface PublicKeyTrustOptions {
  /**
   * A revocation list (`packages revocation-list`): its path (re-read before every decision) or bytes. It
   * must be signed by one of these keys; the packages it names are refused (PACKAGE_REVOKED), an expired
   * list refuses everything (REVOCATION_LIST_EXPIRED), and a list older than one seen is refused (ROLLBACK_REFUSED).
   */
  revocationList?: string | Uint8Array;
  /** The state file keeping the newest list sequence seen, across restarts (see src/trust/revocation-list.ts). */
  revocationState?: string;
}

export function publicKeyTrust(keys: string | Uint8Array | readonly (string | Uint8Array)[], options: PublicKeyTrustOptions = {}): TrustSource {
  const list = typeof keys === 'string' || keys instanceof Uint8Array ? [keys] : [...keys];
  if (list.length === 0) throw new CloacinaSignError('INVALID_INPUT', 'publicKeyTrust needs at least one public key');
  const trusted = new Map<string, TrustedPublicKey>();
  list.forEach((key, index) => {
    const publicKey = importNamed(
      typeof key === 'string' ? key : `key #${index + 1}`,
      typeof key === 'string' ? readSmallFileSync(key, MAX_KEY_FILE_BYTES, 'key file') : key,
    );
    trusted.set(publicKeyFingerprint(publicKey), { publicKey });
  });
  const ready = Promise.resolve(trusted as ReadonlyMap<string, TrustedPublicKey>);
  if (options.revocationState !== undefined && options.revocationList === undefined) {
    throw new CloacinaSignError('INVALID_INPUT', 'a revocation state file keeps the sequence of a revocation list: give the list too');
  }
  // Checked now, like the keys: a bad, expired or replayed list fails at start-up, not at the first load.
  const revokedPackages =
    options.revocationList === undefined
      ? undefined
      : pinnedRevocations(
          { list: options.revocationList, state: options.revocationState },
          [...trusted.values()].map((key) => key.publicKey).filter((key) => key.length === 32),
        );
  return {
    organization: () => Promise.resolve(null),
    trustedKeys: () => ready,
    ...(revokedPackages ? { revokedPackages } : {}),
  };
}

function importNamed(name: string, bytes: Uint8Array): Buffer {
  try {
    return importPublicKey(bytes);
  } catch (error) {
    if (error instanceof CloacinaSignError) throw new CloacinaSignError(error.code, `${name}: ${error.message}`, { cause: error });
    throw error;
  }
}
