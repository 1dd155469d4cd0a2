// The public API of cloacina-sign: what runners, CI jobs and operators call, and nothing else.
export * from './errors';

// Keys: Ed25519 key pairs, their encodings and key files; trusted public keys may also be ECDSA P-256 (cosign.pub).
export {
  generateKeypair,
  importPrivateKey,
  importPublicKey,
  privateKeyToPem,
  publicKeyAlgorithm,
  publicKeyFingerprint,
  publicKeyOf,
  publicKeyToPem,
} from './keys/keypair';
export type { KeyAlgorithm, KeyInput, Keypair } from './keys/keypair';
export { readPrivateKeyFile, readPublicKeyFile, writeKeypairFiles, publicKeyPathFor } from './keys/key-files';

// Signing (CI): the version-1 detached signature, shared with Cloacina.
export { hashFile } from './hashing';
export { ProgressCounter } from './progress';
export { signPackage, signStatement } from './signing/sign';
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
export { serviceSigner, type ServiceSignerOptions } from './signing/signers/service-signer';
export { DetachedSignature } from './formats/v1';
export type { SignatureInfo } from './formats/v1';
// Version-2 signatures: a signed statement of name, version, size, digest and expiry.
export { writeSignatureDocument } from './formats/v2';
export type { SignedStatementDocument } from './formats/v2';
export type { StatementOptions } from './signing/statement';
// Signing through the signing service (`cloacina-sign serve`): the key stays in the service, the package never travels.
export { SigningServiceClient, apiTokenFromEnv, API_TOKEN_ENV } from './signing/api-client';
export type { SigningServiceClientOptions, ApiSignResult, ApiUploadResult } from './signing/api-client';

// Verification and loading (runners): one loader over a trust source, audited before any package code runs.
export { createPackageLoader, DEFAULT_MAX_PACKAGE_BYTES } from './loading/package-loader';
export type { PackageLoader, PackageLoaderOptions, LoadOptions } from './loading/package-loader';
export type { VerificationResult, VerifyOptions, PackageStatement, SignatureFormat, PackageFormatName } from './verification/verifier';
export type { PackagePolicy } from './verification/policy';
export { databaseTrust } from './trust/database-trust';
export type { DatabaseTrustOptions } from './trust/database-trust';
export { publicKeyTrust, type PublicKeyTrustOptions } from './trust/public-key-trust';
export type { TrustSource, TrustedPublicKey } from './trust/trust-source';
export { SignatureSource } from './verification/signature-source';
export { verifyPackageOffline } from './verification/offline';
export type { VerifiedPackage } from './verification/offline';
export { TaskFailed, DEFAULT_RESULT_CAPACITY } from './loading/loaded-package';
export type { LoadedPackage, PackageMetadata, TaskMetadata } from './loading/loaded-package';

// Audit destinations.
export { auditToDatabase } from './audit/database-sink';
export { auditToFile, auditToStream } from './audit/sink';
export type { AuditSink } from './audit/sink';
export type { AuditEvent, AuditEventType } from './audit/events';

// The database (operators): organizations, keys, trust grants, stored signatures.
export { openDatabase, DEFAULT_DATABASE_TIMEOUT_MS } from './db/database';
export type { Database, OpenOptions } from './db/database';
export { migrateLatest } from './db/migrate';
export { DbKeyManager } from './keys/db-key-manager';
export type { DbKeyManagerOptions } from './keys/db-key-manager';
export type { RewrapResult } from './keys/rewrap';
export type { Organization, SigningKeyInfo, TrustedKeyInfo, TrustGrant, ExportedPublicKey } from './keys/records';
export type { EffectiveTrustedKey } from './trust/acl';
export { parseKek, kekFromEnv, KEK_ENV } from './keys/kek';
export { resolveKek, kekFromFile, kekFromPkcs11, kekId, KEK_FILE_ENV, KEK_PKCS11_ENV, PKCS11_PIN_ENV, type Kek, type TokenKek } from './keys/kek';
export { DbPackageSigner } from './signing/db-signer';
export { resetVersion } from './trust/version-marks';
export type { DbSignResult } from './signing/db-signer';
export type { StoredSignature } from './db/packages';
