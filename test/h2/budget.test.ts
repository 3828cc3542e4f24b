/** The token bucket that bounds RST_STREAM and SETTINGS frames over a time window. */
import { describe, expect, it } from "vitest";
import { TokenBucket } from "../../src/h2/budget.ts";

describe("TokenBucket", () => {
  it("gives `burst` tokens at once, then none until time passes", () => {
    const bucket = new TokenBucket(3, 1, 0);
    expect([1, 2, 3, 4].map(() => bucket.take(0))).toEqual([true, true, true, false]);
  });

  it("gives back `perSecond` tokens a second, never more than `burst`", () => {
    const bucket = new TokenBucket(10, 4, 0);
    for (let i = 0; i < 10; i++) bucket.take(0);
    expect(bucket.take(200)).toBe(false); // 0.8 of a token
    expect(bucket.take(250)).toBe(true); // 1 token at 250 ms
    let taken = 0;
    while (bucket.take(60_000)) taken++;
    expect(taken).toBe(10);
  });

  it("does not take a token when it refuses", () => {
    const bucket = new TokenBucket(1, 1, 0);
    bucket.take(0);
    for (let i = 0; i < 5; i++) expect(bucket.take(500)).toBe(false);
    expect(bucket.take(1_000)).toBe(true);
  });

  it("ignores a clock that goes back", () => {
    const bucket = new TokenBucket(1, 1, 10_000);
    expect(bucket.take(10_000)).toBe(true);
    expect(bucket.take(5_000)).toBe(false);
    expect(bucket.take(10_999)).toBe(false);
    expect(bucket.take(11_000)).toBe(true);
  });
});
