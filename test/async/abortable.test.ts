/**
 * abortable: a promise raced against a signal, the watch removed once either settles, and what
 * comes too late handed to `onLate` or dropped.
 */
import { describe, expect, it, vi } from "vitest";
import { abortable } from "../../src/async/abortable.ts";
import { abortAndTell, makeWatchable } from "../../src/async/abort_watch.ts";

const never = () => new Promise<never>(() => {});

/** A promise with its resolve and reject at hand. */
function pending<T>() {
  return Promise.withResolvers<T>();
}

/** A signal whose listeners are counted. */
function countedSignal() {
  const controller = new AbortController();
  const add = vi.spyOn(controller.signal, "addEventListener");
  const remove = vi.spyOn(controller.signal, "removeEventListener");
  return { controller, add, remove };
}

describe("abortable", () => {
  it("resolves with the promise's value and removes its listener", async () => {
    const { controller, add, remove } = countedSignal();
    expect(await abortable(Promise.resolve(42), controller.signal)).toBe(42);
    expect(add).toHaveBeenCalledTimes(1);
    expect(remove).toHaveBeenCalledTimes(1);
    expect(remove.mock.calls[0][1]).toBe(add.mock.calls[0][1]);
  });

  it("rejects with the promise's error and removes its listener", async () => {
    const { controller, remove } = countedSignal();
    const failure = new Error("connection refused");
    await expect(abortable(Promise.reject(failure), controller.signal)).rejects.toBe(failure);
    expect(remove).toHaveBeenCalledTimes(1);
  });

  it("rejects with the signal's reason when it aborts first, though the promise never settles", async () => {
    const { controller, add, remove } = countedSignal();
    const raced = abortable(never(), controller.signal);
    const reason = new Error("deadline");
    controller.abort(reason);
    await expect(raced).rejects.toBe(reason);
    // A once-listener that fired: nothing is left on the signal.
    expect(add.mock.calls[0][2]).toEqual({ once: true });
    expect(remove).toHaveBeenCalledTimes(0);
  });

  it("rejects at once for a signal that already aborted, without listening to it", async () => {
    const { controller, add } = countedSignal();
    const reason = new Error("gone");
    controller.abort(reason);
    await expect(abortable(Promise.resolve(1), controller.signal)).rejects.toBe(reason);
    expect(add).not.toHaveBeenCalled();
  });

  it("hands a value that arrives after the abort to onLate, once", async () => {
    const controller = new AbortController();
    const work = pending<string>();
    const onLate = vi.fn();
    const raced = abortable(work.promise, controller.signal, onLate);
    controller.abort(new Error("stop"));
    await expect(raced).rejects.toThrow("stop");
    expect(onLate).not.toHaveBeenCalled();
    work.resolve("a connection nobody wants");
    await work.promise;
    expect(onLate).toHaveBeenCalledTimes(1);
    expect(onLate).toHaveBeenCalledWith("a connection nobody wants");
  });

  it("hands the value to onLate when the signal had already aborted", async () => {
    const controller = new AbortController();
    controller.abort();
    const onLate = vi.fn();
    await expect(abortable(Promise.resolve(7), controller.signal, onLate)).rejects.toBeDefined();
    await Promise.resolve();
    expect(onLate).toHaveBeenCalledWith(7);
  });

  it("does not call onLate when the value came in time", async () => {
    const controller = new AbortController();
    const onLate = vi.fn();
    expect(await abortable(Promise.resolve("in time"), controller.signal, onLate)).toBe("in time");
    controller.abort();
    await Promise.resolve();
    expect(onLate).not.toHaveBeenCalled();
  });

  it("drops a rejection that arrives after the abort (no unhandled rejection)", async () => {
    const unhandled = vi.fn();
    process.on("unhandledRejection", unhandled);
    try {
      const controller = new AbortController();
      const work = pending<number>();
      const raced = abortable(work.promise, controller.signal);
      controller.abort(new Error("first"));
      await expect(raced).rejects.toThrow("first");
      work.reject(new Error("too late"));
      await new Promise((r) => setTimeout(r, 10));
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off("unhandledRejection", unhandled);
    }
  });

  it("watches a watchable signal without an event listener, and unwatches it", async () => {
    const controller = new AbortController();
    makeWatchable(controller);
    const add = vi.spyOn(controller.signal, "addEventListener");
    const work = pending<number>();
    const raced = abortable(work.promise, controller.signal);
    expect(add).not.toHaveBeenCalled();
    const reason = new Error("told directly");
    abortAndTell(controller, reason);
    await expect(raced).rejects.toBe(reason);

    const again = new AbortController();
    makeWatchable(again);
    const onLate = vi.fn();
    expect(await abortable(Promise.resolve("ok"), again.signal, onLate)).toBe("ok");
    // Unwatched once settled: a later abort reaches no watcher, so nothing counts as late.
    abortAndTell(again, new Error("after"));
    await Promise.resolve();
    expect(onLate).not.toHaveBeenCalled();
  });
});
