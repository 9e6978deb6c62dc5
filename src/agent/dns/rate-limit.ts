/**
 * Response-rate limiting of UDP answers per client address (issue 14). A UDP query's source address can be
 * forged, so an open resolver-like server is an amplifier: a 60-byte SRV query can draw a 4 KiB answer
 * (EDNS) at a victim. Like BIND's RRL (and unlike Consul, which has none), each client address gets a token
 * bucket of answers; past it, every other query gets a tiny truncated answer (TC set, no records: no
 * amplification, and a real resolver retries over TCP, which cannot be forged and is not limited) and the
 * rest are dropped. Loopback binds run without it unless asked.
 */

/** Options of {@link createRateLimiter}. */
export interface RateLimiterOptions {
  /** Answers per second per client address. */
  perSecond: number;
  /** Bucket size: answers a client may get at once. @default perSecond */
  burst?: number;
  /** Most client addresses tracked; past it, full buckets are forgotten first. @default 65536 */
  maxClients?: number;
  /** Milliseconds clock. @default performance.now */
  now?: () => number;
}

/** What to do with a query: answer it, answer with TC and no records, or drop it. */
export type RateVerdict = 'answer' | 'slip' | 'drop';

/** A per-address token bucket. */
export interface RateLimiter {
  /** Takes a token for `address` and says what to do with its query. */
  take(address: string): RateVerdict;
  /** Addresses tracked now. */
  size(): number;
}

interface Bucket {
  tokens: number;
  at: number;
  /** Refused queries since the bucket last had a token, for the every-other slip. */
  refused: number;
}

/**
 * Creates a limiter.
 *
 * @example
 * const rrl = createRateLimiter({ perSecond: 100 });
 * if (rrl.take(rinfo.address) === 'answer') send(answer);
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const rate = options.perSecond / 1000;
  const burst = options.burst ?? options.perSecond;
  const maxClients = options.maxClients ?? 65_536;
  const now = options.now ?? (() => performance.now());
  const buckets = new Map<string, Bucket>();

  function sweep(t: number): void {
    for (const [k, b] of buckets) if (b.tokens + (t - b.at) * rate >= burst) buckets.delete(k);
    // every bucket is busy (a flood from many forged sources): start over rather than grow without bound
    if (buckets.size >= maxClients) buckets.clear();
  }

  return {
    take(address) {
      const t = now();
      let b = buckets.get(address);
      if (!b) {
        if (buckets.size >= maxClients) sweep(t);
        b = { tokens: burst, at: t, refused: 0 };
        buckets.set(address, b);
      } else {
        b.tokens = Math.min(burst, b.tokens + (t - b.at) * rate);
        b.at = t;
      }
      if (b.tokens >= 1) {
        b.tokens -= 1;
        b.refused = 0;
        return 'answer';
      }
      b.refused += 1;
      return b.refused % 2 === 1 ? 'slip' : 'drop';
    },
    size: () => buckets.size,
  };
}
