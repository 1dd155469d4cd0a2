// Token buckets in memory, one per key (an API token id; for failed authentications, a presented token's
// hash or a client address). Each bucket holds up to `burst` requests and refills at `perSecond`. Per
// process: N service processes behind a load balancer allow N times the rate (documented).
//
// Memory stays bounded whatever the keys: a bucket that has refilled is the same as none and is dropped
// by the sweep, so a flood of distinct keys (random tokens) keeps only the buckets still short of full.

export interface RateLimit {
  /** Sustained requests per second. */
  perSecond: number;
  /** Bucket size: requests allowed at once after a quiet period. */
  burst: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** Sweep at least this often, and whenever the map has grown past its last size after a sweep, doubled. */
const IDLE_SWEEP_MS = 60_000;
const SWEEP_AT_SIZE = 10_000;
/** The most buckets ever held: a sweep keeps at most half, dropping the oldest (each then starts full again). */
export const MAX_BUCKETS = 200_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweep = Date.now();
  private sweepAtSize = SWEEP_AT_SIZE;

  constructor(readonly limit: RateLimit) {
    if (!(limit.perSecond > 0) || !(limit.burst >= 1)) throw new RangeError('a rate limit needs perSecond > 0 and burst >= 1');
  }

  /** Takes `count` requests (default one) from `key`'s bucket: 0 when allowed, else the seconds until they are available (>= 1). */
  take(key: string, now = Date.now(), count = 1): number {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.sweepAtSize || now - this.lastSweep > IDLE_SWEEP_MS) this.sweep(now);
      bucket = { tokens: this.limit.burst, updatedAt: now };
      this.buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(this.limit.burst, bucket.tokens + ((now - bucket.updatedAt) / 1000) * this.limit.perSecond);
      bucket.updatedAt = now;
    }
    if (bucket.tokens >= count) {
      bucket.tokens -= count;
      return 0;
    }
    return Math.max(1, Math.ceil((count - bucket.tokens) / this.limit.perSecond));
  }

  /** Without taking anything: 0 when `key` may make a request now, else the seconds until it may. */
  blocked(key: string, now = Date.now()): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return 0;
    const tokens = Math.min(this.limit.burst, bucket.tokens + ((now - bucket.updatedAt) / 1000) * this.limit.perSecond);
    return tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - tokens) / this.limit.perSecond));
  }

  /** Drops the buckets that have refilled; then, if still too many, the least recently created. */
  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.updatedAt) / 1000) * this.limit.perSecond >= this.limit.burst) this.buckets.delete(key);
    }
    // At most half the bound is kept: the map may double before the next sweep and still be within it.
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= MAX_BUCKETS / 2) break;
      this.buckets.delete(key);
    }
    // Not again before the map has doubled: a sweep is linear, so it stays amortized constant per new key.
    this.sweepAtSize = Math.max(SWEEP_AT_SIZE, 2 * this.buckets.size);
  }

  /** How many buckets are held (for tests of the bound). */
  get size(): number {
    return this.buckets.size;
  }
}
