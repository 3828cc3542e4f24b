/**
 * Two cache levels behind one {@linkcode CacheStore}: a fast local store in front (the memory
 * LRU) and a shared one behind (Redis). A front hit is answered as the front gave it, with no
 * promise and no look at the back. A front miss asks the back (which bounds its own wait); an
 * entry it finds is checked here (it parses as a response answering its key's question) and
 * then kept in front with its parse, so the next hit is a plain front hit; a bad one is deleted
 * from the back. Writes go to both; the back's write is not waited for.
 *
 * @module
 */
import { answerOf } from "../dns/answer.ts";
import type { MessageInfo } from "../dns/message.ts";
import {
  answersKey,
  type CacheEntry,
  type CacheStore,
  isPromise,
  type MaybePromise,
} from "./store.ts";

/**
 * The entry in `entry`'s bytes with its parse, or `undefined` if it does not parse or does not
 * answer `key`'s question.
 */
export function checkedEntry(key: string, entry: CacheEntry): CacheEntry | undefined {
  let info: MessageInfo;
  try {
    info = answerOf(entry.wire).info;
  } catch {
    return undefined;
  }
  if (!answersKey(info, key)) return undefined;
  return { wire: entry.wire, info, storedAt: entry.storedAt, expiresAt: entry.expiresAt };
}

/**
 * A front store over a back store. A fresh front entry is answered as is (one clock read, no
 * promise); an expired one is checked against the back, which another bridge may have refreshed.
 *
 * @example
 * ```ts
 * const store = new TieredStore(new MemoryStore({ maxEntries }), redisStore);
 * const cache = cacheMiddleware({ store });
 * ```
 */
export class TieredStore implements CacheStore {
  readonly name: string;
  readonly #front: CacheStore;
  readonly #back: CacheStore;
  readonly #now: () => number;

  /** `now` must be the cache middleware's clock (ms). Default `Date.now`. */
  constructor(front: CacheStore, back: CacheStore, now: () => number = Date.now) {
    this.#front = front;
    this.#back = back;
    this.#now = now;
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

  /** A back entry checked (dropped if bad) and kept in front. */
  #promote(key: string, entry: CacheEntry): CacheEntry | undefined {
    const checked = entry.info ? entry : checkedEntry(key, entry);
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
