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

/** An entry and whether it was read since eviction last passed it. */
interface Slot {
  entry: CacheEntry;
  used: boolean;
}

/**
 * Keeps entries in a `Map` in insertion order, evicting by "second chance" (CLOCK), an LRU
 * approximation: a hit only marks its slot used, so it costs one `Map` lookup and no reordering;
 * when the store is full, eviction walks from the oldest slot, moving used ones to the end (and
 * clearing their mark) until it finds one unused since the last pass. It keeps the entry objects
 * it is given (parse included), so a hit is not walked again. `keepSeconds` is not timed here:
 * the middleware deletes an entry it finds too old, and the size bound does the rest.
 *
 * @example
 * ```ts
 * const store = new MemoryStore({ maxEntries: 50_000 });
 * const cache = cacheMiddleware({ store });
 * ```
 */
export class MemoryStore implements CacheStore {
  readonly name = "memory";
  readonly #slots = new Map<string, Slot>();
  readonly #max: number;

  constructor(options: MemoryStoreOptions = {}) {
    this.#max = options.maxEntries ?? 10_000;
  }

  /** Answers held. */
  get size(): number {
    return this.#slots.size;
  }

  get(key: string): CacheEntry | undefined {
    const slot = this.#slots.get(key);
    if (!slot) return undefined;
    slot.used = true;
    return slot.entry;
  }

  set(key: string, entry: CacheEntry): void {
    const slot = this.#slots.get(key);
    if (slot) {
      slot.entry = entry;
      slot.used = true;
      return;
    }
    if (this.#slots.size >= this.#max) this.#evict();
    this.#slots.set(key, { entry, used: false });
  }

  delete(key: string): void {
    this.#slots.delete(key);
  }

  /** Drops everything. */
  clear(): void {
    this.#slots.clear();
  }

  /** Drops the oldest slot not used since the last pass; used ones get a second chance. */
  #evict(): void {
    for (const [key, slot] of this.#slots) {
      this.#slots.delete(key);
      if (!slot.used) return;
      slot.used = false;
      this.#slots.set(key, slot); // to the end: the walk meets it again only after the others
    }
  }
}
