// What `package verify|run|inspect` require of a package besides its signature: a size limit (checked
// before anything is hashed) and a format (checked after the signature decision, on the verified bytes).
import { type Command, InvalidArgumentError } from 'commander';
import type { PackageFormatName } from '../verification/result';

export interface PackageCheckOptions {
  maxSize?: number;
  packageFormat?: PackageFormatName;
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
};

/** `--max-size`: bytes, or a number with a unit (10MB = 10,000,000 bytes; 10MiB = 10,485,760). */
export function parseSize(value: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = match ? UNITS[match[2].toLowerCase()] : undefined;
  const bytes = match && unit !== undefined ? Math.floor(Number(match[1]) * unit) : Number.NaN;
  if (!Number.isSafeInteger(bytes)) throw new InvalidArgumentError('must be a number of bytes, optionally with a unit: 10485760, 10MB, 10MiB');
  return bytes;
}

function packageFormat(value: string): PackageFormatName {
  if (value !== 'elf' && value !== 'wasm' && value !== 'any') throw new InvalidArgumentError('must be elf, wasm or any');
  return value;
}

/** The size and format flags, on `verify` (format default: any) or `run`/`inspect` (default: elf). */
export function addPackageCheckOptions(command: Command, defaultFormat: 'any' | 'elf'): Command {
  return command
    .option('--max-size <size>', 'refuse a larger package before hashing it (PACKAGE_TOO_LARGE): bytes, or with a unit (10MB, 10MiB)', parseSize)
    .option(
      '--package-format <elf|wasm|any>',
      `what the package must be, checked once its signature verified: wasm needs WebAssembly magic (NOT_A_WASM_MODULE); default wasm for a .wasm file, else ${defaultFormat}`,
      packageFormat,
    );
}

/** The format a package must have: the flag, else by its extension (.wasm is WebAssembly), else `fallback`. */
export function formatOf(packagePath: string, options: PackageCheckOptions, fallback: PackageFormatName): PackageFormatName {
  return options.packageFormat ?? (packagePath.toLowerCase().endsWith('.wasm') ? 'wasm' : fallback);
}
