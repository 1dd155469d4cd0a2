// Guarded load (seal into memory, hash the sealed bytes, verify, dlopen) of a 100 MiB library against a
// plain `loader.verify` of the same file. Target: at most 1.3x.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { auditToDatabase } from '../src/audit/database-sink';
import { openDatabase } from '../src/db/database';
import { DbKeyManager } from '../src/keys/db-key-manager';
import { generateKeypair } from '../src/keys/keypair';
import type { LoadedPackage } from '../src/loading/loaded-package';
import { createPackageLoader } from '../src/loading/package-loader';
import { DetachedSignature } from '../src/formats/v1';
import { signPackage } from '../src/signing/sign';
import { writeSignatureDocument } from '../src/formats/v2';
import { signStatement } from '../src/signing/sign';
import { databaseTrust } from '../src/trust/database-trust';
import { SignatureSource } from '../src/verification/signature-source';
import { ensurePackage, workDir } from './large-package';
import { fmt, median, pairedRatio, ratio, timeAsync } from './measure';
import type { BenchSection } from './section';

const ROOT = resolve(__dirname, '../..');
const SIZE = 100 * 1024 * 1024;
const RUNS = 9;

interface CopyFloor {
  /** The file copied into a fresh memfd the loader's way, 1 and 2 threads; the file read in place. */
  copy1: number;
  copy2: number;
  readInPlace: number;
}

/** crates/loader/examples/copy_floor.rs, built once: the copy every guarded load must make, alone. */
function copyFloorBinary(): string | undefined {
  const built = spawnSync('cargo', ['build', '--release', '--quiet', '-p', 'cloacina-sign-loader', '--example', 'copy_floor'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  return built.status === 0 ? join(ROOT, 'target/release/examples/copy_floor') : undefined;
}

function measureCopyFloor(binary: string, file: string): CopyFloor {
  const result = spawnSync(binary, [file, '1'], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`copy_floor failed: ${result.stderr}`);
  // It prints milliseconds; the bench works in seconds.
  const ms = JSON.parse(result.stdout) as CopyFloor;
  return { copy1: ms.copy1 / 1000, copy2: ms.copy2 / 1000, readInPlace: ms.readInPlace / 1000 };
}

/** A real 100 MiB shared library: the test fixture plus a 100 MiB read-only blob linked into it. */
function buildLargeLibrary(dir: string): string {
  const output = join(dir, 'liblarge.so');
  if (existsSync(output) && statSync(output).size > SIZE) return output;
  const blob = join(dir, 'blob.bin');
  ensurePackage(blob, SIZE);
  const asm = join(dir, 'blob.S');
  writeFileSync(asm, `.section .rodata\n.globl large_blob\nlarge_blob:\n.incbin "${blob}"\n.section .note.GNU-stack,"",@progbits\n`);
  const result = spawnSync(
    'cc',
    ['-shared', '-fPIC', '-O1', `-I${join(ROOT, 'examples/workflow')}`, '-o', output, join(ROOT, 'test/fixtures/fixture_package.c'), asm],
    { encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`building the large library failed: ${result.stderr}`);
  return output;
}

export async function benchGuardedLoad(): Promise<BenchSection> {
  const dir = workDir();
  const library = buildLargeLibrary(dir);
  const dbPath = join(dir, 'guarded-load.db');
  rmSync(dbPath, { force: true });
  const db = await openDatabase(`sqlite:${dbPath}`, { migrate: true });
  try {
    const keys = new DbKeyManager(db);
    const orgId = (await keys.createOrganization('bench')).id;
    const signer = generateKeypair();
    await keys.trustPublicKey(orgId, signer.publicKey);
    const signaturePath = `${library}.sig`;
    await DetachedSignature.fromSignatureInfo(await signPackage(library, signer.privateKey)).writeToFile(signaturePath);
    const signature = SignatureSource.DetachedFile(signaturePath);
    // The same library with a version-2 signature: a statement over its BLAKE3 digest.
    const v2Path = `${library}.v2.sig`;
    const statement = await signStatement(library, signer.privateKey, { name: 'large-library', version: '1.0.0' });
    await writeSignatureDocument(v2Path, statement.document, { overwrite: true });
    const v2Signature = SignatureSource.DetachedFile(v2Path);
    const loader = createPackageLoader({ trust: databaseTrust(db, { org: orgId }), audit: auditToDatabase(db), requireSignatures: true });

    const plain: number[] = [];
    const guarded: number[] = [];
    const v2Plain: number[] = [];
    const v2Guarded: number[] = [];
    const loadOnce = async (times: number[], source: SignatureSource) => {
      let loaded: LoadedPackage | undefined;
      times.push(await timeAsync(async () => (loaded = await loader.load(library, { signature: source }))));
      loaded?.close();
      await new Promise((resolve) => setTimeout(resolve, 100)); // let the background unmap finish before the next run
    };
    const floorBinary = copyFloorBinary();
    const floors: CopyFloor[] = [];
    await loader.verify(library, { signature }); // warm the page cache and the trust cache
    for (let run = 0; run < RUNS; run++) {
      plain.push(await timeAsync(() => loader.verify(library, { signature })));
      await loadOnce(guarded, signature);
      v2Plain.push(await timeAsync(() => loader.verify(library, { signature: v2Signature })));
      await loadOnce(v2Guarded, v2Signature);
      if (floorBinary) floors.push(measureCopyFloor(floorBinary, library));
    }
    const reference = median(plain);
    const factor = pairedRatio(guarded, plain);
    const v2Factor = pairedRatio(v2Guarded, v2Plain);
    const copy2 = floors.map((floor) => floor.copy2);
    const copyRows: string[][] = floors.length
      ? [
          [
            'floor: the copy alone, 2 threads (a fresh memfd, each 1 MiB chunk populated then `pread` into it; no hash, no seal, no dlopen)',
            fmt(median(copy2)),
            ratio(median(copy2), reference),
          ],
          ['floor: the copy alone, 1 thread', fmt(median(floors.map((floor) => floor.copy1))), ratio(median(floors.map((floor) => floor.copy1)), reference)],
          [
            'the file read in place, 1 thread (no copy: what a verify without the copy touches)',
            fmt(median(floors.map((floor) => floor.readInPlace))),
            ratio(median(floors.map((floor) => floor.readInPlace)), reference),
          ],
        ]
      : [];
    const floorFactor = floors.length ? pairedRatio(copy2, v2Plain) : Number.NaN;
    const floorNote = floors.length
      ? `Why the version-2 target is missed: the copy alone, on both threads, takes ${floorFactor.toFixed(2)}x the version-2 loader.verify (median of the run-by-run ratios; crates/loader/examples/copy_floor.rs, run in each round beside the loads). A guarded load cannot take less than its copy, so on this machine no guarded load of a version-2 package can come within 1.3x of a verify that makes no copy; the guarded load takes ${(median(v2Guarded) / median(copy2)).toFixed(2)}x the copy alone (the hash rides on the copy). The copy cannot be dropped: the bytes mapped for loading must be bytes no other writer can change after they were hashed, and the file's own page cache can be written by anyone who can write the file; a sealed memfd is the only copy the kernel keeps immutable for every process. Version 1 meets its target because SHA-256 is slower than the copy, so the copy hides behind it.`
      : 'The copy floor was not measured (`cargo build --example copy_floor` failed).';
    return {
      title: `Guarded load of a ${(statSync(library).size / 2 ** 20).toFixed(0)} MiB library (page-cached)`,
      headers: ['what', `median of ${RUNS}`, 'vs loader.verify'],
      rows: [
        ['`loader.verify` (hash the file + verify + audit row; reference)', fmt(reference), '1.00x'],
        [
          '`loader.load` (seal a memfd against other writers, copy into it while hashing, seal for good, verify, audit row, dlopen)',
          fmt(median(guarded)),
          ratio(median(guarded), reference),
        ],
        ['`loader.verify`, version-2 signature (BLAKE3 of the file in place, every core)', fmt(median(v2Plain)), ratio(median(v2Plain), reference)],
        [
          '`loader.load`, version-2 signature (both threads copy a chunk, then hash it as a BLAKE3 subtree while it is in cache)',
          fmt(median(v2Guarded)),
          ratio(median(v2Guarded), reference),
        ],
        ...copyRows,
      ],
      notes: [
        `Target guarded load <= 1.3x loader.verify: ${factor <= 1.3 ? 'met' : 'MISSED'} (${factor.toFixed(2)}x, median of the run-by-run ratios).`,
        `Target guarded load of a version-2 package <= 1.3x its loader.verify: ${v2Factor <= 1.3 ? 'met' : 'MISSED'} (${v2Factor.toFixed(2)}x, median of the run-by-run ratios).`,
        floorNote,
        'Version 2: BLAKE3 is a tree, so each 1 MiB chunk of the copy is a subtree whose chaining value depends only on its bytes and place. Each of the two threads claims a chunk, copies it into the sealed memfd, and hashes it from there at once; the chaining values are joined at the end. loader.verify of the same file maps it and hashes the page cache in place on both cores: it has no copy to make, the guarded load has one (page allocation plus memcpy), which is what the ratio measures.',
        'How the copy stays off the critical path: the memfd is sized, mapped writable once by us, and sealed against grow, shrink and every other writer (F_SEAL_FUTURE_WRITE) before the first byte is copied; one thread copies the file into that mapping in 1 MiB chunks while another hashes each finished chunk; then our mapping is dropped and F_SEAL_WRITE makes the bytes immutable before anything is mapped for loading.',
        "Each chunk's pages are allocated in one call (MADV_POPULATE_WRITE) before the chunk is copied, instead of one page fault at a time during the copy: where page faults are costly, that keeps the copy from taking longer than the hash. The hashing thread also copies a chunk nobody has claimed whenever the next one to hash is not ready, so the two threads share the copy. `cargo run --release -p cloacina-sign-loader --example seal_bench` measures the sealing alone.",
      ],
    };
  } finally {
    await db.close();
  }
}
