/**
 * withDeadline: deadlines of one length share a queue and a timer; each still fires on time.
 * withLazyDeadline: the signal and the watch on the parent are made only when asked for.
 */
import { describe, expect, it } from "vitest";
import { DeadlineError, withDeadline, withLazyDeadline } from "../../src/async/deadline.ts";

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
      // Late only by the event loop's delay: generous, as the machine may be busy (CI).
      expect(ms).toBeLessThan(80 + 500);
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

describe("withLazyDeadline", () => {
  /** A parent that offers watch/unwatch, like a DoT connection's context. */
  function watchedParent() {
    const watchers = new Set<(reason: unknown) => void>();
    return {
      watchers,
      get signal(): AbortSignal {
        throw new Error("the signal must not be read when watch is offered");
      },
      watch: (fn: (reason: unknown) => void) => void watchers.add(fn),
      unwatch: (fn: (reason: unknown) => void) => void watchers.delete(fn),
      close: (reason: unknown) => [...watchers].forEach((fn) => fn(reason)),
    };
  }

  it("watches the parent only once the signal is asked for, and stops when done", async () => {
    const parent = watchedParent();
    expect(await withLazyDeadline(parent, 1_000, () => Promise.resolve(1))).toBe(1);
    expect(parent.watchers.size).toBe(0);
    let seen: AbortSignal | undefined;
    const answer = withLazyDeadline(parent, 1_000, (signal) => {
      seen = signal();
      expect(parent.watchers.size).toBe(1);
      return Promise.resolve(2);
    });
    expect(await answer).toBe(2);
    expect(seen?.aborted).toBe(false);
    expect(parent.watchers.size).toBe(0);
  });

  it("rejects and aborts the signal when a watched parent aborts", async () => {
    const parent = watchedParent();
    let seen: AbortSignal | undefined;
    const answer = withLazyDeadline(parent, 1_000, (signal) => {
      seen = signal();
      return new Promise<never>(() => {});
    });
    const reason = new Error("connection closed: peer-closed");
    parent.close(reason);
    await expect(answer).rejects.toBe(reason);
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBe(reason);
  });

  it("follows a plain parent signal with a listener it removes when done", async () => {
    const outer = new AbortController();
    const answer = withLazyDeadline(outer, 1_000, (signal) => {
      signal();
      return new Promise<never>(() => {});
    });
    outer.abort(new Error("gone"));
    await expect(answer).rejects.toThrow("gone");
  });

  it("hands a synchronous answer (or throw) straight back: no promise, no timer, no watch", () => {
    const parent = watchedParent();
    expect(withLazyDeadline(parent, 1_000, () => 7)).toBe(7);
    // Even when the signal was asked for on the way: the watch is dropped at once.
    expect(withLazyDeadline(parent, 1_000, (signal) => (signal(), 8))).toBe(8);
    expect(parent.watchers.size).toBe(0);
    expect(() =>
      withLazyDeadline(parent, 1_000, (signal) => {
        signal();
        throw new Error("refused here");
      })
    ).toThrow("refused here");
    expect(parent.watchers.size).toBe(0);
  });

  it("rejects at once when the parent aborted before the work returned its promise", async () => {
    const parent = watchedParent();
    const reason = new Error("client gone");
    const answer = withLazyDeadline(parent, 1_000, (signal) => {
      signal();
      parent.close(reason);
      return new Promise<never>(() => {});
    });
    await expect(answer).rejects.toBe(reason);
  });

  it("rejects with a DeadlineError after ms even if the work ignores its signal", async () => {
    const parent = watchedParent();
    const answer = withLazyDeadline(parent, 20, (signal) => {
      signal();
      return new Promise<never>(() => {});
    });
    await expect(answer).rejects.toBeInstanceOf(DeadlineError);
    expect(parent.watchers.size).toBe(0);
  });
});
