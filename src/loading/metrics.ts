// Prometheus metrics of package verification and loading, in a prom-client Registry the caller owns (a
// runner serves it, or merges it into its own). prom-client is required only when metrics are asked for:
// a loader without metrics never loads it. Registration is get-or-create by name, so several loaders (and
// the signing service) share one registry's metrics.
// Label values are bounded: the operation, the outcome, an error code of the fixed list (or `none`), the
// signature document's version. Never a path, a hash, a key id or an organization.
import type { Counter, Histogram, Registry } from 'prom-client';
import { CloacinaSignError, isErrorCode } from '../errors';

/** What was asked: loader.verify, loader.load, loader.requireAddon, loader.compileWasm; the signing service's upload. */
export type MetricsOperation = 'verify' | 'load' | 'addon' | 'wasm' | 'upload';
export type LoadOperation = 'load' | 'addon' | 'wasm';

/** The operations of a package loader, in the order they are documented. */
export const LOADER_OPERATIONS: readonly MetricsOperation[] = ['verify', 'load', 'addon', 'wasm'];
const LOAD_OPERATIONS: readonly LoadOperation[] = ['load', 'addon', 'wasm'];

/** The `reason` of a success (and the `document_version` of a failure). */
export const NO_REASON = 'none';

const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface MetricDefinition {
  name: string;
  type: 'counter' | 'histogram';
  help: string;
  labelNames: readonly string[];
  buckets?: readonly number[];
}

/** Verification decisions: the metrics a loader and the signing service (uploads) share. */
export const VERIFICATION_METRICS = {
  verifications: {
    name: 'cloacina_sign_verifications_total',
    type: 'counter',
    help: 'Decisions on a package signature, by operation (verify, load, addon, wasm; upload in the signing service), outcome, reason (an error code, or none) and the version of the signature document that verified (none on failure)',
    labelNames: ['operation', 'outcome', 'reason', 'document_version'],
  },
  verificationDuration: {
    name: 'cloacina_sign_verification_duration_seconds',
    type: 'histogram',
    help: 'Time to decide on a package signature (hashing, trust, signatures, policy; verify includes its audit event; an upload is hashed as it arrives, outside this time), by operation and outcome',
    labelNames: ['operation', 'outcome'],
    buckets: DURATION_BUCKETS,
  },
  verifiedBytes: {
    name: 'cloacina_sign_verified_bytes_total',
    type: 'counter',
    help: 'Bytes of packages whose signature verified, by operation',
    labelNames: ['operation'],
  },
} as const satisfies Record<string, MetricDefinition>;

/** Guarded loads, end to end: a loader's own. */
export const LOAD_METRICS = {
  loads: {
    name: 'cloacina_sign_loads_total',
    type: 'counter',
    help: 'Guarded loads by operation (load, addon, wasm), outcome and reason (an error code, or none); success means the package was loaded',
    labelNames: ['operation', 'outcome', 'reason'],
  },
  loadDuration: {
    name: 'cloacina_sign_load_duration_seconds',
    type: 'histogram',
    help: 'Time from a load being asked for to the package being loaded or refused (waiting behind other guarded loads, sealing, verification, audit, dlopen or compile), by operation and outcome',
    labelNames: ['operation', 'outcome'],
    buckets: DURATION_BUCKETS,
  },
  unsignedLoads: {
    name: 'cloacina_sign_unsigned_loads_total',
    type: 'counter',
    help: 'Packages loaded without a signature because signatures are not required, by operation',
    labelNames: ['operation'],
  },
} as const satisfies Record<string, MetricDefinition>;

/** Every metric of a package loader, in the order `cloacina-sign metrics` lists them. */
export const LOADER_METRIC_DEFINITIONS: readonly MetricDefinition[] = [...Object.values(VERIFICATION_METRICS), ...Object.values(LOAD_METRICS)];

/** The `reason` label of an error: its code when it is one of the fixed list, INTERNAL otherwise. */
export function reasonOf(error: unknown): string {
  const code = error instanceof CloacinaSignError ? error.code : undefined;
  return code !== undefined && isErrorCode(code) ? code : 'INTERNAL';
}

function secondsSince(startedAt: number): number {
  return (performance.now() - startedAt) / 1000;
}

let promClient: typeof import('prom-client') | undefined;

/** prom-client, loaded on first use only. */
function prom(): typeof import('prom-client') {
  promClient ??= require('prom-client') as typeof import('prom-client');
  return promClient;
}

/** A metric already in the registry, when it is of the same kind with the same labels; INVALID_INPUT when it is not. */
function existing(registry: Registry, definition: MetricDefinition): unknown {
  const metric = registry.getSingleMetric(definition.name) as { type?: string; labelNames?: readonly string[] } | undefined;
  if (!metric) return undefined;
  if (metric.type !== definition.type || [...(metric.labelNames ?? [])].join(',') !== definition.labelNames.join(',')) {
    throw new CloacinaSignError(
      'INVALID_INPUT',
      `the metrics registry already has a metric named ${definition.name} that is not a ${definition.type} with the labels ${definition.labelNames.join(', ')}`,
    );
  }
  return metric;
}

/** Get-or-create by name. */
function counter(registry: Registry, definition: MetricDefinition): Counter<string> {
  const found = existing(registry, definition) as Counter<string> | undefined;
  return found ?? new (prom().Counter)({ name: definition.name, help: definition.help, labelNames: definition.labelNames, registers: [registry] });
}

/** Get-or-create by name; `created` says whether this call registered it. */
function histogram(registry: Registry, definition: MetricDefinition): { metric: Histogram<string>; created: boolean } {
  const found = existing(registry, definition) as Histogram<string> | undefined;
  if (found) return { metric: found, created: false };
  const metric = new (prom().Histogram)({
    name: definition.name,
    help: definition.help,
    labelNames: definition.labelNames,
    buckets: [...(definition.buckets ?? DURATION_BUCKETS)],
    registers: [registry],
  });
  return { metric, created: true };
}

/**
 * The verification metrics in `registry` (get-or-create), with the success series of `operations` present
 * at zero from the start, so rates work from the first scrape. A histogram's series are set to zero only by
 * the call that registers it: zeroing a histogram series resets it, and another user of the registry may
 * have observed it already (a counter is zeroed by adding 0, which is always safe).
 */
export class VerificationMetrics {
  readonly verifications: Counter<string>;
  readonly verificationDuration: Histogram<string>;
  readonly verifiedBytes: Counter<string>;

  constructor(registry: Registry, operations: readonly MetricsOperation[]) {
    this.verifications = counter(registry, VERIFICATION_METRICS.verifications);
    const duration = histogram(registry, VERIFICATION_METRICS.verificationDuration);
    this.verificationDuration = duration.metric;
    this.verifiedBytes = counter(registry, VERIFICATION_METRICS.verifiedBytes);
    for (const operation of operations) {
      for (const version of ['1', '2']) this.verifications.inc({ operation, outcome: 'success', reason: NO_REASON, document_version: version }, 0);
      this.verifiedBytes.inc({ operation }, 0);
      if (duration.created) for (const outcome of ['success', 'failure']) this.verificationDuration.zero({ operation, outcome });
    }
  }

  /** One verification that succeeded: the document version, the time since `startedAt` (performance.now()), the package's size. */
  verified(operation: MetricsOperation, documentVersion: 1 | 2, startedAt: number, bytes: number): void {
    this.verifications.inc({ operation, outcome: 'success', reason: NO_REASON, document_version: String(documentVersion) });
    this.verificationDuration.observe({ operation, outcome: 'success' }, secondsSince(startedAt));
    if (bytes > 0) this.verifiedBytes.inc({ operation }, bytes);
  }

  /** One verification that failed, with the error's code as the reason. */
  failed(operation: MetricsOperation, error: unknown, startedAt: number): void {
    this.verifications.inc({ operation, outcome: 'failure', reason: reasonOf(error), document_version: NO_REASON });
    this.verificationDuration.observe({ operation, outcome: 'failure' }, secondsSince(startedAt));
  }
}

/** What a guarded load tells its observer. */
export interface LoadObserver {
  /** The load's turn came (guarded loads run one at a time): the decision starts now. */
  deciding(): void;
  /** The decision on the sealed bytes: verified (`documentVersion`), allowed unsigned (null), or refused (`error`). */
  decided(outcome: { documentVersion: 1 | 2 | null; bytes: number } | { error: unknown }): void;
}

/** Every metric of a package loader. */
export class LoaderMetrics extends VerificationMetrics {
  readonly loads: Counter<string>;
  readonly loadDuration: Histogram<string>;
  readonly unsignedLoads: Counter<string>;

  constructor(registry: Registry) {
    super(registry, LOADER_OPERATIONS);
    this.loads = counter(registry, LOAD_METRICS.loads);
    const duration = histogram(registry, LOAD_METRICS.loadDuration);
    this.loadDuration = duration.metric;
    this.unsignedLoads = counter(registry, LOAD_METRICS.unsignedLoads);
    for (const operation of LOAD_OPERATIONS) {
      this.loads.inc({ operation, outcome: 'success', reason: NO_REASON }, 0);
      this.unsignedLoads.inc({ operation }, 0);
      if (duration.created) for (const outcome of ['success', 'failure']) this.loadDuration.zero({ operation, outcome });
    }
  }

  /** Measures one loader.verify; `hashedBytes` reads the bytes it hashed (a version-2 statement's signed size comes first). */
  async verify<T extends { documentVersion: 1 | 2; statement: { size: number } | null }>(run: () => Promise<T>, hashedBytes: () => number): Promise<T> {
    const startedAt = performance.now();
    let result: T;
    try {
      result = await run();
    } catch (error) {
      this.failed('verify', error, startedAt);
      throw error;
    }
    this.verified('verify', result.documentVersion, startedAt, result.statement?.size ?? hashedBytes());
    return result;
  }

  /** Measures one guarded load, end to end; `run` reports its decision to the observer it is given. */
  async load<T>(operation: LoadOperation, run: (observer: LoadObserver) => Promise<T>): Promise<T> {
    const startedAt = performance.now();
    let decisionStartedAt = startedAt;
    let unsigned = false;
    const observer: LoadObserver = {
      deciding: () => {
        decisionStartedAt = performance.now();
      },
      decided: (outcome) => {
        if ('error' in outcome) this.failed(operation, outcome.error, decisionStartedAt);
        else if (outcome.documentVersion === null) unsigned = true;
        else this.verified(operation, outcome.documentVersion, decisionStartedAt, outcome.bytes);
      },
    };
    let result: T;
    try {
      result = await run(observer);
    } catch (error) {
      this.loads.inc({ operation, outcome: 'failure', reason: reasonOf(error) });
      this.loadDuration.observe({ operation, outcome: 'failure' }, secondsSince(startedAt));
      throw error;
    }
    this.loads.inc({ operation, outcome: 'success', reason: NO_REASON });
    this.loadDuration.observe({ operation, outcome: 'success' }, secondsSince(startedAt));
    if (unsigned) this.unsignedLoads.inc({ operation });
    return result;
  }
}

/**
 * The loader metrics of `registry`, found by name or registered (every loader sharing a registry shares
 * them; a registry cleared meanwhile gets them again).
 */
export function loaderMetrics(registry: Registry): LoaderMetrics {
  const candidate = registry as Partial<Registry> | null;
  if (typeof candidate?.getSingleMetric !== 'function' || typeof candidate.registerMetric !== 'function') {
    throw new CloacinaSignError('INVALID_INPUT', "`metrics` must be a prom-client Registry (new Registry(), or prom-client's global `register`)");
  }
  return new LoaderMetrics(registry);
}

/** A registry of its own holding exactly the loader metrics, at zero (what `cloacina-sign metrics` prints). */
export function loaderMetricsRegistry(): Registry {
  const registry = new (prom().Registry)();
  loaderMetrics(registry);
  return registry;
}
