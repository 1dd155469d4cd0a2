// What the WebAssembly fallback costs: the CLI verifying the 1 GiB package (versions 1 and 2) through
// the WebAssembly build (NAPI_RS_FORCE_WASI=true) beside the same commands through the native addon,
// interleaved in one run. Needs `npm run build:wasi`.
import { existsSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { generateKeypair, publicKeyToPem, signPackage } from '../src';
import { DetachedSignature } from '../src/formats/v1';
import { writeSignatureDocument } from '../src/formats/v2';
import { signStatement } from '../src/signing/sign';
import { ensurePackage, workDir } from './large-package';
import { fmt, median, ratio, runCommand, timeCommand } from './measure';
import type { BenchSection } from './section';

const ROOT = resolve(__dirname, '../..');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const SIZE = 1024 * 1024 * 1024;
/** Fewer runs than the native section: one WebAssembly verification of 1 GiB takes seconds. */
const RUNS = 3;

export async function benchWasi(): Promise<BenchSection> {
  if (!existsSync(join(ROOT, 'cloacina-sign.wasm32-wasi.wasm'))) throw new Error('the WebAssembly build is missing: run `npm run build:wasi`');
  const dir = workDir();
  const pkg = join(dir, 'large-package.so');
  ensurePackage(pkg, SIZE);
  const keypair = generateKeypair();
  const pub = join(dir, 'wasi.pub.pem');
  writeFileSync(pub, publicKeyToPem(keypair.publicKey));
  const v1Signature = `${pkg}.wasi-v1.sig`;
  await DetachedSignature.fromSignatureInfo(await signPackage(pkg, keypair.privateKey)).writeToFile(v1Signature);
  const v2Signature = `${pkg}.wasi-v2.sig`;
  const statement = await signStatement(pkg, keypair.privateKey, { name: 'large-package', version: '1.0.0' });
  await writeSignatureDocument(v2Signature, statement.document, { overwrite: true });

  const loadBefore = loadavg();
  const nativeEnv: NodeJS.ProcessEnv = { ...process.env, CLOACINA_AUDIT_LOG: 'off' };
  delete nativeEnv.NAPI_RS_FORCE_WASI;
  const wasiEnv: NodeJS.ProcessEnv = { ...nativeEnv, NAPI_RS_FORCE_WASI: 'true' };
  const verify = (signature: string, env: NodeJS.ProcessEnv) => {
    const run = runCommand(process.execPath, [CLI, 'package', 'verify', pkg, '--trust-key', pub, '--signature', signature], env);
    if (run.status !== 0) throw new Error(`CLI verify (${env.NAPI_RS_FORCE_WASI ? 'WebAssembly' : 'native'}, ${signature}) failed in the benchmark`);
    return run;
  };
  const contenders = {
    openssl: [] as number[],
    nativeV1: [] as number[],
    wasiV1: [] as number[],
    nativeV2: [] as number[],
    wasiV2: [] as number[],
  };
  const rss = { wasiV1: [] as number[], wasiV2: [] as number[] };
  timeCommand('openssl', ['dgst', '-sha256', pkg]); // warm the page cache
  for (let run = 0; run < RUNS; run++) {
    // Interleaved so drift in machine load hits every contender alike.
    contenders.openssl.push(timeCommand('openssl', ['dgst', '-sha256', pkg]));
    contenders.nativeV1.push(verify(v1Signature, nativeEnv).seconds);
    const wasiV1 = verify(v1Signature, wasiEnv);
    contenders.wasiV1.push(wasiV1.seconds);
    if (wasiV1.peakRssKiB) rss.wasiV1.push(wasiV1.peakRssKiB);
    contenders.nativeV2.push(verify(v2Signature, nativeEnv).seconds);
    const wasiV2 = verify(v2Signature, wasiEnv);
    contenders.wasiV2.push(wasiV2.seconds);
    if (wasiV2.peakRssKiB) rss.wasiV2.push(wasiV2.peakRssKiB);
  }
  // Start-up: the WebAssembly module is compiled and its worker threads start on every run.
  const small = join(dir, 'wasi-small.so');
  writeFileSync(small, Buffer.alloc(1024, 7));
  await DetachedSignature.fromSignatureInfo(await signPackage(small, keypair.privateKey)).writeToFile(`${small}.sig`);
  const fastest = (env: NodeJS.ProcessEnv) =>
    Math.min(...Array.from({ length: RUNS }, () => timeCommand(process.execPath, [CLI, 'package', 'verify', small, '--trust-key', pub], env)));
  const startup = { native: fastest(nativeEnv), wasi: fastest(wasiEnv) };

  const loadAfter = loadavg();
  const load = (values: number[]) => values.map((value) => value.toFixed(2)).join(' / ');
  const reference = median(contenders.openssl);
  const peak = (values: number[]) => (values.length ? `peak RSS ${(Math.max(...values) / 1024).toFixed(1)} MiB` : 'peak RSS n/a');
  const row = (what: string, times: number[], notes = '') => [what, fmt(median(times)), ratio(median(times), reference), notes];
  const throughput = (times: number[]) => `${(SIZE / 2 ** 20 / median(times)).toFixed(0)} MiB/s`;
  return {
    title: 'Verifying a 1 GiB package with the WebAssembly fallback (page-cached)',
    headers: ['what', `median of ${RUNS}`, 'vs openssl dgst', 'notes'],
    rows: [
      row('`openssl dgst -sha256` (reference)', contenders.openssl),
      row('CLI `package verify`, version 1 (SHA-256), native addon', contenders.nativeV1),
      row('CLI `package verify`, version 1 (SHA-256), WebAssembly', contenders.wasiV1, `${throughput(contenders.wasiV1)}; ${peak(rss.wasiV1)}`),
      row('CLI `package verify`, version 2 (BLAKE3), native addon', contenders.nativeV2),
      row('CLI `package verify`, version 2 (BLAKE3), WebAssembly', contenders.wasiV2, `${throughput(contenders.wasiV2)}; ${peak(rss.wasiV2)}`),
    ],
    notes: [
      `The WebAssembly build against the native addon, same run: version 1 ${ratio(median(contenders.wasiV1), median(contenders.nativeV1))}, version 2 ${ratio(median(contenders.wasiV2), median(contenders.nativeV2))} the time.`,
      "Why: SHA-256 in WebAssembly is portable Rust (no SHA-NI, no SIMD); BLAKE3 uses WebAssembly SIMD (128-bit, where the native build uses AVX2/AVX-512); the file is read through WASI (node:wasi), on the thread that hashes it, in 4 MiB chunks copied into the module's memory.",
      `Fixed start-up cost, fastest of ${RUNS}: CLI \`package verify\` of a 1 KiB package ${fmt(startup.native)} native, ${fmt(startup.wasi)} WebAssembly (compiling the module and starting its worker threads).`,
      `Machine of this section: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}; load average (1 / 5 / 15 min) before it ${load(loadBefore)}, after it ${load(loadAfter)}.`,
    ],
  };
}
