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

// Signing (CI): one signPackage over a signer — a key (file or bytes), a database key opened only inside
// Rust, or the signing service (the key stays in the service, the package never travels).
export { ProgressCounter } from './progress';
export { signPackage } from './signing/sign';
export type { SignOptions, V1SignOptions, V2SignOptions, SignedPackage, SignedStatement } from './signing/sign';
export type { Signer, SignRequest, SignResponse, DocumentRequest, PackageToSign, PackageDigests, StatementRequest } from './signing/signer';
export { keySigner, type KeySignerOptions } from './signing/signers/key-signer';
export {
  databaseSigner,
  type DatabaseSigner,
  type DatabaseSignerOptions,
  type SealedKeySource,
  type SealedSigningKey,
} from './signing/signers/database-signer';
export { type ServiceSigner, serviceSigner, type ServiceSignerOptions } from './signing/signers/service-signer';
export { writeSignatureDocument } from './formats/v2';
export type { DetachedSignature, SignatureInfo } from './formats/v1';
export type { PackageStatement, SignedStatementDocument } from './formats/v2';
export type { StatementOptions } from './signing/statement';
export { SigningServiceClient } from './signing/api-client';
export type { SigningServiceClientOptions, ApiSignResult, ApiUploadResult } from './signing/api-client';

// Verification and loading (runners): one loader over a trust source, audited before any package code runs.
export { createPackageLoader } from './loading/package-loader';
export type { PackageLoader, PackageLoaderOptions, LoadOptions } from './loading/package-loader';
export type { VerificationResult, SignatureFormat, PackageFormatName } from './verification/result';
export type { VerifyOptions } from './verification/verifier';
export type { VerificationOutcome } from './verification/verify-many';
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
