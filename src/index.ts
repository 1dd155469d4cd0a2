// The public API of cloacina-sign.
export * from './errors';
export {
  generateKeypair,
  importPrivateKey,
  importPublicKey,
  privateKeyToPem,
  publicKeyFingerprint,
  publicKeyOf,
  publicKeyToPem,
} from './keys/keypair';
export type { KeyInput, Keypair } from './keys/keypair';
export { readPrivateKeyFile, readPublicKeyFile, writeKeypairFiles, publicKeyPathFor } from './keys/key-files';
export { hashFile } from './hashing';
export { signPackage } from './signing/sign';
export type { SignOptions } from './signing/sign';
export { DetachedSignature, MAX_SIGNATURE_FILE_BYTES } from './signing/detached-signature';
export type { SignatureInfo } from './signing/detached-signature';
export { verifyPackageOffline } from './verification/offline';
export type { VerifiedPackage, VerifyOptions } from './verification/offline';
export { ProgressCounter } from './native';

// Database-backed keys, trust and verification.
export { openDatabase, Database } from './db/database';
export type { OpenOptions } from './db/database';
export { parseDatabaseUrl, redactUrl } from './db/url';
export type { DatabaseTarget, Engine } from './db/url';
export { migrateLatest, pendingMigrations, assertMigrated, MIGRATIONS_DIRECTORY } from './db/migrate';
export { DbKeyManager, SEAL_VERSION } from './keys/db-key-manager';
export type { RewrapResult } from './keys/rewrap';
export type { Organization, SigningKeyInfo, TrustedKeyInfo, TrustGrant, ExportedPublicKey } from './keys/records';
export { parseKek, kekFromEnv, kekId, KEK_ENV } from './keys/kek';
export { TrustCache, trustCacheFor } from './trust/trust-cache';
export { inheritedOrgs } from './trust/acl';
export { DbPackageSigner } from './signing/db-signer';
export type { StoredSignature, DbSignResult } from './signing/db-signer';
export { SignatureSource } from './verification/signature-source';
export { verifyPackage, resolveCandidates, createVerificationContext } from './verification/verify';
export type { VerificationContext, DbVerifiedPackage } from './verification/verify';
export { AuditLog } from './audit/audit-log';
export type { AuditLogOptions, AuditDestination } from './audit/audit-log';
export type { AuditEvent, AuditEventInput, AuditEventType } from './audit/events';
export type { VerifyCandidate } from './native';

// Guarded loading: the runner loads exactly the bytes it verified.
export { verifyAndLoadPackage, verifyAndRequireAddon, verifyAndCompileWasm } from './loading/verify-and-load';
export { LoadedPackage, TaskFailed, DEFAULT_RESULT_CAPACITY } from './loading/loaded-package';
export type { PackageMetadata, TaskMetadata } from './loading/loaded-package';
export { DEFAULT_MAX_PACKAGE_BYTES } from './loading/security-config';
export type { SecurityConfig } from './loading/security-config';
