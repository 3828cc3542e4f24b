/**
 * A byte budget for memory caches: what the entries of one or more {@linkcode MemoryStore}s
 * (one per tenant policy) pin together, and, when a new entry would take it over the budget, the
 * least recently used entry of any of them goes first. So the process's answer cache is bounded in
 * bytes whatever the answers' sizes and however many tenants there are; `--cache-size` still
 * bounds each policy's count.
 *
 * An entry's cost is what it really pins: the buffer under its answer bytes (all of it, should the
 * bytes be a view into a larger one), its key, and a fixed estimate of the objects around them
 * ({@linkcode ENTRY_OVERHEAD_BYTES}).
 *
 * @module
 */
import type { CacheEntry } from "./store.ts";

/**
 * Bytes an entry pins besides its answer's buffer and its key: the entry, its parse (the message
 * info, question and OPT objects), the typed array and its backing store's bookkeeping, and the
 * store's slot and map entry. Measured with `scripts/cache_memory.ts --entry-overhead` (the heap
 * and external memory 100 000 small entries release, Deno 2.9.6): ~720 bytes for an answer with
 * an OPT record (most: queries go upstream with one), ~630 without.
 */
export const ENTRY_OVERHEAD_BYTES = 720;

/**
 * The bytes `entry` under `key` pins (an estimate: see {@linkcode ENTRY_OVERHEAD_BYTES}).
 *
 * @example
 * ```ts
 * entryCost("dotbridge:v2::1:1:0::example.com", entry); // wire buffer + 35 + 720
 * ```
 */
export function entryCost(key: string, entry: CacheEntry): number {
  return entry.wire.buffer.byteLength + key.length + ENTRY_OVERHEAD_BYTES;
}

/**
 * One entry as the budget sees it. The store that made it owns `home` (its map) and `key`; the
 * budget removes the slot from there when it evicts it.
 */
export interface BudgetSlot {
  readonly key: string;
  /** The map the slot lives in, under `key`. */
  readonly home: Map<string, BudgetSlot>;
  /** What it costs (set by the store before {@linkcode ByteBudget.add}). */
  bytes: number;
  /** Read since the budget's eviction last passed it. */
  hot: boolean;
}

/**
 * A byte budget shared by the memory stores of one process (or one thread). Eviction is "second
 * chance" (CLOCK) in the order entries were added, across every store on the budget: a read only
 * marks an entry hot; when room is needed, the walk from the oldest entry moves hot ones to the
 * end (cooling them) and evicts the first cold one. Not safe across threads (each has its own).
 *
 * @example
 * ```ts
 * const budget = new ByteBudget(64 * 1024 * 1024);
 * const storeFor = () => new MemoryStore({ maxEntries: 10_000, budget });
 * ```
 */
export class ByteBudget {
  /** The most bytes the entries may pin together. */
  readonly maxBytes: number;
  readonly #order = new Set<BudgetSlot>();
  #used = 0;

  constructor(maxBytes: number) {
    if (!(maxBytes > 0)) throw new RangeError(`a cache byte budget must be positive: ${maxBytes}`);
    this.maxBytes = maxBytes;
  }

  /** Bytes the entries pin now. */
  get usedBytes(): number {
    return this.#used;
  }

  /** Entries held, across every store. */
  get entries(): number {
    return this.#order.size;
  }

  /** Whether an entry of `bytes` can be held at all (it is not larger than the whole budget). */
  fits(bytes: number): boolean {
    return bytes <= this.maxBytes;
  }

  /**
   * Makes room for `slot` (evicting cold entries of any store) and counts it. The slot must
   * already be in its home map, and must fit ({@linkcode fits}).
   */
  add(slot: BudgetSlot): void {
    while (this.#used + slot.bytes > this.maxBytes && this.#order.size > 0) this.#evictOne();
    this.#order.add(slot);
    this.#used += slot.bytes;
  }

  /** Stops counting `slot` (its store dropped it). */
  remove(slot: BudgetSlot): void {
    if (this.#order.delete(slot)) this.#used -= slot.bytes;
  }

  /** Evicts the oldest entry not read since the walk last passed it. */
  #evictOne(): void {
    for (const slot of this.#order) {
      this.#order.delete(slot);
      if (slot.hot) {
        slot.hot = false;
        this.#order.add(slot); // to the end: met again only after the others
        continue;
      }
      this.#used -= slot.bytes;
      if (slot.home.get(slot.key) === slot) slot.home.delete(slot.key);
      return;
    }
  }
}
