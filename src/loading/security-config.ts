// The operator's policy for loading packages. There are no modes: only whether signatures are required.

export interface SecurityConfig {
  /** When true, a package loads only if a key the organization trusts signed it. Default false. */
  requireSignatures?: boolean;
  /** Key-encryption key, for deployments that also sign with database keys. */
  keyEncryptionKey?: Uint8Array | string;
  /** The organization whose trust decides, when the caller passes none. */
  verificationOrgId?: string;
  /** Largest package accepted, checked before anything is mapped. Default 512 MiB. */
  maxPackageBytes?: number;
}

export const DEFAULT_MAX_PACKAGE_BYTES = 512 * 1024 * 1024;

export function requiresSignatures(config: SecurityConfig): boolean {
  return config.requireSignatures === true;
}

export function maxPackageBytes(config: SecurityConfig): number {
  return config.maxPackageBytes ?? DEFAULT_MAX_PACKAGE_BYTES;
}
