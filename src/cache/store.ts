/**
 * The contract between the cache middleware and the place answers are kept (a store), and the
 * key both sides use. The middleware (`middleware.ts`) owns every DNS decision: what may be
 * cached and for how long, counting TTLs down, serve-stale, coalescing, metrics. A store only
 * keeps bytes under a key for a while. That split is what lets a process-local LRU, the Workers
 * Cache API and a shared store (Redis) sit behind the same middleware.
 *
 * ## What a store promises, and what it may do
 *
 * - **It may lose anything, at any time.** Eviction, restarts, another data centre, a network
 *   failure: a missing entry is a miss and nothing else. A store never has to keep an entry for
 *   the whole time it was given.
 * - **Time.** `set` gets the entry (bytes, `storedAt`, `expiresAt`, all on the middleware's
 *   clock, in ms) and `keepSeconds`: how long the entry can still be of use (its TTL plus the
 *   serve-stale window). A store may drop the entry after `keepSeconds`, and should, to bound its
 *   size; it must hand `storedAt` and `expiresAt` back unchanged, since the middleware counts the
 *   TTLs in the bytes down from `storedAt` on every hit (the bytes stay as the upstream gave them).
 * - **Keys** are {@linkcode cacheKey} strings: a version and namespace prefix (`dotbridge:v1:`),
 *   then the tenant, the question type and class, the DO and CD bits, and the question name
 *   lower-cased (last, so a name holding `:` is still unambiguous). A store shared between
 *   bridges or tenants may use them as they are; one that needs another alphabet (a URL) must
 *   encode them one-to-one. A change of key or entry layout changes the version.
 * - **Sync or async.** `get` and `set` may return a value or a promise. The middleware awaits
 *   only a promise, so a synchronous store (the memory LRU) answers a hit without a microtask
 *   turn; an asynchronous store (the Cache API, Redis) costs its round trip on every lookup.
 *   `set` is awaited on a miss before the flight settles; a store should bound its own writes.
 *   A store never rejects on a lookup it cannot do: it answers `undefined` (a miss).
 * - **Trust.** An entry that carries `info` (the parse) is taken as is: only a store that keeps
 *   objects in this process (the memory LRU) may return one, and only the one it was given. An
 *   entry of bytes only is walked once on the way out; one that does not parse as a response, or
 *   does not answer the question of its key, is deleted and counts as a miss. So a shared store
 *   never has to check what it holds. The two-level store (`tiered.ts`) makes the same check
 *   itself on what its back store (Redis) returns, before keeping it in front with its parse.
 * - **Concurrency.** Calls for the same key may overlap; the last `set` wins.
 *
 * @module
 */
import { EDNS_DO, Flag } from "../dns/constants.ts";
import type { MessageInfo } from "../dns/message.ts";
import type { Query } from "../dns/query.ts";

/** One kept answer. */
export interface CacheEntry {
  /** The answer as the upstream gave it: message ID 0, TTLs as they were at `storedAt`. */
  readonly wire: Uint8Array;
  /** The parse of `wire`, when the store kept the object it was given (see the trust rule). */
  readonly info?: MessageInfo;
  /** When it was stored (ms, the middleware's clock). */
  readonly storedAt: number;
  /** When it stops being fresh (ms, the middleware's clock). */
  readonly expiresAt: number;
}

/** A value, or a promise of one: what a store's methods return. */
export type MaybePromise<T> = T | Promise<T>;

/** True for a promise (or any thenable) a store handed back. */
export function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === "function";
}

/** Where the cache middleware keeps answers. See the module notes for the whole contract. */
export interface CacheStore {
  /** For logs: `memory`, `workers-cache`, ... */
  readonly name: string;
  /** The entry under `key`, or `undefined`. Never rejects. */
  get(key: string): MaybePromise<CacheEntry | undefined>;
  /** Keeps `entry` under `key` for up to `keepSeconds` (it may be lost sooner). */
  set(key: string, entry: CacheEntry, keepSeconds: number): MaybePromise<void>;
  /** Forgets `key` (an entry that turned out bad or too old). */
  delete(key: string): MaybePromise<void>;
}

/** The key prefix: namespace and layout version. */
export const CACHE_KEY_PREFIX = "dotbridge:v1:";

/**
 * The cache key of a query: tenant, question type and class, DO and CD bits, name lower-cased.
 *
 * @example
 * ```ts
 * cacheKey(query, "kids"); // "dotbridge:v1:kids:1:1:0:www.example.com"
 * ```
 */
export function cacheKey(query: Query, tenant = ""): string {
  const q = query.question;
  const doBit = query.info.opt && (query.info.opt.ttl & EDNS_DO) ? 1 : 0;
  const cdBit = query.info.flags & Flag.CD ? 2 : 0;
  return `${CACHE_KEY_PREFIX}${tenant}:${q.type}:${q.class}:${
    doBit | cdBit
  }:${q.name.toLowerCase()}`;
}

/**
 * Whether `info` is a response answering the question `key` names: the inverse of
 * {@linkcode cacheKey}, whose key ends in `:TYPE:CLASS:BITS:name` (BITS one digit). For entries
 * that come back without their parse (a shared store), checked before they are trusted.
 */
export function answersKey(info: MessageInfo, key: string): boolean {
  const q = info.question;
  if ((info.flags & Flag.QR) === 0 || !q) return false;
  const nameTail = `:${q.name.toLowerCase()}`;
  if (!key.endsWith(nameTail)) return false;
  const head = key.slice(0, key.length - nameTail.length - 1); // without the bits digit
  return head.endsWith(`:${q.type}:${q.class}:`);
}
