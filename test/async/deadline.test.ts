/** withDeadline: deadlines of one length share a queue and a timer; each still fires on time. */
import { describe, expect, it } from "vitest";
import { DeadlineError, withDeadline } from "../../src/async/deadline.ts";

const never = () => new Promise<never>(() => {});
const after = <T>(ms: number, value: T) => new Promise<T>((r) => setTimeout(() => r(value), ms));

describe("withDeadline", () => {
  it("fires each deadline about `ms` after it was set, in order, skipping settled ones", async () => {
    const t0 = performance.now();
    const firedAt: number[] = [];
    const runs = [0, 20, 40, 60].map(async (delay, i) => {
      await after(delay, null);
      // Every second one settles before its deadline.
      const work = i % 2 === 1 ? after(30, "done") : never();
      try {
        return await withDeadline(new AbortController().signal, 80, () => work);
      } catch (error) {
        expect(error).toBeInstanceOf(DeadlineError);
        firedAt.push(performance.now() - t0 - delay);
        return "timeout";
      }
    });
    expect(await Promise.all(runs)).toEqual(["timeout", "done", "timeout", "done"]);
    expect(firedAt.length).toBe(2);
    for (const ms of firedAt) {
      expect(ms).toBeGreaterThanOrEqual(79);
      expect(ms).toBeLessThan(80 + 60);
    }
  });

  it("aborts the signal it hands out, with the parent's reason or a DeadlineError", async () => {
    const parent = new AbortController();
    let seen: AbortSignal | undefined;
    const p = withDeadline(parent.signal, 10_000, (s) => {
      seen = s;
      return never();
    });
    parent.abort(new Error("client left"));
    await expect(p).rejects.toThrow("client left");
    expect(seen?.aborted).toBe(true);
    let timed: AbortSignal | undefined;
    await expect(withDeadline(new AbortController().signal, 5, (s) => {
      timed = s;
      return never();
    })).rejects.toBeInstanceOf(DeadlineError);
    expect(timed?.reason).toBeInstanceOf(DeadlineError);
  });

  it("keeps working after the lane empties and refills, with many deadlines at once", async () => {
    for (let round = 0; round < 3; round++) {
      const results = await Promise.allSettled(
        Array.from(
          { length: 2_000 },
          (_, i) =>
            withDeadline(
              new AbortController().signal,
              // Far above the 1 ms work: a loaded machine (parallel test files) must not turn
              // work that finished into a timeout.
              250,
              () => i % 3 === 0 ? never() : after(1, i),
            ),
        ),
      );
      const timedOut = results.filter((r) => r.status === "rejected").length;
      expect(timedOut).toBe(Math.ceil(2_000 / 3));
    }
  });
});
