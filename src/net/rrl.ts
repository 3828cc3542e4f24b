/**
 * Response rate limiting for UDP answers (in the manner of BIND's RRL): a DNS server over UDP can
 * be made to send its answers to a forged source address, so the answers going to one network
 * (an IPv4 /24, an IPv6 /56) are limited. Past the limit an answer is not sent as it is: every
 * `slip`-th one is replaced by a truncated answer (TC set, no records), which a real client
 * behind that address takes as the cue to ask again over TCP (which cannot be forged), and the
 * others are dropped. So a victim gets at most the limit's worth of answers, each no larger than
 * a forged query could make it, and a real client still gets through.
 *
 * Runtime-agnostic: no `Deno.*`; the clock is injected.
 *
 * @module
 */
import { parseAddress } from "./cidr_set.ts";
import { type TokenBucket, TokenBuckets } from "./token_buckets.ts";

/** What to do with one answer. */
export type RrlVerdict =
  /** Within the limit: send the answer. */
  | "send"
  /** Past it, and this one slips: send a truncated answer instead (TC, no records). */
  | "slip"
  /** Past it: send nothing. */
  | "drop";

/** Options of {@linkcode ResponseRateLimiter}. */
export interface RrlOptions {
  /** Answers per second to one network (IPv4 /24, IPv6 /56). */
  rate: number;
  /** Answers one network may get at once before the rate applies. Default `rate`. */
  burst?: number;
  /**
   * Of the answers past the limit, every `slip`-th is sent truncated and the rest dropped; 1:
   * every one truncated; 0: every one dropped. Default 2 (BIND's default).
   */
  slip?: number;
  /** Networks tracked at most; the least recently seen are forgotten first. Default 100 000. */
  maxNetworks?: number;
  /** Milliseconds clock. Default `performance.now`. */
  now?: () => number;
}

interface Bucket extends TokenBucket {
  /** Answers past the limit so far, for the slip count. */
  over: number;
}

/**
 * The network an address counts under: `a.b.c` for an IPv4 address (its /24, IPv4-mapped IPv6
 * too), the first 56 bits as hex for an IPv6 address, and the text itself for anything else.
 *
 * @example
 * ```ts
 * rrlNetwork("192.0.2.77"); // "192.0.2"
 * rrlNetwork("2001:db8:aa:bbcc::1"); // "2001:db8:aa:bb/56"
 * ```
 */
export function rrlNetwork(address: string): string {
  // A dotted quad, maybe IPv4-mapped (`::ffff:192.0.2.1`): the text up to its last dot.
  const dot = address.lastIndexOf(".");
  if (dot > 0) {
    const colon = address.lastIndexOf(":");
    return address.slice(colon + 1, dot);
  }
  const addr = parseAddress(address);
  if (addr === undefined || addr.kind() === "ipv4") return address;
  const parts = (addr as { parts: number[] }).parts;
  const fourth = (parts[3] >> 8).toString(16);
  return `${parts[0].toString(16)}:${parts[1].toString(16)}:${parts[2].toString(16)}:${fourth}/56`;
}

/**
 * Token buckets per network, deciding each UDP answer's fate.
 *
 * @example
 * ```ts
 * const rrl = new ResponseRateLimiter({ rate: 100, slip: 2 });
 * switch (rrl.check(client.address)) {
 *   case "send": send(answer); break;
 *   case "slip": send(truncated(answer)); break;
 *   case "drop": break;
 * }
 * ```
 */
export class ResponseRateLimiter {
  readonly #slip: number;
  readonly #buckets: TokenBuckets<Bucket>;

  /** @throws {RangeError} for a rate that is not above 0 or a negative slip */
  constructor(options: RrlOptions) {
    if (!(options.rate > 0)) throw new RangeError("rrl: rate must be above 0");
    const slip = options.slip ?? 2;
    if (!Number.isInteger(slip) || slip < 0) {
      throw new RangeError(`rrl: slip must be a whole number, not ${slip}`);
    }
    this.#slip = slip;
    this.#buckets = new TokenBuckets({
      rate: options.rate,
      burst: options.burst ?? options.rate,
      max: options.maxNetworks ?? 100_000,
      now: options.now ?? (() => performance.now()),
    }, (tokens, at) => ({ tokens, at, over: 0 }));
  }

  /** Networks currently tracked. */
  get size(): number {
    return this.#buckets.size;
  }

  /** The fate of one answer to `address`. */
  check(address: string): RrlVerdict {
    const bucket = this.#buckets.refilled(rrlNetwork(address));
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      bucket.over = 0;
      return "send";
    }
    if (this.#slip === 0) return "drop";
    bucket.over++;
    return bucket.over % this.#slip === 0 ? "slip" : "drop";
  }
}
