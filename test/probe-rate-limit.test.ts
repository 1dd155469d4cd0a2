// The failed-authentication limiter's memory under a flood faster than its buckets refill.
import { expect } from 'chai';
import { MAX_BUCKETS, RateLimiter } from '../src/service/rate-limit';

describe('the rate limiter under a flood of distinct keys', () => {
  it('when distinct keys arrive faster than their buckets refill it never holds more than MAX_BUCKETS buckets', () => {
    const limiter = new RateLimiter({ perSecond: 1, burst: 20 });
    const now = 1_000_000;
    let largest = 0;
    for (let i = 0; i < 3 * MAX_BUCKETS; i += 1) {
      limiter.take(`token-hash:${i}`, now);
      largest = Math.max(largest, limiter.size);
    }
    expect(largest).to.be.at.most(MAX_BUCKETS);
  });
});
