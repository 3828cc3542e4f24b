/**
 * Per-client query rate limits: a token bucket per client address (IPv6 grouped by /64, since
 * one host usually holds a whole /64), with a bounded table so an attack from many addresses
 * cannot grow memory without limit.
 *
 * @module
 */
import ipaddr from "ipaddr.js";
import { EdeCode, Rcode } from "../dns/constants.ts";
import { errorAnswer } from "../dns/answer.ts";
import type { Middleware } from "../pipeline/types.ts";
import { type TokenBucket, TokenBuckets } from "../net/token_buckets.ts";

/** Options of {@linkcode RateLimiter}. */
export interface RateLimiterOptions {
  /** Sustained queries per second per client. */
  rate: number;
  /** Bucket size: queries a client may send at once. Default `rate` (one second's worth). */
  burst?: number;
  /** Most clients tracked; the least recently seen are forgotten first. Default 100 000. */
  maxClients?: number;
  /** Milliseconds clock. Default `performance.now`. */
  now?: () => number;
}

/** The key a client is limited under: the IPv4 address, or the IPv6 /64. */
export function clientKey(address: string): string {
  const a = address.trim().replace(/^\[|\](:\d+)?$/g, "").replace(/%.*$/, "");
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    ip = ipaddr.process(a); // IPv4-mapped IPv6, in any spelling, becomes IPv4
  } catch {
    return a.toLowerCase();
  }
  if (ip.kind() === "ipv4") return ip.toString();
  const parts = (ip as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16));
  return `${parts.join(":")}::/64`;
}

/**
 * A token-bucket limiter keyed by client.
 *
 * @example
 * ```ts
 * const limiter = new RateLimiter({ rate: 50, burst: 100 });
 * if (!limiter.take("192.0.2.1")) refuse();
 * ```
 */
export class RateLimiter {
  readonly #buckets: TokenBuckets<TokenBucket>;

  constructor(options: RateLimiterOptions) {
    if (!(options.rate > 0)) throw new RangeError("rate limit: rate must be above 0");
    this.#buckets = new TokenBuckets({
      rate: options.rate,
      burst: options.burst ?? options.rate,
      max: options.maxClients ?? 100_000,
      now: options.now ?? (() => performance.now()),
    }, (tokens, at) => ({ tokens, at }));
  }

  /** Clients currently tracked. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Takes one token for `address`; false when its bucket is empty. */
  take(address: string): boolean {
    const bucket = this.#buckets.refilled(clientKey(address));
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}

/** Answers REFUSED to a client past its rate (RFC 8914 code 0 with text "rate limited"). */
export function rateLimitMiddleware(limiter: RateLimiter): Middleware {
  return (next) => (query, ctx) => {
    if (ctx.client && !limiter.take(ctx.client.address)) {
      if (ctx.trace) ctx.trace.source = "refused";
      return errorAnswer(query.wire, query.info, Rcode.REFUSED, {
        code: EdeCode.OTHER,
        text: "rate limited",
      });
    }
    return next(query, ctx);
  };
}
