// The only module that touches the generated N-API binding: it turns `[CODE] message` errors into typed ones.
// Nothing here is part of the public API: native handles never leave the package.
import type * as Binding from '../binding';
import { CloacinaSignError, errorForCode, isErrorCode } from './errors';

/** The one platform the addon is built for (package.json `os`/`cpu` say the same). */
const SUPPORTED = { platform: 'linux', arch: 'x64' } as const;

function loadBinding(): typeof Binding {
  if (process.platform !== SUPPORTED.platform || process.arch !== SUPPORTED.arch) {
    throw new CloacinaSignError(
      'UNSUPPORTED_PLATFORM',
      `cloacina-sign runs on ${SUPPORTED.platform}-${SUPPORTED.arch} (glibc) only; this is ${process.platform}-${process.arch}`,
    );
  }
  try {
    return require('../../binding.js');
  } catch (error) {
    throw new CloacinaSignError(
      'UNSUPPORTED_PLATFORM',
      `cloacina-sign's native addon for ${process.platform}-${process.arch} could not be loaded (it needs glibc; was the package built with \`npm run build\`?)`,
      { cause: error },
    );
  }
}

const binding = loadBinding();

const CODED = /^\[([A-Z0-9_]+)\] ([\s\S]*)$/;

function translate(error: unknown): Error {
  if (error instanceof CloacinaSignError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const match = CODED.exec(message);
  // A coded error carries everything the native error had (its code and message): no cause to keep,
  // which leaves `cause` free for what happened next (e.g. the failure could not be audited).
  if (match && isErrorCode(match[1])) return errorForCode(match[1], match[2]);
  if (error instanceof TypeError) return new CloacinaSignError('INVALID_INPUT', message, { cause: error });
  return new CloacinaSignError('INTERNAL', message, { cause: error });
}

type Fn = (...args: never[]) => unknown;
type Translated<T extends Fn> = T extends (...args: infer A) => infer R ? (...args: A) => R : never;

/** Wraps a binding function so its errors arrive typed, sync or async alike. */
function typed<T extends Fn>(fn: T): Translated<T> {
  return ((...args: Parameters<T>) => {
    let result: unknown;
    try {
      result = fn(...args);
    } catch (error) {
      throw translate(error);
    }
    if (result instanceof Promise) return result.catch((error) => Promise.reject(translate(error)));
    return result;
  }) as Translated<T>;
}

export const native = {
  generateKeypair: typed(binding.generateKeypair),
  publicKeyFromAny: typed(binding.publicKeyFromAny),
  publicKeyAlgorithm: typed(binding.publicKeyAlgorithm),
  privateKeyFromAny: typed(binding.privateKeyFromAny),
  publicKeyOf: typed(binding.publicKeyOf),
  publicKeyToPem: typed(binding.publicKeyToPem),
  privateKeyToPem: typed(binding.privateKeyToPem),
  fingerprint: typed(binding.fingerprint),
  verifyMessage: typed(binding.verifyMessage),
  parseSignature: typed(binding.parseSignature),
  parseSignatureDocument: typed(binding.parseSignatureDocument),
  readSignatureFile: typed(binding.readSignatureFile),
  formatSignature: typed(binding.formatSignature),
  hashFile: typed(binding.hashFile),
  hashFileDigests: typed(binding.hashFileDigests),
  hashFileWithSignature: typed(binding.hashFileWithSignature),
  signFile: typed(binding.signFile),
  signStatementFile: typed(binding.signStatementFile),
  signStatementFileWithSealedKey: typed(binding.signStatementFileWithSealedKey),
  verifyDigests: typed(binding.verifyDigests),
  verifyFileWithKeys: typed(binding.verifyFileWithKeys),
  generateSealedKeypair: typed(binding.generateSealedKeypair),
  rewrapSealedKey: typed(binding.rewrapSealedKey),
  checkSealedKey: typed(binding.checkSealedKey),
  signFileWithSealedKey: typed(binding.signFileWithSealedKey),
  signDigestWithSealedKey: typed(binding.signDigestWithSealedKey),
  signStatementDigestWithSealedKey: typed(binding.signStatementDigestWithSealedKey),
  generateSealedKeypairUnder: typed(binding.generateSealedKeypairUnder),
  rewrapSealedKeyBetween: typed(binding.rewrapSealedKeyBetween),
  checkSealedKeyUnder: typed(binding.checkSealedKeyUnder),
  pkcs11KekId: typed(binding.pkcs11KekId),
  pkcs11CreateKek: typed(binding.pkcs11CreateKek),
  pkcs11KekValueReadable: typed(binding.pkcs11KekValueReadable),
  sealPackage: typed(binding.sealPackage),
  compareVersions: typed(binding.compareVersions),
  // Test support: one error of every Rust variant, thrown as a failing call throws it.
  errorSamples: binding.errorSamples,
  throwErrorSample: typed(binding.throwErrorSample),
};

/** Methods of native objects, with typed errors like the functions above. */
export const nativeMethods = {
  verifySealed: (sealed: Binding.SealedPackage, candidates: Binding.VerifyCandidate[], policy?: Binding.PolicyOptions) =>
    typed(() => sealed.verify(candidates, policy))(),
  allowUnsigned: (sealed: Binding.SealedPackage) => typed(() => sealed.allowUnsigned())(),
  loadCleared: (cleared: Binding.ClearedPackage) => typed(() => cleared.load())(),
  clearedBytes: (cleared: Binding.ClearedPackage) => typed(() => cleared.bytes())(),
  openThroughProcPath: (cleared: Binding.ClearedPackage, open: (path: string) => void) => typed(() => cleared.openThroughProcPath(open))(),
  metadata: (pkg: Binding.NativePackage) => typed(() => pkg.metadata())(),
  hasSymbol: (pkg: Binding.NativePackage, name: string) => typed(() => pkg.hasSymbol(name))(),
  streamHasherFinish: (hasher: Binding.StreamHasher) => typed(() => hasher.finish())(),
  executeTask: (pkg: Binding.NativePackage, task: string, context: string, capacity: number) => typed(() => pkg.executeTask(task, context, capacity))(),
};

export const NativeProgressCounter = binding.ProgressCounter;
export const NativeStreamHasher = binding.StreamHasher;
export const MAX_SIGNATURE_FILE_BYTES = binding.MAX_SIGNATURE_FILE_BYTES;
export type NativeProgressCounter = Binding.ProgressCounter;
export type NativeStreamHasher = Binding.StreamHasher;
export type { ClearedPackage, NativePackage, PackageInfo, SealedPackage, PackageFormat } from '../binding';
export type {
  SignatureFields,
  SignedDigest,
  VerifiedPackage as NativeVerified,
  VerifyCandidate,
  KeyBinding,
  Pkcs11Kek,
  Digests,
  DigestRequest,
  DocumentInfo,
  PolicyOptions,
  StatementFields,
  StatementInput,
  VersionMark,
} from '../binding';
