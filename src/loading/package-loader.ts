// The runner's entry point: one object that verifies packages and loads exactly the bytes it verified,
// over a trust source (database or pinned public keys), with an explicit audit destination.
import type { Registry } from 'prom-client';
import { AuditTrail } from '../audit/audit-trail';
import type { AuditSink } from '../audit/sink';
import { CloacinaSignError } from '../errors';
import { nativeMethods } from '../native';
import { ProgressCounter } from '../progress';
import type { TrustSource } from '../trust/trust-source';
import type { PackagePolicy } from '../verification/policy';
import { SignatureSource } from '../verification/signature-source';
import { checkPackageLimit, nativeFormat } from '../verification/sealed-decision';
import type { PackageFormatName, VerificationResult } from '../verification/result';
import type { VerifyOptions } from '../verification/verifier';
import { verifyWithTrust } from '../verification/verifier';
import { type VerificationOutcome, verifyEach, verifyManyWithTrust } from '../verification/verify-many';
import { guardedLoad, type LoadPolicy } from './guarded-load';
import { GuardedPackage, type LoadedPackage } from './loaded-package';
import { type LoadObserver, type LoadOperation, loaderMetrics } from './metrics';

// Node has WebAssembly at run time; its type lives in the DOM library, which a consumer may not load.
// An (empty) interface merges with the DOM's declaration where there is one.
declare global {
  namespace WebAssembly {
    interface Module {}
  }
}

export const DEFAULT_MAX_PACKAGE_BYTES = 512 * 1024 * 1024;

export interface PackageLoaderOptions {
  /** Whose keys decide: databaseTrust(db, { org }) or publicKeyTrust([...]). */
  trust: TrustSource;
  /** Where every verification and load is recorded, before any package code runs: auditToDatabase(db), auditToFile(path), auditToStream(stream), or several. */
  audit: AuditSink | readonly AuditSink[];
  /**
   * When true, only a package a trusted key signed loads. When false (the default, as Cloacina's `require_signatures`),
   * an unsigned package loads, audited as such; a signature that is present must still verify.
   */
  requireSignatures?: boolean;
  /** Largest package accepted, checked before anything is mapped. Default 512 MiB. */
  maxPackageBytes?: number;
  /**
   * The operator's policy on signed fields (version-2 statements): expected name, allowed versions,
   * refusing version 1, clock skew for expiry, rollback protection (database trust). Applies to
   * `verify` and to every load; every refusal is a VerificationFailure with its own code.
   */
  policy?: PackagePolicy;
  /**
   * A prom-client Registry to count verifications and loads in (the runner serves it, or merges it into its
   * own): `cloacina_sign_verifications_total`, `cloacina_sign_loads_total`, their durations and the bytes
   * verified. Loaders may share a registry. Default: no metrics, and prom-client is never loaded.
   */
  metrics?: Registry;
}

export interface LoadOptions {
  /** Where the signatures are (default SignatureSource.Auto: the `.sig` beside the package and the stored ones). */
  signature?: SignatureSource;
  /**
   * `load`: what the package must also be, checked once the signature verified and before the load is
   * audited: `wasm` refuses a package without WebAssembly magic (NOT_A_WASM_MODULE). Default `elf` (which
   * `load` and `requireAddon` always require); `compileWasm` always requires `wasm`.
   */
  format?: PackageFormatName;
}

export interface PackageLoader {
  readonly requireSignatures: boolean;
  /** Verifies a package (a signature is always required here); audited as verification.success|failure. */
  verify(path: string, options?: VerifyOptions): Promise<VerificationResult>;
  /**
   * Verifies many packages, each as `verify` does and audited the same way; the outcomes come back in the
   * order given, a failure as an outcome with its error. With pinned keys and each `.sig` beside its
   * package, the decisions are made in one native call on every core.
   */
  verifyMany(paths: readonly string[], options?: VerifyOptions): Promise<VerificationOutcome[]>;
  /** Verifies a workflow package and loads it from a sealed in-memory copy; audited as package.load.success|failure. */
  load(path: string, options?: LoadOptions): Promise<LoadedPackage>;
  /** The same guarantee for a native Node addon, loaded with `process.dlopen`; resolves to its exports. */
  requireAddon(path: string, options?: LoadOptions): Promise<unknown>;
  /** Verifies a WebAssembly module and compiles it from the very bytes that were verified. */
  compileWasm(path: string, options?: LoadOptions): Promise<WebAssembly.Module>;
}

/** What each kind of load requires of the cleared bytes before it is audited and performed. */
const SHARED_LIBRARY = [nativeFormat('elf')];
const WASM = [nativeFormat('wasm')];

/** Cleared images of loaded addons: Node never unloads an addon, so their descriptors stay open. */
const loadedAddons = new Set<unknown>();

function checkOptions(options: PackageLoaderOptions): void {
  if (!options || typeof options.trust?.trustedKeys !== 'function') {
    throw new CloacinaSignError('INVALID_INPUT', 'createPackageLoader needs `trust`: databaseTrust(db, { org }) or publicKeyTrust([...])');
  }
  if (!options.audit) {
    throw new CloacinaSignError('INVALID_INPUT', 'createPackageLoader needs `audit`: auditToDatabase(db), auditToFile(path) or auditToStream(stream)');
  }
  if (options.policy?.rollbackProtection && !options.trust.versionMarks) {
    throw new CloacinaSignError('INVALID_INPUT', 'rollback protection needs database trust (databaseTrust): pinned keys keep no record of loaded versions');
  }
  checkPackageLimit(options.maxPackageBytes);
}

export function createPackageLoader(options: PackageLoaderOptions): PackageLoader {
  checkOptions(options);
  const policy: LoadPolicy = {
    trust: options.trust,
    trail: new AuditTrail(options.audit),
    requireSignatures: options.requireSignatures === true,
    maxPackageBytes: options.maxPackageBytes ?? DEFAULT_MAX_PACKAGE_BYTES,
    policy: options.policy ?? {},
  };
  const source = (loadOptions: LoadOptions = {}) => loadOptions.signature ?? SignatureSource.Auto;
  // A shared library, and first whatever else the caller requires of it.
  const sharedLibrary = (loadOptions: LoadOptions = {}) => {
    const format = loadOptions.format ?? 'elf';
    return format === 'elf' || format === 'any' ? SHARED_LIBRARY : [nativeFormat(format), ...SHARED_LIBRARY];
  };
  // Without a registry, nothing is measured: the operations run as they are, and prom-client is never loaded.
  const metrics = options.metrics === undefined ? null : loaderMetrics(options.metrics);
  const measured = <T>(operation: LoadOperation, run: (observer?: LoadObserver) => Promise<T>): Promise<T> => (metrics ? metrics.load(operation, run) : run());
  const verify = (path: string, verifyOptions: VerifyOptions = {}): Promise<VerificationResult> => {
    if (!metrics) return verifyWithTrust(policy, path, verifyOptions);
    // The bytes hashed, for cloacina_sign_verified_bytes_total: the caller's progress counter, or one of ours.
    const progress = verifyOptions.progress ?? new ProgressCounter();
    return metrics.verify(
      () => verifyWithTrust(policy, path, { ...verifyOptions, progress }),
      () => progress.bytes,
    );
  };

  return {
    requireSignatures: policy.requireSignatures,
    verify,
    // With metrics, each verification is measured on its own.
    verifyMany: (paths, verifyOptions) =>
      metrics ? verifyEach(paths, (path) => verify(path, verifyOptions)) : verifyManyWithTrust(policy, paths, verifyOptions),
    load: (path, loadOptions) =>
      measured('load', (observer) =>
        guardedLoad(
          policy,
          path,
          sharedLibrary(loadOptions),
          source(loadOptions),
          async (cleared, decision) => {
            const loaded = await nativeMethods.loadCleared(cleared);
            return new GuardedPackage(path, decision.packageHash, decision.signerFingerprint, loaded);
          },
          observer,
        ),
      ),
    requireAddon: (path, loadOptions) =>
      measured('addon', (observer) =>
        guardedLoad(
          policy,
          path,
          SHARED_LIBRARY,
          source(loadOptions),
          async (cleared) => {
            const module = { exports: {} as unknown };
            nativeMethods.openThroughProcPath(cleared, (procPath) => process.dlopen(module, procPath));
            loadedAddons.add(cleared);
            return module.exports;
          },
          observer,
        ),
      ),
    compileWasm: (path, loadOptions) =>
      measured('wasm', (observer) =>
        guardedLoad(
          policy,
          path,
          WASM,
          source(loadOptions),
          async (cleared) => {
            const bytes = nativeMethods.clearedBytes(cleared);
            cleared.discard();
            return WebAssembly.compile(bytes);
          },
          observer,
        ),
      ),
  };
}
