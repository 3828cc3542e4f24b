/**
 * Two cache levels behind one {@linkcode CacheStore}: a fast local store in front (the memory
 * LRU) and a shared one behind (Redis). A front hit is answered as the front gave it, with no
 * promise and no look at the back. A front miss asks the back (which bounds its own wait); an
 * entry it finds is checked here (`trust.ts`: a response answering its key's question, times
 * clamped, TTLs capped) and then kept in front with its parse, so the next hit is a plain front
 * hit, and it leaves the front by the cache's longest TTL at the latest, whatever the back said; a
 * bad one is deleted from the back. Writes go to both; the back's write is not waited for.
 *
 * @module
 */
import { type CacheEntry, type CacheStore, isPromise, type MaybePromise } from "./store.ts";
import { checkedEntry } from "./trust.ts";

/** Options of {@linkcode TieredStore}. */
export interface TieredStoreOptions {
  /** The cache middleware's clock (ms). Default `Date.now`. */
  now?: () => number;
  /** The longest a back entry stays fresh (ms): the middleware's `maxTtl`. Default 86 400 000. */
  maxTtlMs?: number;
}

/**
 * A front store over a back store. A fresh front entry is answered as is (one clock read, no
 * promise); an expired one is checked against the back, which another bridge may have refreshed.
 *
 * @example
 * ```ts
 * const store = new TieredStore(new MemoryStore({ budget }), redisStore, { maxTtlMs });
 * const cache = cacheMiddleware({ store, maxTtl: maxTtlMs / 1000 });
 * ```
 */
export class TieredStore implements CacheStore {
  readonly name: string;
  readonly #front: CacheStore;
  readonly #back: CacheStore;
  readonly #now: () => number;
  readonly #maxTtlMs: number;

  constructor(front: CacheStore, back: CacheStore, options: TieredStoreOptions = {}) {
    this.#front = front;
    this.#back = back;
    this.#now = options.now ?? Date.now;
    this.#maxTtlMs = options.maxTtlMs ?? 86_400_000;
    this.name = `${front.name}+${back.name}`;
  }

  get(key: string): MaybePromise<CacheEntry | undefined> {
    const near = this.#front.get(key);
    if (!isPromise(near)) return this.#after(key, near);
    return near.then((e) => this.#after(key, e));
  }

  /** The front's answer, or the back's when the front has none or only an expired one. */
  #after(key: string, near: CacheEntry | undefined): MaybePromise<CacheEntry | undefined> {
    if (!near) return this.#fromBack(key);
    if (near.expiresAt > this.#now()) return near;
    // Expired here; another bridge may have refreshed it since. The older one stays usable for
    // serve-stale (the middleware decides).
    const far = this.#fromBack(key);
    const pick = (e: CacheEntry | undefined) => e && e.expiresAt > near.expiresAt ? e : near;
    return isPromise(far) ? far.then(pick) : pick(far);
  }

  #fromBack(key: string): MaybePromise<CacheEntry | undefined> {
    let far: MaybePromise<CacheEntry | undefined>;
    try {
      far = this.#back.get(key);
    } catch {
      return undefined;
    }
    if (!isPromise(far)) return far && this.#promote(key, far);
    return far.then((e) => e && this.#promote(key, e), () => undefined);
  }

  /** A back entry checked and clamped (dropped if bad), and kept in front. */
  #promote(key: string, entry: CacheEntry): CacheEntry | undefined {
    const checked = checkedEntry(key, entry, { now: this.#now(), maxTtlMs: this.#maxTtlMs });
    if (!checked) {
      this.#quietly(() => this.#back.delete(key));
      return undefined;
    }
    const keepSeconds = Math.max(0, (checked.expiresAt - checked.storedAt) / 1000);
    this.#quietly(() => this.#front.set(key, checked, keepSeconds));
    return checked;
  }

  set(key: string, entry: CacheEntry, keepSeconds: number): MaybePromise<void> {
    this.#quietly(() => this.#back.set(key, entry, keepSeconds));
    return this.#front.set(key, entry, keepSeconds);
  }

  /**
   * Forgets `key` in front only. The middleware deletes what it finds too old (a bad entry never
   * reaches it: back entries are checked here, front ones carry their parse), and an entry too
   * old in this memory may have been refreshed in Redis by another bridge since; Redis expires
   * entries itself.
   */
  delete(key: string): MaybePromise<void> {
    return this.#front.delete(key);
  }

  /** Runs a store call whose outcome nobody waits for. */
  #quietly(call: () => MaybePromise<void>): void {
    try {
      const done = call();
      if (isPromise(done)) done.catch(() => {});
    } catch {
      // Losing an entry is allowed.
    }
  }
}
