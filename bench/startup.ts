// CLI start-up: `package verify` of one 1 KiB package against `node -e 0`, and `package verify` of many
// small packages in one call against the same verifications in process (same pinned key, no audit lines).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createPackageLoader, generateKeypair, publicKeyToPem, publicKeyTrust, signPackage } from '../src';
import { DetachedSignature } from '../src/formats/v1';
import { fmt, median, timeAsync, timeCommand } from './measure';
import type { BenchSection } from './section';

const CLI = join(resolve(__dirname, '../..'), 'dist/src/cli/main.js');
/** Pairs of runs (`node -e 0`, then the CLI), one after the other, so both see the same load. */
const PAIRS = 15;
const MANY = 1000;
const MANY_RUNS = 3;
const START_UP_TARGET = 1.3;
const MANY_TARGET = 0.8;

export async function benchStartup(): Promise<BenchSection> {
  const dir = mkdtempSync(join(tmpdir(), 'cloacina-bench-startup-'));
  try {
    const keypair = generateKeypair();
    const pub = join(dir, 'key.pub.pem');
    writeFileSync(pub, publicKeyToPem(keypair.publicKey));
    const packages: string[] = [];
    for (let index = 0; index < MANY; index += 1) {
      const pkg = join(dir, `package-${index}.so`);
      writeFileSync(pkg, Buffer.alloc(1024, index % 256));
      await DetachedSignature.fromSignatureInfo(await signPackage(pkg, keypair.privateKey)).writeToFile(`${pkg}.sig`);
      packages.push(pkg);
    }
    // The environment of the runs: no audit lines (CLOACINA_AUDIT_LOG off), as in process (`audit: []`).
    const env = { ...process.env, CLOACINA_AUDIT_LOG: 'off' };
    const one = ['package', 'verify', packages[0], '--trust-key', pub];
    timeCommand(process.execPath, [CLI, ...one], env);
    const bare: number[] = [];
    const cli: number[] = [];
    const pairRatios: number[] = [];
    for (let pair = 0; pair < PAIRS; pair += 1) {
      const node = timeCommand(process.execPath, ['-e', '0'], env);
      const verify = timeCommand(process.execPath, [CLI, ...one], env);
      bare.push(node);
      cli.push(verify);
      pairRatios.push(verify / node);
    }
    const startRatio = median(pairRatios);

    const loader = createPackageLoader({ trust: publicKeyTrust([pub]), audit: [] });
    const inProcess: number[] = [];
    const manyCli: number[] = [];
    for (let run = 0; run < MANY_RUNS; run += 1) {
      inProcess.push(
        await timeAsync(async () => {
          for (const pkg of packages) await loader.verify(pkg);
        }),
      );
      manyCli.push(timeCommand(process.execPath, [CLI, 'package', 'verify', ...packages, '--trust-key', pub], env));
    }
    const rate = (seconds: number) => MANY / seconds;
    const manyShare = rate(median(manyCli)) / rate(median(inProcess));
    // Past the start-up: the call's time beyond that of the one-package call, for the other MANY - 1 packages.
    const marginal = (median(manyCli) - median(cli)) / (MANY - 1);
    const marginalShare = median(inProcess) / MANY / marginal;
    // The best any CLI could do on this Node: start as fast as `node -e 0`, then verify at the in-process rate.
    const startFloorShare = median(inProcess) / (median(inProcess) + median(bare));
    const perSec = (seconds: number) => `${Math.round(rate(seconds)).toLocaleString('en-US')}/s`;
    return {
      title: 'CLI start-up: one small package, and many in one call',
      headers: ['what', 'median', 'vs reference', 'target'],
      rows: [
        ['`node -e 0` (reference)', fmt(median(bare)), '1.00x', ''],
        [
          'CLI `package verify` of a 1 KiB package',
          fmt(median(cli)),
          `${startRatio.toFixed(2)}x`,
          `<= ${START_UP_TARGET}x: ${startRatio <= START_UP_TARGET ? 'met' : 'MISSED'}`,
        ],
        [
          `in process: \`loader.verify\` of ${MANY} 1 KiB packages, one after another (reference)`,
          `${fmt(median(inProcess))} (${perSec(median(inProcess))})`,
          '100%',
          '',
        ],
        [
          `CLI \`package verify\` of the same ${MANY} packages in one call (start-up included)`,
          `${fmt(median(manyCli))} (${perSec(median(manyCli))})`,
          `${(100 * manyShare).toFixed(0)}%`,
          `>= ${100 * MANY_TARGET}%: ${manyShare >= MANY_TARGET ? 'met' : 'MISSED'}`,
        ],
        [
          'the same call past its start-up: (its time - the 1-package call) / 999',
          `${(marginal * 1e6).toFixed(0)} µs a package (${Math.round(1 / marginal).toLocaleString('en-US')}/s)`,
          `${(100 * marginalShare).toFixed(0)}%`,
          `>= ${100 * MANY_TARGET}%: ${marginalShare >= MANY_TARGET ? 'met' : 'MISSED'}`,
        ],
      ],
      notes: [
        `Start-up: ${PAIRS} pairs, \`node -e 0\` then the CLI, one right after the other; the ratio is the median of the pairs' ratios, so both members of a pair see the same load. Trust: one pinned public key (--trust-key), the \`.sig\` beside the package; CLOACINA_AUDIT_LOG=off.`,
        `What the CLI loads for \`package verify\`: one file, the CLI bundle (its modules and commander; scripts/bundle-cli.js), of which only the \`package\` command's modules run, and the native addon (the hash and the signature check need it); not knex, the database drivers or fastify. The bundle is compiled from V8's code cache of the previous run of the same command (Node 22.1+: Node's own compile cache; older: src/cli/code-cache.ts, a private directory of the user); the pairs above run with that cache warm, as every run after a command's first does.`,
        `Many packages: the median of ${MANY_RUNS} runs each; in process, one loader (\`publicKeyTrust([key])\`, \`audit: []\`) verifies them one after another, as the CLI does.`,
        `The floor with start-up included: a process that started as fast as \`node -e 0\` (${fmt(median(bare))}) and then verified at the in-process rate would take ${fmt(median(bare) + median(inProcess))}, ${(100 * startFloorShare).toFixed(0)}% of the in-process rate${startFloorShare < MANY_TARGET ? `: no Node process can reach ${100 * MANY_TARGET}% here with its start-up counted, so the row past start-up is the one that measures the CLI's own cost per package` : ''}.`,
      ],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
