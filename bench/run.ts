// `npm run bench`: every benchmark in one run, written to bench/RESULTS.md with the machine description.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { join, resolve } from 'node:path';
import { benchDatabase } from './db';
import { benchGuardedLoad } from './guarded-load';
import { benchHsmKek } from './hsm-kek';
import { benchLargePackage } from './large-package';
import { type BenchSection, renderSection } from './section';
import { benchService } from './service';
import { benchStartup } from './startup';
import { benchWasi } from './wasi';

type Bench = { name: string; run: () => Promise<BenchSection> };

const benches: Bench[] = [
  { name: 'large-package', run: benchLargePackage },
  { name: 'database', run: benchDatabase },
  { name: 'guarded-load', run: benchGuardedLoad },
  { name: 'service', run: benchService },
  { name: 'wasi', run: benchWasi },
  { name: 'hsm-kek', run: benchHsmKek },
  { name: 'startup', run: benchStartup },
];

function machine(): string {
  const cpu = cpus();
  return [
    `- CPU: ${cpu[0]?.model ?? 'unknown'}, ${cpu.length} cores`,
    `- Memory: ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `- Kernel: Linux ${release()}; Node ${process.version}`,
    `- Date: ${new Date().toISOString()}`,
  ].join('\n');
}

/** The sections asked for (none: all); an unknown name is an error naming the sections, before anything runs or is written. */
function sectionsAsked(args: readonly string[], known: readonly string[] = benches.map((bench) => bench.name)): string[] {
  const unknown = args.filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw new Error(
      `unknown bench section${unknown.length === 1 ? '' : 's'} ${unknown.map((name) => JSON.stringify(name)).join(', ')}: the sections are ${known.join(', ')}`,
    );
  }
  return [...args];
}

async function main(): Promise<void> {
  let only: string[];
  try {
    only = sectionsAsked(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  const sections: string[] = [];
  for (const bench of benches) {
    if (only.length && !only.includes(bench.name)) continue;
    process.stderr.write(`bench: ${bench.name}...\n`);
    const section = await bench.run();
    process.stdout.write(`${renderSection(section)}\n`);
    sections.push(renderSection(section));
  }
  const out = resolve(__dirname, '../../bench/RESULTS.md');
  // A partial run (`npm run bench -- service`) replaces its own sections and keeps the others as they were.
  const merged = only.length && existsSync(out) ? mergeSections(readFileSync(out, 'utf8'), sections) : sections;
  const partial = only.length ? ` This file was last written by a partial run (${only.join(', ')}); the other sections are from earlier runs.` : '';
  const header = `# Benchmark results\n\nMeasured by \`npm run bench\`; every ratio compares contenders measured in the same run, on the same page-cached files.${partial}\n\n${machine()}\n\n`;
  writeFileSync(out, header + merged.join('\n'));
  process.stderr.write(`bench: wrote ${join('bench', 'RESULTS.md')}\n`);
}

/** The sections of an earlier RESULTS.md, those with the title of a fresh one replaced by it, fresh ones not found appended. */
function mergeSections(previous: string, fresh: string[]): string[] {
  const title = (section: string) => section.split('\n', 1)[0];
  const kept = previous
    .split(/^(?=## )/m)
    .slice(1)
    .map((section) => `${section.trimEnd()}\n`);
  const out = kept.map((section) => fresh.find((candidate) => title(candidate) === title(section)) ?? section);
  for (const section of fresh) if (!out.includes(section)) out.push(section);
  return out;
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
