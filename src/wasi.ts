// The WebAssembly (WASI) build of the addon, loaded when no native package matches this machine or
// when NAPI_RS_FORCE_WASI=true: the same functions, with two differences handled here and in Rust.
// It sees the file system through WASI, which preopens the root directory but has no working
// directory of its own (a relative path would be taken from `/`): paths are made absolute against
// this process's working directory before they cross. Guarded loading does not exist there: the
// binding refuses it with GUARDED_LOAD_UNSUPPORTED, naming this platform.
import { resolve } from 'node:path';
import type * as Binding from '../binding';

type BindingModule = typeof Binding;

/** What the generated loader reports for the WebAssembly build it loaded. */
const WASI_TARGET = 'wasm32-wasi';

/** Whether `binding` is the WebAssembly build (the generated loader stamps the flavor it loaded). */
export function isWasiBinding(binding: BindingModule): boolean {
  return (binding as { __napiBindingTarget?: unknown }).__napiBindingTarget === WASI_TARGET;
}

/** The functions that take file paths, and how many leading arguments are paths (or arrays of paths). */
const PATH_ARGUMENTS = {
  hashFile: 1,
  hashFileDigests: 1,
  hashFileWithSignature: 2,
  readSignatureFile: 1,
  readSmallFile: 1,
  readSmallFileSync: 1,
  sealPackage: 1,
  signPackage: 1,
  verifyFileWithKeys: 2,
  verifyFilesWithKeys: 2,
} as const satisfies Partial<Record<keyof BindingModule, number>>;

type AnyFunction = (...args: unknown[]) => unknown;

function withAbsolutePaths(fn: AnyFunction, count: number): AnyFunction {
  const absolute = (arg: unknown): unknown =>
    typeof arg === 'string' ? resolve(arg) : Array.isArray(arg) ? arg.map((item) => (typeof item === 'string' ? resolve(item) : item)) : arg;
  return (...args) => fn(...args.map((arg, index) => (index < count ? absolute(arg) : arg)));
}

/** The binding as the rest of the package uses it: the native one as it is, the WebAssembly one with absolute paths. */
export function forThisHost(binding: BindingModule): BindingModule {
  if (!isWasiBinding(binding)) return binding;
  const adapted: Record<string, unknown> = { ...binding };
  for (const [name, count] of Object.entries(PATH_ARGUMENTS)) {
    adapted[name] = withAbsolutePaths(binding[name as keyof typeof PATH_ARGUMENTS] as AnyFunction, count);
  }
  return adapted as BindingModule;
}
