// Real fixture packages, compiled during the tests: workflow packages (C), a Node addon, a WASM module.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ROOT } from './helpers';

const SOURCES = join(ROOT, 'test/fixtures');
/** The package ABI header, shared with the example package. */
const ABI_INCLUDE = `-I${join(ROOT, 'examples/workflow')}`;

export interface PackageBuild {
  identity?: string;
  markerPath?: string;
  omitExecute?: boolean;
  padding?: number;
  nodelete?: boolean;
}

function cc(args: string[]): void {
  const result = spawnSync('cc', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`cc ${args.join(' ')} failed: ${result.stderr}`);
}

/** Compiles test/fixtures/fixture_package.c into a shared library at `output`. */
export function buildPackage(output: string, build: PackageBuild = {}): string {
  const defines = [`-DIDENTITY="${build.identity ?? 'signed'}"`, `-DPADDING=${build.padding ?? 1}`];
  if (build.markerPath) defines.push(`-DMARKER_PATH="${build.markerPath}"`);
  if (build.omitExecute) defines.push('-DOMIT_EXECUTE');
  const link = build.nodelete ? ['-Wl,-z,nodelete'] : [];
  cc(['-shared', '-fPIC', '-O1', ABI_INCLUDE, ...defines, ...link, '-o', output, join(SOURCES, 'fixture_package.c')]);
  return output;
}

/** Node's own headers, shipped with Node (never downloaded). */
function nodeIncludeDir(): string {
  const candidates = [join(dirname(process.execPath), '../include/node'), '/usr/include/node'];
  const found = candidates.find((dir) => existsSync(join(dir, 'node_api.h')));
  if (!found) throw new Error(`node_api.h not found in ${candidates.join(', ')}`);
  return found;
}

export function buildAddon(output: string): string {
  cc(['-shared', '-fPIC', '-O1', `-I${nodeIncludeDir()}`, '-o', output, join(SOURCES, 'addon.c')]);
  return output;
}

/** A minimal module exporting `answer() -> 42`, assembled by hand (no toolchain needed). */
export function buildWasm(output: string, answer = 42): string {
  const bytes = Buffer.from([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00, // magic, version 1
    0x01,
    0x05,
    0x01,
    0x60,
    0x00,
    0x01,
    0x7f, // type section: () -> i32
    0x03,
    0x02,
    0x01,
    0x00, // function section: one function of type 0
    0x07,
    0x0a,
    0x01,
    0x06,
    0x61,
    0x6e,
    0x73,
    0x77,
    0x65,
    0x72,
    0x00,
    0x00, // export "answer"
    0x0a,
    0x06,
    0x01,
    0x04,
    0x00,
    0x41,
    answer & 0x3f,
    0x0b, // code: i32.const answer; end
  ]);
  writeFileSync(output, bytes);
  return output;
}
