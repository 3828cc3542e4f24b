/**
 * The member health every group keeps: cool-downs on a clock, changes reported once each, the
 * order healthy-first, and the listing.
 */
import { describe, expect, it } from "vitest";
import { type HealthListener, MemberHealthBook } from "../../src/upstream/health.ts";
import type { Upstream } from "../../src/upstream/types.ts";

/** An upstream that is only a name: the book never calls it. */
function named(name: string): Upstream {
  return {
    name,
    exchange: () => Promise.reject(new Error("not called")),
    close: () => Promise.resolve(),
  };
}

/** A book over members a, b, c with a clock the test moves, and the reports it made. */
function book(cooldownMs?: number) {
  let now = 1_000;
  const reports: [string, boolean, unknown?][] = [];
  const onHealthChange: HealthListener = (member, healthy, error) =>
    reports.push(error === undefined ? [member, healthy] : [member, healthy, error]);
  const b = new MemberHealthBook(
    ["a", "b", "c"].map(named),
    { cooldownMs, onHealthChange },
    () => now,
  );
  const [a, bee, c] = b.members;
  return { b, a, bee, c, reports, advance: (ms: number) => void (now += ms), now: () => now };
}

const names = (ms: { upstream: Upstream }[]) => ms.map((m) => m.upstream.name);

describe("MemberHealthBook", () => {
  it("starts with every member healthy, in the order given", () => {
    const { b } = book();
    expect(b.states()).toEqual([
      { name: "a", healthy: true },
      { name: "b", healthy: true },
      { name: "c", healthy: true },
    ]);
    expect(names(b.split().healthy)).toEqual(["a", "b", "c"]);
    expect(b.split().down).toEqual([]);
  });

  it("passes a failed member over for the cool-down, then has it back", () => {
    const { b, bee, advance } = book(5_000);
    b.failed(bee, new Error("refused"));
    expect(bee.downUntil).toBe(6_000);
    expect(b.states()[1]).toEqual({ name: "b", healthy: false });
    expect(names(b.split().healthy)).toEqual(["a", "c"]);
    advance(4_999);
    expect(b.isHealthy(bee)).toBe(false);
    advance(1);
    expect(b.isHealthy(bee)).toBe(true);
    expect(names(b.split().healthy)).toEqual(["a", "b", "c"]);
  });

  it("cools a member down for 30 s by default", () => {
    const { b, a } = book();
    b.failed(a, new Error("x"));
    expect(a.downUntil).toBe(31_000);
  });

  it("orders members cooling down soonest recovery first", () => {
    const { b, a, bee, c, advance } = book(10_000);
    b.failed(c, "first");
    advance(1_000);
    b.failed(a, "second");
    advance(1_000);
    b.failed(bee, "third");
    expect(names(b.split().down)).toEqual(["c", "a", "b"]);
    expect(b.split().healthy).toEqual([]);
  });

  it("reports down once, with the error, and back once, whatever happens in between", () => {
    const { b, a, reports, advance } = book(1_000);
    const refused = new Error("refused");
    b.failed(a, refused);
    b.failed(a, new Error("again"));
    advance(2_000); // the cool-down lapses; still not reported back
    expect(b.isHealthy(a)).toBe(true);
    b.failed(a, new Error("and again"));
    expect(reports).toEqual([["a", false, refused]]);

    expect(b.succeeded(a)).toBe(true); // a recovery
    expect(a.downUntil).toBe(0);
    expect(b.succeeded(a)).toBe(false);
    expect(reports).toEqual([["a", false, refused], ["a", true]]);
  });

  it("ends a cool-down at once when the member answers", () => {
    const { b, c } = book(60_000);
    b.failed(c, "down");
    expect(b.isHealthy(c)).toBe(false);
    b.succeeded(c);
    expect(b.isHealthy(c)).toBe(true);
  });

  it("tells the health at a given time", () => {
    const { b, a, now } = book(100);
    b.failed(a, "x");
    expect(b.isHealthy(a, now() + 99)).toBe(false);
    expect(b.isHealthy(a, now() + 100)).toBe(true);
  });
});
