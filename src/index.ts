// The public API of cloacina-sign: what runners, CI jobs and operators call, and nothing else. Every
// other module stays internal to the package (its exports map exposes only this entry point).

// Errors: one class; callers branch on `error.code`, never on subclasses or messages.
export { CloacinaSignError } from './errors';
export type { ErrorCode, VerificationFailureCode } from './errors';

// Keys: Ed25519 key pairs, their encodings and key files; trusted public keys may also be ECDSA P-256 (cosign.pub).
export { generateKeypair, importPublicKey, privateKeyToPem, publicKeyToPem } from './keys/keypair';
export type { KeyInput, Keypair } from './keys/keypair';
export { readPrivateKeyFile, writeKeypairFiles } from './keys/key-files';
export type { PrivateKeyFileOptions } from './keys/key-files';

// --- Signing (CI): today's ways to sign, by key, through the signing service or with a database-held key.
// --- Kept together so that one signPackage over a signer (key, database, service) can replace the block whole.
export { signPackage } from './signing/sign';
export { ProgressCounter } from './progress';
export type { SignOptions } from './signing/sign';
export { DetachedSignature } from './signing/detached-signature';
export type { SignatureInfo } from './signing/detached-signature';
export { signStatement, writeSignatureDocument } from './signing/statement';
export type { StatementOptions, SignedStatementDocument } from './signing/statement';
export { SigningServiceClient } from './signing/api-client';
export type { SigningServiceClientOptions, ApiSignResult, ApiUploadResult } from './signing/api-client';
export { DbPackageSigner } from './signing/db-signer';
export type { DbSignResult, StoredSignature } from './signing/db-signer';
// --- End of the signing block.

// Verification and loading (runners): one loader over a trust source, audited before any package code runs.
export { createPackageLoader } from './loading/package-loader';
export type { PackageLoader, PackageLoaderOptions, LoadOptions } from './loading/package-loader';
export type { VerificationResult, VerifyOptions, PackageStatement, SignatureFormat, PackageFormatName } from './verification/verifier';
export type { PackagePolicy } from './verification/policy';
export { databaseTrust } from './trust/database-trust';
export type { DatabaseTrustOptions } from './trust/database-trust';
export { publicKeyTrust } from './trust/public-key-trust';
export type { PublicKeyTrustOptions } from './trust/public-key-trust';
export type { TrustSource, TrustedPublicKey } from './trust/trust-source';
export { SignatureSource } from './verification/signature-source';
export { verifyPackageOffline } from './verification/offline';
export type { OfflineVerification } from './verification/offline';
export type { LoadedPackage, PackageMetadata, TaskMetadata } from './loading/loaded-package';

// Audit destinations.
export { auditToDatabase } from './audit/database-sink';
export { auditToFile, auditToStream } from './audit/sink';
export type { AuditSink } from './audit/sink';
export type { AuditEvent, AuditEventType } from './audit/events';

// The database (operators): organizations, keys, trust grants, stored signatures. `openDatabase(url, { migrate: true })` migrates.
export { openDatabase } from './db/database';
export type { Database, OpenOptions } from './db/database';
export { DbKeyManager } from './keys/db-key-manager';
export type { DbKeyManagerOptions, ExportedPublicKey } from './keys/db-key-manager';
export type { RewrapResult } from './keys/rewrap';
export type { Organization } from './db/organizations';
export type { SigningKeyInfo } from './db/keys';
export type { TrustedKeyInfo } from './db/trusted-keys';
export type { TrustGrant } from './db/grants';
export type { EffectiveTrustedKey } from './trust/acl';
// The key-encryption key from the environment, a file or a PKCS#11 token (CLOACINA_KEY_ENCRYPTION_KEY, _FILE, CLOACINA_KEK_PKCS11).
export { resolveKek } from './keys/kek';
export type { Kek, KekSourceOptions, TokenKek } from './keys/kek';
