/** Watchable abort signals: watchers told by the owner's abortAndTell, or by an event elsewhere. */
import { describe, expect, it } from "vitest";
import {
  abortAndTell,
  makeWatchable,
  unwatchAbort,
  watchAbort,
} from "../../src/async/abort_watch.ts";
import { withLazyDeadline } from "../../src/async/deadline.ts";

describe("watchAbort", () => {
  it("tells every watcher of a watchable signal once, after the signal has aborted", () => {
    const controller = new AbortController();
    makeWatchable(controller);
    const seen: string[] = [];
    watchAbort(controller.signal, () => seen.push(`first ${controller.signal.aborted}`));
    watchAbort(controller.signal, () => seen.push("second"));
    const gone = () => seen.push("unwatched");
    watchAbort(controller.signal, gone);
    unwatchAbort(controller.signal, gone);
    abortAndTell(controller, new Error("deadline"));
    abortAndTell(controller, new Error("again"));
    expect(seen).toEqual(["first true", "second"]);
    expect((controller.signal.reason as Error).message).toBe("deadline");
  });

  it("does not tell a watcher that left", () => {
    const controller = new AbortController();
    makeWatchable(controller);
    let told = 0;
    const onAbort = () => told++;
    watchAbort(controller.signal, onAbort);
    unwatchAbort(controller.signal, onAbort);
    abortAndTell(controller, "x");
    expect(told).toBe(0);
  });

  it("falls back to an abort event listener for any other signal", () => {
    const controller = new AbortController();
    let told = 0;
    const onAbort = () => told++;
    watchAbort(controller.signal, onAbort);
    controller.abort();
    expect(told).toBe(1);
    const other = new AbortController();
    watchAbort(other.signal, onAbort);
    unwatchAbort(other.signal, onAbort);
    other.abort();
    expect(told).toBe(1);
  });

  it("is how a lazy deadline's signal tells its watcher when the deadline passes", async () => {
    let watched: AbortSignal | undefined;
    let told = 0;
    const answer = withLazyDeadline({ signal: new AbortController().signal }, 20, (signal) => {
      watched = signal();
      watchAbort(watched, () => told++);
      return new Promise<never>(() => {});
    });
    await expect(answer).rejects.toThrow();
    expect(watched?.aborted).toBe(true);
    expect(told).toBe(1);
  });
});
