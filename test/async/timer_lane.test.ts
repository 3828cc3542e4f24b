/** TimerLane: many timers of one length on one setTimeout, none held while nothing is pending. */
import { describe, expect, it } from "vitest";
import { TimerLane } from "../../src/async/timer_lane.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("TimerLane", () => {
  it("runs entries in the order they were added, skipping cancelled ones", async () => {
    const lane = new TimerLane(20);
    const fired: number[] = [];
    const entries = [0, 1, 2, 3].map((i) => lane.add(() => fired.push(i)));
    lane.cancel(entries[1]);
    lane.cancel(entries[1]); // twice is harmless
    await sleep(80);
    expect(fired).toEqual([0, 2, 3]);
  });

  it("lets a callback add to its own lane, and fires nothing after the last entry is cancelled", async () => {
    const lane = new TimerLane(10);
    const fired: string[] = [];
    lane.add(() => {
      fired.push("first");
      lane.add(() => fired.push("second"));
    });
    await sleep(60);
    expect(fired).toEqual(["first", "second"]);
    const entry = lane.add(() => fired.push("never"));
    lane.cancel(entry);
    await sleep(30);
    expect(fired).toEqual(["first", "second"]);
  });
});
