/**
 * An in-memory answer cache: size-bounded LRU keyed by question and DO/CD bits, TTLs counted
 * down on every hit, negative answers cached by the SOA minimum (RFC 2308), concurrent identical
 * misses coalesced into one upstream query, and optionally stale answers when every upstream
 * fails (RFC 8767).
 *
 * @module
 */
import { EdeCode, EDNS_DO, Flag, Rcode } from "../dns/constants.ts";
import { rewriteOptions } from "../dns/edns.ts";
import { parseMessage } from "../dns/message.ts";
import type { Query } from "../dns/query.ts";
import { extendedErrorOption } from "../dns/response.ts";
import { ageTtls, minAnswerTtl } from "../dns/ttl.ts";
import type { Middleware, QueryContext } from "./types.ts";

/** Options of {@linkcode DnsCache}. */
export interface CacheOptions {
  /** Most answers kept; the least recently used go first. Default 10 000. */
  maxEntries?: number;
  /** Cache answers at least this long (seconds). Default 0. */
  minTtl?: number;
  /** Cache answers at most this long (seconds). Default 86 400. */
  maxTtl?: number;
  /**
   * Serve an expired answer for up to this many seconds past its expiry when the upstream fails
   * or is slower than `staleAnswerTimeoutMs` (RFC 8767). 0 (default): never.
   */
  serveStaleSeconds?: number;
  /** How long to wait for the upstream before a stale answer is served. Default 1 800 ms. */
  staleAnswerTimeoutMs?: number;
  /** Milliseconds clock. Default `Date.now`. */
  now?: () => number;
  /** Counts cache events (metrics). */
  onEvent?: (event: CacheEvent) => void;
}

/** What happened to one query at the cache. */
export type CacheEvent = "hit" | "miss" | "coalesced" | "stale";

interface Entry {
  /** The answer as the upstream gave it, message ID 0. */
  wire: Uint8Array;
  storedAt: number;
  expiresAt: number;
}

/** The cache key: question, class, DO and CD, and the tenant when there is one. */
export function cacheKey(query: Query, tenant = ""): string {
  const q = query.question;
  const doBit = query.info.opt && (query.info.opt.ttl & EDNS_DO) ? 1 : 0;
  const cdBit = query.info.flags & Flag.CD ? 2 : 0;
  return `${tenant}|${q.type}|${q.class}|${doBit | cdBit}|${q.name.toLowerCase()}`;
}

/**
 * The store. Safe for concurrent use within one isolate; not shared across processes.
 *
 * @example
 * ```ts
 * const cache = new DnsCache({ maxEntries: 50_000, serveStaleSeconds: 86_400 });
 * const handler = compose([cacheMiddleware(cache)], upstreamHandler);
 * ```
 */
export class DnsCache {
  readonly #entries = new Map<string, Entry>();
  readonly #max: number;
  readonly #minTtl: number;
  readonly #maxTtl: number;
  readonly #staleMs: number;
  readonly now: () => number;
  readonly staleAnswerTimeoutMs: number;
  readonly onEvent?: (event: CacheEvent) => void;

  constructor(options: CacheOptions = {}) {
    this.#max = options.maxEntries ?? 10_000;
    this.#minTtl = options.minTtl ?? 0;
    this.#maxTtl = options.maxTtl ?? 86_400;
    this.#staleMs = (options.serveStaleSeconds ?? 0) * 1000;
    this.staleAnswerTimeoutMs = options.staleAnswerTimeoutMs ?? 1_800;
    this.now = options.now ?? Date.now;
    this.onEvent = options.onEvent;
  }

  /** Answers held. */
  get size(): number {
    return this.#entries.size;
  }

  /** True when stale answers may be served. */
  get servesStale(): boolean {
    return this.#staleMs > 0;
  }

  /**
   * A fresh answer for `key`, or, with `stale`, one expired less than `serveStaleSeconds` ago.
   * The returned entry must not be modified.
   */
  lookup(key: string, stale = false): Entry | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    const now = this.now();
    if (now < entry.expiresAt) {
      this.#entries.delete(key); // re-insert: Map order is the LRU order
      this.#entries.set(key, entry);
      return entry;
    }
    if (now >= entry.expiresAt + this.#staleMs) {
      this.#entries.delete(key);
      return undefined;
    }
    return stale ? entry : undefined;
  }

  /** Stores an upstream answer if it is cacheable (NOERROR/NXDOMAIN, not truncated, a TTL). */
  store(key: string, answer: Uint8Array): void {
    if (answer.length < 12 || answer[2] & (Flag.TC >> 8)) return;
    const rcode = answer[3] & 0x0f;
    if (rcode !== Rcode.NOERROR && rcode !== Rcode.NXDOMAIN) return;
    const ttl = minAnswerTtl(answer);
    if (ttl === undefined) return;
    const seconds = Math.min(this.#maxTtl, Math.max(this.#minTtl, ttl));
    if (seconds <= 0 && this.#staleMs === 0) return;
    const wire = new Uint8Array(answer);
    wire[0] = 0;
    wire[1] = 0;
    const now = this.now();
    this.#entries.delete(key);
    this.#entries.set(key, { wire, storedAt: now, expiresAt: now + seconds * 1000 });
    if (this.#entries.size > this.#max) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
  }

  /** Drops everything. */
  clear(): void {
    this.#entries.clear();
  }
}

/** A copy of `wire` for `query`: its ID, its spelling of the name (0x20), TTLs aged. */
function forClient(wire: Uint8Array, query: Query, agedSeconds: number, floor = 0): Uint8Array {
  const out = new Uint8Array(wire);
  out[0] = query.info.id >> 8;
  out[1] = query.info.id & 0xff;
  const qlen = query.info.questionEnd - 12;
  if (out.length >= 12 + qlen) out.set(query.wire.subarray(12, query.info.questionEnd), 12);
  try {
    ageTtls(out, agedSeconds, floor);
  } catch {
    // Stored answers were validated on the way in; a failure here leaves TTLs as they were.
  }
  return out;
}

/** A stale answer: TTLs set to 30 s (RFC 8767 §4) and EDE 3 (Stale Answer) when EDNS is on. */
function staleAnswer(entry: Entry, query: Query): Uint8Array {
  const out = forClient(entry.wire, query, 0x7fffffff, 30);
  try {
    const info = parseMessage(out);
    if (!info.opt) return out;
    return rewriteOptions(out, info, () => true, [
      extendedErrorOption({ code: EdeCode.STALE_ANSWER }),
    ]);
  } catch {
    return out;
  }
}

interface Flight {
  promise: Promise<Uint8Array>;
  controller: AbortController;
  waiters: number;
}

/**
 * The cache as a middleware. Put it after policy (ACL, rate limit) and before the upstream
 * privacy rewrite, so the key is the client's question.
 *
 * @param tenantOf the tenant part of the key (cache partition), if tenants are used
 */
export function cacheMiddleware(
  cache: DnsCache,
  tenantOf: (ctx: QueryContext) => string = () => "",
): Middleware {
  const flights = new Map<string, Flight>();
  const event = cache.onEvent ?? (() => {});

  return (next) => async (query, ctx) => {
    const key = cacheKey(query, tenantOf(ctx));
    const fresh = cache.lookup(key);
    if (fresh) {
      event("hit");
      const aged = Math.floor((cache.now() - fresh.storedAt) / 1000);
      return forClient(fresh.wire, query, aged);
    }

    let flight = flights.get(key);
    if (flight) {
      event("coalesced");
    } else {
      event("miss");
      const controller = new AbortController();
      const promise = next(query, { ...ctx, signal: controller.signal }).then((answer) => {
        cache.store(key, answer);
        return answer;
      });
      flight = { promise, controller, waiters: 0 };
      flights.set(key, flight);
      const done = () => {
        if (flights.get(key) === flight) flights.delete(key);
      };
      promise.then(done, done);
    }
    const f = flight;
    f.waiters++;
    const leave = () => {
      if (--f.waiters === 0) f.controller.abort(ctx.signal.reason);
    };
    ctx.signal.addEventListener("abort", leave, { once: true });
    try {
      const stale = cache.servesStale ? cache.lookup(key, true) : undefined;
      let answer: Uint8Array;
      if (stale) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), cache.staleAnswerTimeoutMs);
        });
        try {
          const first = await Promise.race([f.promise, late]);
          if (first === undefined) {
            event("stale");
            return staleAnswer(stale, query);
          }
          answer = first;
        } catch {
          event("stale");
          return staleAnswer(stale, query);
        } finally {
          clearTimeout(timer);
        }
      } else {
        answer = await f.promise;
      }
      return forClient(answer, query, 0);
    } finally {
      ctx.signal.removeEventListener("abort", leave);
      if (!ctx.signal.aborted) f.waiters--;
    }
  };
}
