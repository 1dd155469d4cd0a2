// The runner's entry points: verify a package, then load exactly the bytes that were verified.
import { CloacinaSignError } from '../errors';
import type { DbKeyManager } from '../keys/db-key-manager';
import { nativeMethods, PackageFormat } from '../native';
import { SignatureSource } from '../verification/signature-source';
import { audited, ClearedPackage, sealAndClear } from './guarded-load';
import { serializeLoads } from './load-lock';
import { LoadedPackage } from './loaded-package';
import { loadVerifier } from './load-verifier';
import { SecurityConfig } from './security-config';

const SHARED_LIBRARY = 'SharedLibrary' as PackageFormat;
const WASM = 'Wasm' as PackageFormat;

/** Sealed images of loaded addons: Node never unloads an addon, so their descriptors stay open. */
const loadedAddons = new Set<unknown>();

function organization(orgId: string | undefined, config: SecurityConfig): string {
  const chosen = orgId ?? config.verificationOrgId;
  if (!chosen) throw new CloacinaSignError('INVALID_INPUT', 'no organization given and no verificationOrgId configured');
  return chosen;
}

/** One guarded load: seal, verify, then `finish` with the cleared bytes; serialized and audited. */
async function guardedLoad<T>(
  path: string,
  format: PackageFormat,
  orgId: string | undefined,
  config: SecurityConfig,
  keyManager: DbKeyManager,
  source: SignatureSource,
  finish: (cleared: ClearedPackage) => Promise<T>,
): Promise<T> {
  const verifier = loadVerifier(keyManager, organization(orgId, config), source);
  const { value } = await serializeLoads(() =>
    audited(path, verifier, async (noteHash) => {
      const cleared = await sealAndClear(path, format, config, verifier, noteHash);
      return { ...cleared, value: await finish(cleared) };
    }),
  );
  return value;
}

/**
 * Verifies a workflow package and loads it from a sealed in-memory copy, so the code that runs is
 * the code that was verified, whatever happens to the file meanwhile. With `requireSignatures`,
 * any failure throws its typed error and nothing is loaded; either way the attempt is audited.
 */
export function verifyAndLoadPackage(
  path: string,
  orgId: string | undefined,
  config: SecurityConfig,
  keyManager: DbKeyManager,
  source: SignatureSource = SignatureSource.Auto,
): Promise<LoadedPackage> {
  return guardedLoad(path, SHARED_LIBRARY, orgId, config, keyManager, source, async (cleared) => {
    const loaded = await nativeMethods.loadSealed(cleared.sealed);
    return new LoadedPackage(path, cleared.packageHash, cleared.signerFingerprint, loaded);
  });
}

/** The same guarantee for a native Node addon, loaded with `process.dlopen`; returns its exports. */
export function verifyAndRequireAddon(
  path: string,
  orgId: string | undefined,
  config: SecurityConfig,
  keyManager: DbKeyManager,
  source: SignatureSource = SignatureSource.Auto,
): Promise<unknown> {
  return guardedLoad(path, SHARED_LIBRARY, orgId, config, keyManager, source, async (cleared) => {
    const module = { exports: {} as unknown };
    nativeMethods.openThroughProcPath(cleared.sealed, (procPath) => process.dlopen(module, procPath));
    loadedAddons.add(cleared.sealed);
    return module.exports;
  });
}

/** Verifies a WebAssembly module and compiles it from the very bytes that were verified. */
export function verifyAndCompileWasm(
  path: string,
  orgId: string | undefined,
  config: SecurityConfig,
  keyManager: DbKeyManager,
  source: SignatureSource = SignatureSource.Auto,
): Promise<WebAssembly.Module> {
  return guardedLoad(path, WASM, orgId, config, keyManager, source, (cleared) =>
    WebAssembly.compile(nativeMethods.sealedBytes(cleared.sealed)),
  );
}
