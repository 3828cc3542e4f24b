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
 * - **Keys** are {@linkcode cacheKey} strings: a version and namespace prefix (`dotbridge:v2:`),
 *   then the tenant, the question type and class, the DO and CD bits, the client subnet (only
 *   when EDNS Client Subnet is forwarded upstream, so the answer may depend on it), and the
 *   question name lower-cased (last, so a name holding `:` is still unambiguous);
 *   {@linkcode parseCacheKey} reads one back exactly. A store shared between bridges or tenants
 *   may use them as they are; one that needs another alphabet (a URL) must encode them
 *   one-to-one. A change of key or entry layout changes the version.
 * - **Sync or async.** `get` and `set` may return a value or a promise. The middleware awaits
 *   only a promise, so a synchronous store (the memory LRU) answers a hit without a microtask
 *   turn; an asynchronous store (the Cache API, Redis) costs its round trip on every lookup.
 *   `set` is awaited on a miss before the flight settles; a store should bound its own writes.
 *   A store never rejects on a lookup it cannot do: it answers `undefined` (a miss).
 * - **Trust.** An entry that carries `info` (the parse) is taken as is: only a store that keeps
 *   objects in this process (the memory LRU) may return one, and only the one it was given. An
 *   entry of bytes only is checked once on the way out (`trust.ts`): it must parse as a response
 *   the cache would have kept, answering exactly the question its key names; its times are
 *   clamped (stored no later than now, fresh for at most the cache's longest TTL) and its record
 *   TTLs capped to that lifetime. One that fails is deleted and counts as a miss. The two-level
 *   store (`tiered.ts`) makes the same check on what its back store (Redis) returns, before
 *   keeping it in front with its parse. A shared store binds each value to its key itself (and
 *   signs it, given a secret: `redis.ts`), since only it knows who else can write there.
 * - **Concurrency.** Calls for the same key may overlap; the last `set` wins.
 *
 * @module
 */
import { EDNS_DO, EdnsOptionCode, Flag } from "../dns/constants.ts";
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
export const CACHE_KEY_PREFIX = "dotbridge:v2:";

/**
 * The cache key of a query: tenant, question type and class, DO and CD bits, client subnet (see
 * {@linkcode clientSubnetKey}; empty when the answer does not depend on it), name lower-cased.
 *
 * @example
 * ```ts
 * cacheKey(query, "kids"); // "dotbridge:v2:kids:1:1:0::www.example.com"
 * cacheKey(query, "", "1/24/c00002"); // "dotbridge:v2::1:1:0:1/24/c00002:www.example.com"
 * ```
 */
export function cacheKey(query: Query, tenant = "", subnet = ""): string {
  const q = query.question;
  const doBit = query.info.opt && (query.info.opt.ttl & EDNS_DO) ? 1 : 0;
  const cdBit = query.info.flags & Flag.CD ? 2 : 0;
  return `${CACHE_KEY_PREFIX}${tenant}:${q.type}:${q.class}:${
    doBit | cdBit
  }:${subnet}:${q.name.toLowerCase()}`;
}

/**
 * The subnet part of the key of a query whose EDNS Client Subnet option goes upstream (so the
 * answer may be for that subnet): `FAMILY/SOURCE-PREFIX/ADDRESS` with the address bytes in hex,
 * cut to the prefix (RFC 7871 §6), e.g. `1/24/c00002` for 192.0.2.0/24. `""` for a query
 * without the option; `undefined` for one the cache should not keep: more than one option, an
 * unknown family, a prefix too long for it, or an address of the wrong length.
 *
 * @example
 * ```ts
 * const subnet = keepClientSubnet ? clientSubnetKey(query.info) : "";
 * if (subnet === undefined) return next(query, ctx); // not cached
 * ```
 */
export function clientSubnetKey(info: MessageInfo): string | undefined {
  let found: Uint8Array | undefined;
  for (const o of info.opt?.options ?? []) {
    if (o.code !== EdnsOptionCode.CLIENT_SUBNET) continue;
    if (found) return undefined;
    found = o.data;
  }
  if (!found) return "";
  if (found.length < 4) return undefined;
  const family = (found[0] << 8) | found[1];
  const source = found[2];
  const bits = family === 1 ? 32 : family === 2 ? 128 : 0;
  if (bits === 0 || source > bits) return undefined;
  const address = found.subarray(4);
  if (address.length !== Math.ceil(source / 8)) return undefined;
  const cut = new Uint8Array(address);
  if (source % 8 !== 0) cut[cut.length - 1] &= 0xff << (8 - source % 8);
  return `${family}/${source}/${cut.toHex()}`;
}

/** What a {@linkcode cacheKey} names, read back by {@linkcode parseCacheKey}. */
export interface CacheKeyParts {
  readonly tenant: string;
  readonly type: number;
  readonly class: number;
  /** DO (1) and CD (2). */
  readonly bits: number;
  /** The client subnet part (`""`: none). */
  readonly subnet: string;
  /** The question name, lower-cased. */
  readonly name: string;
}

const KEY_SHAPE = new RegExp(
  `^${CACHE_KEY_PREFIX}([^:]*):(0|[1-9]\\d{0,4}):(0|[1-9]\\d{0,4}):([0-3]):` +
    "((?:[12]/\\d{1,3}/(?:[0-9a-f]{2})*)?):(.*)$",
  "s",
);

/**
 * The parts of a key {@linkcode cacheKey} made, or `undefined` for any other string: the exact
 * grammar, not a match by suffix (a name may hold `:`, so only its position tells it apart).
 */
export function parseCacheKey(key: string): CacheKeyParts | undefined {
  const m = KEY_SHAPE.exec(key);
  if (!m) return undefined;
  const type = Number(m[2]);
  const klass = Number(m[3]);
  if (type > 0xffff || klass > 0xffff || m[6] !== m[6].toLowerCase()) return undefined;
  return { tenant: m[1], type, class: klass, bits: Number(m[4]), subnet: m[5], name: m[6] };
}

/**
 * Whether `info` is a response answering exactly the question `key` names (its type, class and
 * name; the name compared case-insensitively). For entries that come back without their parse.
 * The tenant, DO/CD bits and subnet in the key are not in the answer: a store binds its values
 * to their keys for those (the Redis store keeps the key in the value and can sign both).
 */
export function answersKey(info: MessageInfo, key: string): boolean {
  const q = info.question;
  if ((info.flags & Flag.QR) === 0 || !q || info.qdcount !== 1) return false;
  const parts = parseCacheKey(key);
  return parts !== undefined && parts.type === q.type && parts.class === q.class &&
    parts.name === q.name.toLowerCase();
}
