/**
 * The in-process cache store: an LRU over a `Map`, bounded by entry count and, through a
 * {@linkcode ByteBudget} it may share with other stores, by the bytes its entries pin;
 * synchronous so a hit costs no microtask turn. Safe for concurrent use within one isolate; not
 * shared across processes.
 *
 * @module
 */
import { type BudgetSlot, ByteBudget, entryCost } from "./budget.ts";
import type { CacheEntry, CacheStore } from "./store.ts";

/** The default byte budget of a store that is given none: 64 MiB. */
export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;

/** Options of {@linkcode MemoryStore}. */
export interface MemoryStoreOptions {
  /** Most answers kept; the least recently used go first. Default 10 000. */
  maxEntries?: number;
  /**
   * The byte budget, shared with other stores (one per tenant policy) when they are given the
   * same one. Default: a budget of its own of `maxBytes`.
   */
  budget?: ByteBudget;
  /** The byte budget's size when no `budget` is given. Default {@linkcode DEFAULT_CACHE_BYTES}. */
  maxBytes?: number;
}

/** An entry, what it costs, and whether it was read since each eviction walk last passed it. */
interface Slot extends BudgetSlot {
  entry: CacheEntry;
  /** Read since the entry-count eviction last passed it (the budget's walk has `hot`). */
  used: boolean;
}

/**
 * Keeps entries in a `Map` in insertion order, evicting by "second chance" (CLOCK), an LRU
 * approximation: a hit only marks its slot used, so it costs one `Map` lookup and no reordering;
 * when the store is full, eviction walks from the oldest slot, moving used ones to the end (and
 * clearing their mark) until it finds one unused since the last pass. The byte budget evicts the
 * same way across every store on it (see {@linkcode ByteBudget}). An entry larger than the whole
 * budget is not kept. It keeps the entry objects it is given (parse included), so a hit is not
 * walked again. `keepSeconds` is not timed here: the middleware deletes an entry it finds too
 * old, and the bounds do the rest.
 *
 * @example
 * ```ts
 * const budget = new ByteBudget(64 * 1024 * 1024);
 * const store = new MemoryStore({ maxEntries: 50_000, budget });
 * const cache = cacheMiddleware({ store });
 * ```
 */
export class MemoryStore implements CacheStore {
  readonly name = "memory";
  readonly #slots = new Map<string, Slot>();
  readonly #max: number;
  readonly #budget: ByteBudget;

  constructor(options: MemoryStoreOptions = {}) {
    this.#max = options.maxEntries ?? 10_000;
    this.#budget = options.budget ?? new ByteBudget(options.maxBytes ?? DEFAULT_CACHE_BYTES);
  }

  /** Answers held. */
  get size(): number {
    return this.#slots.size;
  }

  get(key: string): CacheEntry | undefined {
    const slot = this.#slots.get(key);
    if (!slot) return undefined;
    slot.used = true;
    slot.hot = true;
    return slot.entry;
  }

  set(key: string, entry: CacheEntry): void {
    const bytes = entryCost(key, entry);
    const slot = this.#slots.get(key);
    if (!this.#budget.fits(bytes)) {
      if (slot) this.#drop(slot);
      return;
    }
    if (slot) {
      // Re-counted at its new size, out of the budget's walk while room is made for it.
      this.#budget.remove(slot);
      slot.entry = entry;
      slot.bytes = bytes;
      slot.used = true;
      slot.hot = true;
      this.#budget.add(slot);
      return;
    }
    if (this.#slots.size >= this.#max) this.#evict();
    const fresh: Slot = { key, home: this.#slots, entry, bytes, used: false, hot: false };
    this.#slots.set(key, fresh);
    this.#budget.add(fresh); // room is made among the others: `fresh` is not in the walk yet
  }

  delete(key: string): void {
    const slot = this.#slots.get(key);
    if (slot) this.#drop(slot);
  }

  /** Drops everything. */
  clear(): void {
    for (const slot of this.#slots.values()) this.#budget.remove(slot);
    this.#slots.clear();
  }

  #drop(slot: Slot): void {
    this.#slots.delete(slot.key);
    this.#budget.remove(slot);
  }

  /** Drops the oldest slot not used since the last pass; used ones get a second chance. */
  #evict(): void {
    for (const [key, slot] of this.#slots) {
      this.#slots.delete(key);
      if (!slot.used) {
        this.#budget.remove(slot);
        return;
      }
      slot.used = false;
      this.#slots.set(key, slot); // to the end: the walk meets it again only after the others
    }
  }
}
