/**
 * The memory store's bounds: entries per store, and bytes across every store on one budget (what
 * an entry pins, evicted least recently used first across tenants).
 */
import { describe, expect, it } from "vitest";
import { ByteBudget, ENTRY_OVERHEAD_BYTES, entryCost } from "../../src/cache/budget.ts";
import { MemoryStore } from "../../src/cache/memory.ts";
import type { CacheEntry } from "../../src/cache/store.ts";

/** An entry whose answer buffer has `bytes` bytes. */
function entry(bytes: number): CacheEntry {
  return { wire: new Uint8Array(bytes), storedAt: 0, expiresAt: 1 };
}

/** The cost of `entry(bytes)` under a one-character key. */
const cost = (bytes: number) => bytes + 1 + ENTRY_OVERHEAD_BYTES;

describe("entryCost", () => {
  it("counts the whole buffer under the answer, the key and the fixed overhead", () => {
    const wire = new Uint8Array(10_000).subarray(0, 100); // a view pins all 10 000 bytes
    expect(entryCost("key", { wire, storedAt: 0, expiresAt: 1 })).toBe(
      10_000 + 3 + ENTRY_OVERHEAD_BYTES,
    );
  });
});

describe("MemoryStore byte budget", () => {
  it("keeps what fits, and counts what it holds", () => {
    const budget = new ByteBudget(cost(1_000) * 3);
    const store = new MemoryStore({ budget });
    for (const k of ["a", "b", "c"]) store.set(k, entry(1_000));
    expect(store.size).toBe(3);
    expect(budget.usedBytes).toBe(cost(1_000) * 3);
    store.delete("b");
    expect(budget.usedBytes).toBe(cost(1_000) * 2);
    store.clear();
    expect(budget.usedBytes).toBe(0);
    expect(budget.entries).toBe(0);
  });

  it("evicts the oldest entry not read since, until the new one fits", () => {
    const budget = new ByteBudget(cost(1_000) * 3);
    const store = new MemoryStore({ budget });
    for (const k of ["a", "b", "c"]) store.set(k, entry(1_000));
    store.get("a"); // read: a second chance
    store.set("d", entry(1_000));
    expect(["a", "b", "c", "d"].filter((k) => store.get(k))).toEqual(["a", "c", "d"]);
    store.set("e", entry(2_500)); // needs the room of three
    expect(store.get("e")).toBeDefined();
    expect(budget.usedBytes).toBeLessThanOrEqual(budget.maxBytes);
  });

  it("evicts across the stores on one budget (tenants), least recently used first", () => {
    const two = cost(1_000) + 1; // keys of two characters
    const budget = new ByteBudget(two * 4);
    const kids = new MemoryStore({ budget });
    const work = new MemoryStore({ budget });
    kids.set("k1", entry(1_000));
    work.set("w1", entry(1_000));
    kids.set("k2", entry(1_000));
    work.set("w2", entry(1_000));
    kids.get("k1");
    work.set("w3", entry(1_000)); // w1 is the oldest not read since
    expect(work.get("w1")).toBeUndefined();
    expect(kids.size + work.size).toBe(4);
    work.set("w4", entry(1_000)); // k1 was read, so k2 goes next
    expect(kids.get("k2")).toBeUndefined();
    expect(kids.get("k1")).toBeDefined();
    expect(budget.usedBytes).toBe(two * 4);
  });

  it("does not keep an entry larger than the whole budget, and drops the one it replaced", () => {
    const budget = new ByteBudget(cost(1_000) * 2);
    const store = new MemoryStore({ budget });
    store.set("a", entry(1_000));
    store.set("a", entry(10_000));
    expect(store.get("a")).toBeUndefined();
    expect(budget.usedBytes).toBe(0);
  });

  it("re-counts a replaced entry at its new size", () => {
    const budget = new ByteBudget(cost(1_000) * 3);
    const store = new MemoryStore({ budget });
    store.set("a", entry(1_000));
    store.set("b", entry(1_000));
    store.set("a", entry(2_000)); // grows: b (not read) makes room
    expect(store.get("a")!.wire.length).toBe(2_000);
    expect(budget.usedBytes).toBe(cost(2_000) + cost(1_000));
    store.set("a", entry(10));
    expect(budget.usedBytes).toBe(cost(10) + cost(1_000));
  });

  it("keeps the entry count bound per store and the byte count in step", () => {
    const budget = new ByteBudget(1_000_000);
    const store = new MemoryStore({ maxEntries: 2, budget });
    for (const k of ["a", "b", "c"]) store.set(k, entry(100));
    expect(store.size).toBe(2);
    expect(budget.entries).toBe(2);
    expect(budget.usedBytes).toBe(cost(100) * 2);
  });

  it("holds 1000 answers of 60 KB in a 16 MiB budget to no more than 16 MiB", () => {
    const budget = new ByteBudget(16 * 1024 * 1024);
    const store = new MemoryStore({ maxEntries: 1_000, budget });
    for (let i = 0; i < 1_000; i++) store.set(`k${i}`, entry(60_000));
    expect(budget.usedBytes).toBeLessThanOrEqual(16 * 1024 * 1024);
    expect(store.size).toBe(Math.floor(16 * 1024 * 1024 / (60_000 + 4 + ENTRY_OVERHEAD_BYTES)));
    expect(store.get("k999")).toBeDefined();
  });

  it("has a budget of its own by default (64 MiB)", () => {
    const store = new MemoryStore();
    store.set("big", entry(65_000));
    expect(store.get("big")).toBeDefined();
    const small = new MemoryStore({ maxBytes: cost(100) });
    small.set("a", entry(100));
    small.set("b", entry(100));
    expect(small.size).toBe(1);
  });
});
