// The metrics of a signing request that ended in signatures (single or batch alike).
import type { ServiceContext } from './context';

/** `count` signatures handed out by a request that began at `started` (process.hrtime.bigint()). */
export function recordSigned(ctx: ServiceContext, count: number, started: bigint): void {
  ctx.metrics.signatures.inc({ outcome: 'signed' }, count);
  ctx.metrics.signDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
}
