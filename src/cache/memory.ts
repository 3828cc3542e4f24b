/**
 * The in-process cache store: a size-bounded LRU over a `Map`, synchronous so a hit costs no
 * microtask turn. Safe for concurrent use within one isolate; not shared across processes.
 *
 * @module
 */
import type { CacheEntry, CacheStore } from "./store.ts";

/** Options of {@linkcode MemoryStore}. */
export interface MemoryStoreOptions {
  /** Most answers kept; the least recently used go first. Default 10 000. */
  maxEntries?: number;
}

/**
 * Keeps entries in a `Map` whose order is the LRU order. It keeps the entry objects it is given
 * (parse included), so a hit is not walked again. `keepSeconds` is not timed here: the
 * middleware deletes an entry it finds too old, and the size bound does the rest.
 *
 * @example
 * ```ts
 * const store = new MemoryStore({ maxEntries: 50_000 });
 * const cache = cacheMiddleware({ store });
 * ```
 */
export class MemoryStore implements CacheStore {
  readonly name = "memory";
  readonly #entries = new Map<string, CacheEntry>();
  readonly #max: number;

  constructor(options: MemoryStoreOptions = {}) {
    this.#max = options.maxEntries ?? 10_000;
  }

  /** Answers held. */
  get size(): number {
    return this.#entries.size;
  }

  get(key: string): CacheEntry | undefined {
    const entry = this.#entries.get(key);
    if (entry) {
      this.#entries.delete(key); // re-insert: Map order is the LRU order
      this.#entries.set(key, entry);
    }
    return entry;
  }

  set(key: string, entry: CacheEntry): void {
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    if (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value!);
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** Drops everything. */
  clear(): void {
    this.#entries.clear();
  }
}
