// The only module that touches the generated N-API binding: it turns `[CODE] message` errors into typed ones.
// Nothing here is part of the public API: native handles never leave the package.
import type * as Binding from '../binding';
import { CloacinaSignError, errorForCode, isErrorCode } from './errors';
import { forThisHost } from './wasi';

/**
 * The platform packages, one per target in package.json `napi.targets`: npm installs the one whose
 * `os`/`cpu`/`libc` match, and the generated loader (binding.js) picks it, or the WebAssembly fallback.
 */
export const PLATFORM_PACKAGES = [
  { name: '@cloacina-sign/binding-linux-x64-gnu', target: 'x86_64-unknown-linux-gnu', platform: 'linux', arch: 'x64', libc: 'glibc' },
  { name: '@cloacina-sign/binding-linux-x64-musl', target: 'x86_64-unknown-linux-musl', platform: 'linux', arch: 'x64', libc: 'musl' },
  { name: '@cloacina-sign/binding-linux-arm64-gnu', target: 'aarch64-unknown-linux-gnu', platform: 'linux', arch: 'arm64', libc: 'glibc' },
  { name: '@cloacina-sign/binding-linux-arm64-musl', target: 'aarch64-unknown-linux-musl', platform: 'linux', arch: 'arm64', libc: 'musl' },
  { name: '@cloacina-sign/binding-wasm32-wasi', target: 'wasm32-wasip1-threads', platform: 'any', arch: 'any', libc: 'any' },
] as const;

/** This machine as the platform packages name it: `linux-x64 (musl)`, `darwin-arm64`. */
function describeHost(): { label: string; libc?: string } {
  if (process.platform !== 'linux') return { label: `${process.platform}-${process.arch}` };
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  const libc = header?.glibcVersionRuntime ? 'glibc' : 'musl';
  return { label: `${process.platform}-${process.arch} (${libc})`, libc };
}

/** Why no binding loaded, naming this platform and the packages that exist (never a build command). */
function unsupportedMessage(): string {
  const host = describeHost();
  const native = PLATFORM_PACKAGES.find((pkg) => pkg.platform === process.platform && pkg.arch === process.arch && pkg.libc === host.libc);
  const wasi = PLATFORM_PACKAGES[PLATFORM_PACKAGES.length - 1].name;
  const all = PLATFORM_PACKAGES.map((pkg) => pkg.name).join(', ');
  if (native) {
    return `cloacina-sign's native addon for ${host.label} did not load: its package ${native.name} is missing or broken, and the WebAssembly fallback ${wasi} did not load either (optional dependencies skipped at install?); install ${native.name} beside cloacina-sign`;
  }
  return `cloacina-sign has no native addon for ${host.label}, and its WebAssembly fallback ${wasi} did not load (optional dependencies skipped at install?); install ${wasi} beside cloacina-sign. Platform packages: ${all}`;
}

function loadBinding(): typeof Binding {
  try {
    return require('../../binding.js');
  } catch (error) {
    throw new CloacinaSignError('UNSUPPORTED_PLATFORM', unsupportedMessage(), { cause: error });
  }
}

const binding = forThisHost(loadBinding());

const CODED = /^\[([A-Z0-9_]+)\] ([\s\S]*)$/;

/** A binding error (or its `[CODE] message` form, as errors returned as data carry it) as a typed error. */
export function translate(error: unknown): Error {
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
export function typed<T extends Fn>(fn: T): Translated<T> {
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
  parseSignature: typed(binding.parseSignature),
  parseSignatureDocument: typed(binding.parseSignatureDocument),
  readSignatureFile: typed(binding.readSignatureFile),
  formatSignature: typed(binding.formatSignature),
  hashFile: typed(binding.hashFile),
  hashFileDigests: typed(binding.hashFileDigests),
  hashFileWithSignature: typed(binding.hashFileWithSignature),
  signPackage: typed(binding.signPackage),
  signatureMessage: typed(binding.signatureMessage),
  signatureDocument: typed(binding.signatureDocument),
  pairWithTrustedKeys: typed(binding.pairWithTrustedKeys),
  signDigests: typed(binding.signDigests),
  verifyDigests: typed(binding.verifyDigests),
  verifyFileWithKeys: typed(binding.verifyFileWithKeys),
  verifyFilesWithKeys: typed(binding.verifyFilesWithKeys),
  generateSealedKeypair: typed(binding.generateSealedKeypair),
  rewrapSealedKey: typed(binding.rewrapSealedKey),
  checkSealedKey: typed(binding.checkSealedKey),
  generateSealedKeypairUnder: typed(binding.generateSealedKeypairUnder),
  rewrapSealedKeyBetween: typed(binding.rewrapSealedKeyBetween),
  checkSealedKeyUnder: typed(binding.checkSealedKeyUnder),
  pkcs11KekId: typed(binding.pkcs11KekId),
  pkcs11CreateKek: typed(binding.pkcs11CreateKek),
  pkcs11KekValueReadable: typed(binding.pkcs11KekValueReadable),
  sealPackage: typed(binding.sealPackage),
  compareVersions: typed(binding.compareVersions),
  signRevocationListWithSealedKey: typed(binding.signRevocationListWithSealedKey),
  signNoteWithSealedKey: typed(binding.signNoteWithSealedKey),
  cosignCheckpoint: typed(binding.cosignCheckpoint),
  verifyRevocationList: typed(binding.verifyRevocationList),
  readSmallFile: typed(binding.readSmallFile),
  readSmallFileSync: typed(binding.readSmallFileSync),
};

/** Methods of native objects, with typed errors like the functions above. */
export const nativeMethods = {
  verifySealed: (sealed: Binding.SealedPackage, candidates: Binding.VerifyCandidate[], policy?: Binding.PolicyOptions) =>
    typed(() => sealed.verify(candidates, policy))(),
  allowUnsigned: (sealed: Binding.SealedPackage) => typed(() => sealed.allowUnsigned())(),
  checkFormat: (cleared: Binding.ClearedPackage, format: Binding.PackageFormat) => typed(() => cleared.checkFormat(format))(),
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
  SignatureRequest,
  VersionMark,
  RevocationListFields,
  SmallFileRead,
} from '../binding';
