/**
 * Bodies waiting for the peer's window: the parked-bytes cap, the count kept right as bodies
 * are resent, parked again and dropped, and the stalls the read deadline looks at.
 */
import { describe, expect, it } from "vitest";
import { ParkedBodies, type ParkedStream } from "../../src/h2/parked.ts";

const stream = (): ParkedStream => ({ pending: undefined, stalledSince: 0 });
const bytes = (n: number) => new Uint8Array(n);

describe("ParkedBodies", () => {
  it("keeps bodies up to the cap and refuses one that would pass it, keeping nothing of it", () => {
    const parked = new ParkedBodies(100);
    const [a, b, c] = [stream(), stream(), stream()];
    expect(parked.park(a, bytes(60), 5)).toBe(true);
    expect(parked.park(b, bytes(41), 6)).toBe(false);
    expect(b.pending).toBeUndefined();
    expect(b.stalledSince).toBe(0);
    expect(parked.park(c, bytes(40), 7)).toBe(true); // exactly the cap
    expect([parked.bytes, parked.size]).toEqual([100, 2]);
    expect(a.stalledSince).toBe(5);
  });

  it("takes a body out of the count while it is resent, and counts what is parked again", () => {
    const parked = new ParkedBodies(100);
    const a = stream();
    parked.park(a, bytes(60), 5);
    expect(parked.resume(a)).toBe(5); // when it began waiting
    expect([parked.bytes, a.stalledSince]).toEqual([0, 0]);
    parked.park(a, bytes(20), 9); // the rest
    expect([parked.bytes, parked.size]).toEqual([20, 1]); // listed once
    expect(parked.resume(stream())).toBe(0); // one that was not waiting
  });

  it("drops a body for good, whether it was waiting or being resent", () => {
    const parked = new ParkedBodies(100);
    const [a, b] = [stream(), stream()];
    parked.park(a, bytes(30), 5);
    parked.park(b, bytes(30), 5);
    parked.unpark(a);
    expect([parked.bytes, parked.size, a.pending]).toEqual([30, 1, undefined]);
    parked.resume(b);
    parked.unpark(b); // taken out of the count already: not twice
    expect([parked.bytes, parked.size]).toEqual([0, 0]);
  });

  it("hands over the waiting streams once, emptying the list", () => {
    const parked = new ParkedBodies(100);
    const [a, b] = [stream(), stream()];
    parked.park(a, bytes(1), 5);
    parked.park(b, bytes(1), 6);
    expect(parked.takeAll()).toEqual([a, b]);
    expect(parked.size).toBe(0);
    expect(parked.takeAll()).toEqual([]);
  });

  it("reports the longest stall, and the bodies stalled for a deadline or more", () => {
    const parked = new ParkedBodies(100);
    expect(parked.earliestStall()).toBe(Infinity);
    const [a, b, c] = [stream(), stream(), stream()];
    parked.park(a, bytes(1), 300);
    parked.park(b, bytes(1), 100);
    parked.park(c, bytes(1), 200);
    expect(parked.earliestStall()).toBe(100);
    expect(parked.stalled(1_200, 1_000)).toEqual([b, c]);
    expect(parked.stalled(1_099, 1_000)).toEqual([]);
  });
});
