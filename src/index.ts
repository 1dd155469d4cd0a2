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
