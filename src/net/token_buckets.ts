/**
 * Token buckets by key, refilled at a fixed rate up to a burst, with an LRU cap on how many keys
 * are kept: what the query rate limit (per client) and response rate limiting (per network)
 * both count with.
 *
 * @module
 */

/** One key's bucket: tokens as of `at` (ms). */
export interface TokenBucket {
  tokens: number;
  at: number;
}

/** Options of {@linkcode TokenBuckets}. */
export interface TokenBucketsOptions {
  /** Tokens per second. */
  rate: number;
  /** Tokens a bucket holds at most, and starts with. */
  burst: number;
  /** Keys kept; past it the least recently seen one is dropped. */
  max: number;
  /** Milliseconds clock. */
  now: () => number;
}

/**
 * Buckets of type `B` by key (`fresh` makes a full one).
 *
 * @example
 * ```ts
 * const buckets = new TokenBuckets(opts, (tokens, at) => ({ tokens, at }));
 * const b = buckets.refilled("192.0.2.0/24");
 * if (b.tokens >= 1) b.tokens -= 1;
 * ```
 */
export class TokenBuckets<B extends TokenBucket> {
  readonly #perMs: number;
  readonly #burst: number;
  readonly #max: number;
  readonly #now: () => number;
  readonly #fresh: (tokens: number, at: number) => B;
  readonly #buckets = new Map<string, B>();

  constructor(options: TokenBucketsOptions, fresh: (tokens: number, at: number) => B) {
    this.#perMs = options.rate / 1000;
    this.#burst = options.burst;
    this.#max = options.max;
    this.#now = options.now;
    this.#fresh = fresh;
  }

  /** Keys currently tracked. */
  get size(): number {
    return this.#buckets.size;
  }

  /** `key`'s bucket, refilled for the time since it was last seen and marked most recent. */
  refilled(key: string): B {
    const now = this.#now();
    let bucket = this.#buckets.get(key);
    if (bucket) {
      this.#buckets.delete(key); // re-insert: Map order doubles as least-recently-seen order
      bucket.tokens = Math.min(this.#burst, bucket.tokens + (now - bucket.at) * this.#perMs);
      bucket.at = now;
    } else {
      bucket = this.#fresh(this.#burst, now);
      if (this.#buckets.size >= this.#max) {
        this.#buckets.delete(this.#buckets.keys().next().value!);
      }
    }
    this.#buckets.set(key, bucket);
    return bucket;
  }
}
