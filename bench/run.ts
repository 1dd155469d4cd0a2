// `npm run bench`: every benchmark in one run, written to bench/RESULTS.md with the machine description.
import { writeFileSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { join, resolve } from 'node:path';
import { benchDatabase } from './db';
import { benchGuardedLoad } from './guarded-load';
import { benchLargePackage } from './large-package';
import { type BenchSection, renderSection } from './section';

type Bench = { name: string; run: () => Promise<BenchSection> };

const benches: Bench[] = [
  { name: 'large-package', run: benchLargePackage },
  { name: 'database', run: benchDatabase },
  { name: 'guarded-load', run: benchGuardedLoad },
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

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const sections: string[] = [];
  for (const bench of benches) {
    if (only.length && !only.includes(bench.name)) continue;
    process.stderr.write(`bench: ${bench.name}...\n`);
    const section = await bench.run();
    process.stdout.write(`${renderSection(section)}\n`);
    sections.push(renderSection(section));
  }
  const out = resolve(__dirname, '../../bench/RESULTS.md');
  const header = `# Benchmark results\n\nMeasured by \`npm run bench\`; every ratio compares contenders measured in the same run, on the same page-cached files.\n\n${machine()}\n\n`;
  writeFileSync(out, header + sections.join('\n'));
  process.stderr.write(`bench: wrote ${join('bench', 'RESULTS.md')}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
