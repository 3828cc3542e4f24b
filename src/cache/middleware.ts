/**
 * The answer cache as one middleware over a pluggable store (`store.ts` has the contract): TTLs
 * counted down on every hit from the time the answer was stored, negative answers cached by the
 * SOA minimum (RFC 2308), lifetimes clamped, answers over a size cap not kept, concurrent
 * identical misses coalesced into one upstream query, and optionally stale answers when the
 * upstream fails or is slow (RFC 8767).
 *
 * @module
 */
import { EdeCode, Flag, Rcode } from "../dns/constants.ts";
import { type Answer, rewriteAnswerOptions } from "../dns/answer.ts";
import { headerRcode, type MessageInfo } from "../dns/message.ts";
import type { Query } from "../dns/query.ts";
import { extendedErrorOption } from "../dns/response.ts";
import { ageTtls, minAnswerTtl } from "../dns/ttl.ts";
import type { Handler, Middleware, QueryContext, QueryTrace } from "../pipeline/types.ts";
import { type CacheEntry, cacheKey, type CacheStore, clientSubnetKey, isPromise } from "./store.ts";
import { checkedEntry } from "./trust.ts";

/** The default of {@linkcode CacheOptions.maxEntryBytes}: 16 KiB. */
export const DEFAULT_MAX_ENTRY_BYTES = 16_384;

/** Options of {@linkcode cacheMiddleware}. */
export interface CacheOptions {
  /** Where answers are kept. */
  store: CacheStore;
  /** Cache answers at least this long (seconds). Default 0. */
  minTtl?: number;
  /**
   * Cache answers at most this long (seconds), also those a shared store hands back (their times
   * are clamped and their TTLs capped, `trust.ts`). Default 86 400.
   */
  maxTtl?: number;
  /**
   * Larger answers (wire bytes) are served but not kept, in any store. Default
   * {@linkcode DEFAULT_MAX_ENTRY_BYTES}.
   */
  maxEntryBytes?: number;
  /**
   * The client's EDNS Client Subnet goes upstream (`keepClientSubnet`), so an answer may be for
   * that subnet: the key carries it (`clientSubnetKey`), and a query with an odd one is not
   * cached. Default false: the subnet is stripped before the upstream and not in the key.
   */
  clientSubnet?: boolean;
  /**
   * Serve an expired answer for up to this many seconds past its expiry when the upstream fails
   * or is slower than `staleAnswerTimeoutMs` (RFC 8767). 0 (default): never.
   */
  serveStaleSeconds?: number;
  /** How long to wait for the upstream before a stale answer is served. Default 1 800 ms. */
  staleAnswerTimeoutMs?: number;
  /** Milliseconds clock. Default `Date.now`. */
  now?: () => number;
  /** Counts cache events (metrics). Must not throw. */
  onEvent?: (event: CacheEvent) => void;
  /** The tenant part of the key (cache partition). Default: `ctx.tenant`, else none. */
  tenantOf?: (ctx: QueryContext) => string;
}

/** What happened to one query at the cache. */
export type CacheEvent = "hit" | "miss" | "coalesced" | "stale";

/** A usable entry: what the store gave, with its parse (so it is an {@linkcode Answer} too). */
type Found = CacheEntry & Answer;

interface Flight {
  promise: Promise<Answer>;
  controller: AbortController;
  waiters: number;
  /** Where the flight's answer came from, when its queries are traced; each waiter copies it. */
  trace?: QueryTrace;
}

/** Tells a waiter's trace what the flight's told (source, upstream, list). */
function copyTrace(to: QueryTrace | undefined, from: QueryTrace | undefined): void {
  if (!to || !from) return;
  to.source = from.source;
  to.upstream = from.upstream;
  to.list = from.list;
}

const noEvent = () => {};

/**
 * `stored` for `query`: its ID, its spelling of the name (0x20), TTLs lowered by `agedSeconds`
 * (not below `floor`). One walk (the ageing, which also learns the new `minTtl`), none when
 * nothing ages. For a client that sent no OPT, an OPT record at the end of the answer is left out
 * of the copy (the face would strip it anyway, RFC 6891 §7: one copy instead of two).
 */
function forClient(stored: Answer, query: Query, agedSeconds: number, floor = 0): Answer {
  const opt = stored.info.opt;
  const dropOpt = !query.info.opt && opt !== undefined && opt.end === stored.wire.length;
  const out = dropOpt ? stored.wire.slice(0, opt.start) : new Uint8Array(stored.wire);
  const id = query.info.id;
  out[0] = id >> 8;
  out[1] = id & 0xff;
  const arcount = dropOpt ? stored.info.arcount - 1 : stored.info.arcount;
  if (dropOpt) {
    out[10] = arcount >> 8;
    out[11] = arcount & 0xff;
  }
  const sameLength = stored.info.questionEnd === query.info.questionEnd && stored.info.question;
  if (sameLength) out.set(query.wire.subarray(12, query.info.questionEnd), 12);
  const kept = stored.info;
  let minTtl = kept.minTtl;
  if (agedSeconds > 0 || floor > 0) {
    try {
      minTtl = ageTtls(out, agedSeconds, floor);
    } catch {
      // Entries were walked on the way in, so this cannot fail; if it did, the bytes decide.
      minTtl = minAnswerTtl(out);
    }
  }
  // Every field spelled out (no spread): one object shape, cheap to make on every hit.
  const info: MessageInfo = {
    id,
    flags: kept.flags,
    qdcount: kept.qdcount,
    ancount: kept.ancount,
    nscount: kept.nscount,
    arcount,
    question: sameLength ? query.question : kept.question,
    questionEnd: kept.questionEnd,
    opt: dropOpt ? undefined : opt,
    minTtl,
  };
  return { wire: out, info };
}

/** A stale answer: TTLs set to 30 s (RFC 8767 §4) and EDE 3 (Stale Answer) when EDNS is on. */
function staleAnswer(found: Found, query: Query): Answer {
  const out = forClient(found, query, 0x7fffffff, 30);
  if (!out.info.opt) return out;
  return rewriteAnswerOptions(out, () => true, [
    extendedErrorOption({ code: EdeCode.STALE_ANSWER }),
  ]);
}

/**
 * The cache as a middleware. Put it after policy (ACL, rate limit, tenant routing, local records)
 * and before the upstream privacy rewrite, so the key is the client's question.
 *
 * @example
 * ```ts
 * const cache = cacheMiddleware({ store: new MemoryStore({ maxEntries: 50_000 }) });
 * const handler = compose([cache, upstreamPrivacy()], fromUpstream(upstream));
 * ```
 */
export function cacheMiddleware(options: CacheOptions): Middleware {
  const { store } = options;
  const minTtl = options.minTtl ?? 0;
  const maxTtl = options.maxTtl ?? 86_400;
  const maxTtlMs = maxTtl * 1000;
  const maxEntryBytes = options.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES;
  const withSubnet = options.clientSubnet ?? false;
  const staleMs = (options.serveStaleSeconds ?? 0) * 1000;
  const staleTimeoutMs = options.staleAnswerTimeoutMs ?? 1_800;
  const now = options.now ?? Date.now;
  const event = options.onEvent ?? noEvent;
  const tenantOf = options.tenantOf ?? ((ctx: QueryContext) => ctx.tenant ?? "");
  const flights = new Map<string, Flight>();

  /**
   * The store's entry as a usable answer, or undefined (dropping it) if unusable or too old. An
   * entry of bytes only is checked, clamped and walked first (`trust.ts`).
   */
  function usable(key: string, entry: CacheEntry | undefined, at: number): Found | undefined {
    if (!entry) return undefined;
    const found = entry.info ? entry : checkedEntry(key, entry, { now: at, maxTtlMs });
    if (!found || at >= found.expiresAt + staleMs) {
      dropQuietly(key);
      return undefined;
    }
    return found as Found;
  }

  function dropQuietly(key: string): void {
    try {
      const done = store.delete(key);
      if (isPromise(done)) done.catch(noEvent);
    } catch {
      // A store that cannot delete keeps a bad entry a while longer: it is checked every time.
    }
  }

  /**
   * Keeps an upstream answer if it is cacheable (NOERROR/NXDOMAIN, not truncated, a TTL), its
   * TTLs capped at `maxTtl` (what clients are told too, as Unbound's cache-max-ttl does); returns
   * the answer to hand out: the capped one (ID 0; `forClient` gives each client its own), or
   * `answer` as it came when it is not kept.
   */
  function keep(key: string, answer: Answer): Answer | Promise<Answer> {
    const { info } = answer;
    if (info.flags & Flag.TC || answer.wire.length > maxEntryBytes) return answer;
    const rcode = headerRcode(info.flags);
    if (rcode !== Rcode.NOERROR && rcode !== Rcode.NXDOMAIN) return answer;
    const ttl = info.minTtl;
    if (ttl === undefined) return answer;
    const seconds = Math.min(maxTtl, Math.max(minTtl, ttl));
    if (seconds <= 0 && staleMs === 0) return answer;
    const wire = new Uint8Array(answer.wire);
    wire[0] = 0;
    wire[1] = 0;
    let capped = info.minTtl;
    try {
      // One walk: no record's TTL above the cap, stored or told.
      capped = ageTtls(wire, 0, 0, maxTtl);
    } catch {
      // The answer was walked when it arrived; if this failed, keep its bytes as they are.
    }
    const storedAt = now();
    const entry: CacheEntry = {
      wire,
      info: { ...info, id: 0, minTtl: capped },
      storedAt,
      expiresAt: storedAt + seconds * 1000,
    };
    const kept: Answer = entry as Found;
    try {
      const done = store.set(key, entry, seconds + staleMs / 1000);
      if (isPromise(done)) return done.then(() => kept, () => kept);
    } catch {
      // Losing an entry is allowed; the answer still goes to the client.
    }
    return kept;
  }

  /** A fresh hit's answer, or undefined; `found` is the entry (fresh or within the stale window). */
  function hit(query: Query, ctx: QueryContext, found: Found | undefined, at: number) {
    if (!found || at >= found.expiresAt) return undefined;
    event("hit");
    if (ctx.trace) ctx.trace.source = "cache";
    return forClient(found, query, Math.floor((at - found.storedAt) / 1000));
  }

  // Not an async function: a hit from the memory store is answered synchronously, with no
  // promise; the async frame and its await are only paid on a miss or a Redis lookup.
  return (next) => (query, ctx) => {
    const subnet = withSubnet ? clientSubnetKey(query.info) : "";
    if (subnet === undefined) return next(query, ctx); // an odd subnet option: not cached
    const key = cacheKey(query, tenantOf(ctx), subnet);
    const got = store.get(key);
    if (isPromise(got)) {
      return got.catch(() => undefined).then((entry) => {
        const at = now();
        const found = usable(key, entry, at);
        return hit(query, ctx, found, at) ?? miss(next, query, ctx, key, found);
      });
    }
    const at = now();
    const found = usable(key, got, at);
    return hit(query, ctx, found, at) ?? miss(next, query, ctx, key, found);
  };

  /** No fresh entry: join or start the flight for `key`; `found` is a stale entry, if any. */
  async function miss(
    next: Handler,
    query: Query,
    ctx: QueryContext,
    key: string,
    found: Found | undefined,
  ): Promise<Answer> {
    // A client that left while an asynchronous store looked up must not join (or start) a flight:
    // its abort listener would never fire, and the flight would keep a waiter for ever.
    if (ctx.signal.aborted) throw ctx.signal.reason;
    let flight = flights.get(key);
    if (flight) {
      event("coalesced");
    } else {
      event("miss");
      const controller = new AbortController();
      // The flight outlives any one waiter, so it has a trace of its own, copied to each.
      const trace: QueryTrace | undefined = ctx.trace ? {} : undefined;
      // The flight's answer is the one kept (TTLs capped), a promise only for an async store.
      const promise = Promise.resolve(next(query, { ...ctx, signal: controller.signal, trace }))
        .then((answer) => keep(key, answer));
      const started: Flight = { promise, controller, waiters: 0, trace };
      flights.set(key, started);
      const done = () => {
        if (flights.get(key) === started) flights.delete(key);
      };
      promise.then(done, done);
      flight = started;
    }
    const f = flight;
    f.waiters++;
    const leave = () => {
      if (--f.waiters > 0) return;
      // Nobody wants this flight any more: a new identical query must start its own, not join
      // one that is about to fail with another client's reason.
      if (flights.get(key) === f) flights.delete(key);
      f.controller.abort(ctx.signal.reason);
    };
    ctx.signal.addEventListener("abort", leave, { once: true });
    try {
      let answer: Answer;
      if (found) {
        // Expired but within the stale window.
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), staleTimeoutMs);
        });
        try {
          const first = await Promise.race([f.promise, late]);
          if (first === undefined) {
            event("stale");
            if (ctx.trace) ctx.trace.source = "stale";
            return staleAnswer(found, query);
          }
          answer = first;
        } catch {
          event("stale");
          if (ctx.trace) ctx.trace.source = "stale";
          return staleAnswer(found, query);
        } finally {
          clearTimeout(timer);
        }
      } else {
        answer = await f.promise;
      }
      copyTrace(ctx.trace, f.trace);
      return forClient(answer, query, 0);
    } finally {
      ctx.signal.removeEventListener("abort", leave);
      if (!ctx.signal.aborted) f.waiters--;
    }
  }
}
