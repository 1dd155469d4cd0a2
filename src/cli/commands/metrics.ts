// `cloacina-sign metrics`: the Prometheus text exposition of the metrics a package loader counts in, all at
// zero, with their HELP and TYPE lines, so operators can see the names and prepare scrape configurations,
// recording rules and dashboards before any runner exists. `--service`: the signing service's metrics
// (those of its /metrics but prom-client's process metrics). Nothing is read or written; no database.
import { Command } from 'commander';
import type { Registry } from 'prom-client';
import { type OutputOptions, printData, runAction } from '../output';

interface MetricsOptions extends OutputOptions {
  service?: boolean;
}

async function registryFor(options: MetricsOptions): Promise<Registry> {
  if (options.service) {
    const { ServiceMetrics } = await import('../../metrics/service-metrics');
    return new ServiceMetrics({ defaultMetrics: false }).registry;
  }
  const { loaderMetricsRegistry } = await import('../../loading/metrics');
  return loaderMetricsRegistry();
}

async function printMetrics(options: MetricsOptions): Promise<void> {
  const registry = await registryFor(options);
  const text = await registry.metrics();
  const metrics = registry.getMetricsAsArray().map((metric) => ({
    name: metric.name,
    type: metric.type,
    help: metric.help,
    labels: [...((metric as { labelNames?: readonly string[] }).labelNames ?? [])],
  }));
  printData(options, { metrics }, text.trimEnd());
}

export function metricsCommand(): Command {
  return new Command('metrics')
    .description('print the Prometheus metrics a package loader exposes (createPackageLoader({ metrics })), at zero, with HELP and TYPE lines')
    .option('--service', "the signing service's /metrics instead (without prom-client's process metrics)")
    .option('--json', 'print JSON on stdout: {"metrics":[{"name","type","help","labels"}]}')
    .action((options: MetricsOptions) => runAction(options, () => printMetrics(options)));
}
