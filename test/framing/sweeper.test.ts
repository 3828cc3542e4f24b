import { afterEach, describe, expect, it, vi } from "vitest";
import { Sweeper, tickFor } from "../../src/framing/sweeper.ts";

afterEach(() => {
  vi.useRealTimers();
});

describe("Sweeper", () => {
  it("checks every member each tick and drops those that ended", async () => {
    vi.useFakeTimers();
    const sweeper = new Sweeper(100);
    const seen: string[] = [];
    let bLeft = 2;
    sweeper.add({ sweep: () => (seen.push("a"), true) });
    sweeper.add({ sweep: () => (seen.push("b"), --bLeft > 0) });
    await vi.advanceTimersByTimeAsync(99);
    expect(seen).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen).toEqual(["a", "b"]);
    await vi.advanceTimersByTimeAsync(200);
    expect(seen).toEqual(["a", "b", "a", "b", "a"]);
    expect(sweeper.size).toBe(1);
  });

  it("keeps no timer once it has no members, and starts again with the next", async () => {
    vi.useFakeTimers();
    const sweeper = new Sweeper(50);
    const member = { sweep: () => true };
    sweeper.add(member);
    expect(vi.getTimerCount()).toBe(1);
    sweeper.delete(member);
    await vi.advanceTimersByTimeAsync(50);
    expect(vi.getTimerCount()).toBe(0);
    let swept = 0;
    sweeper.add({ sweep: () => (swept++, false) });
    await vi.advanceTimersByTimeAsync(50);
    expect(swept).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("ticks at a tenth of the shortest deadline, between 5 ms and 1 s", () => {
    expect(tickFor(10_000, 5_000)).toBe(500);
    expect(tickFor(50, 10_000)).toBe(5);
    expect(tickFor(20)).toBe(5);
    expect(tickFor(600_000, 60_000)).toBe(1_000);
  });
});
