// The only module that touches the generated N-API binding: it turns `[CODE] message` errors into typed ones.
import type * as Binding from '../binding';
import { CloacinaSignError, ErrorCode, errorForCode } from './errors';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const binding: typeof Binding = require('../../binding.js');

const CODED = /^\[([A-Z_]+)\] ([\s\S]*)$/;

function translate(error: unknown): Error {
  if (error instanceof CloacinaSignError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const match = CODED.exec(message);
  if (match) return errorForCode(match[1] as ErrorCode, match[2]);
  if (error instanceof TypeError) return new CloacinaSignError('INVALID_INPUT', message);
  return error instanceof Error ? error : new Error(message);
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
  privateKeyFromAny: typed(binding.privateKeyFromAny),
  publicKeyOf: typed(binding.publicKeyOf),
  publicKeyToPem: typed(binding.publicKeyToPem),
  privateKeyToPem: typed(binding.privateKeyToPem),
  fingerprint: typed(binding.fingerprint),
  verifyMessage: typed(binding.verifyMessage),
  parseSignature: typed(binding.parseSignature),
  formatSignature: typed(binding.formatSignature),
  hashFile: typed(binding.hashFile),
  signFile: typed(binding.signFile),
  verifyDigest: typed(binding.verifyDigest),
  generateSealedKeypair: typed(binding.generateSealedKeypair),
  rewrapSealedKey: typed(binding.rewrapSealedKey),
  checkSealedKey: typed(binding.checkSealedKey),
  signFileWithSealedKey: typed(binding.signFileWithSealedKey),
  sealPackage: typed(binding.sealPackage),
};

/** Methods of native objects, with typed errors like the functions above. */
export const nativeMethods = {
  verifySealed: (sealed: Binding.SealedPackage, candidates: Binding.VerifyCandidate[]) => typed(() => sealed.verify(candidates))(),
  loadSealed: (sealed: Binding.SealedPackage) => typed(() => sealed.load())(),
  sealedBytes: (sealed: Binding.SealedPackage) => typed(() => sealed.bytes())(),
  openThroughProcPath: (sealed: Binding.SealedPackage, open: (path: string) => void) =>
    typed(() => sealed.openThroughProcPath(open))(),
  metadata: (pkg: Binding.NativePackage) => typed(() => pkg.metadata())(),
  hasSymbol: (pkg: Binding.NativePackage, name: string) => typed(() => pkg.hasSymbol(name))(),
  executeTask: (pkg: Binding.NativePackage, task: string, context: string, capacity: number) =>
    typed(() => pkg.executeTask(task, context, capacity))(),
};

export const ProgressCounter = binding.ProgressCounter;
export type ProgressCounter = Binding.ProgressCounter;
export type { NativePackage, PackageInfo, SealedPackage, PackageFormat } from '../binding';
export type { SignatureFields, SignedDigest, VerifiedPackage, VerifyCandidate, KeyBinding } from '../binding';
