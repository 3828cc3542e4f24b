/**
 * LazyAbort: the controller is made on the first read of the signal, and an abort before that
 * read is remembered.
 */
import { describe, expect, it } from "vitest";
import { LazyAbort } from "../../src/async/lazy_abort.ts";

describe("LazyAbort", () => {
  it("hands out one signal, aborted when it aborts", () => {
    const abort = new LazyAbort();
    const signal = abort.signal;
    expect(abort.signal).toBe(signal);
    expect(signal.aborted).toBe(false);
    const reason = new Error("stream reset");
    abort.abort(reason);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
  });

  it("remembers an abort that came before anyone read the signal, with the first reason", () => {
    const abort = new LazyAbort();
    const first = new Error("connection closed");
    abort.abort(first);
    abort.abort(new Error("later"));
    expect(abort.signal.aborted).toBe(true);
    expect(abort.signal.reason).toBe(first);
  });
});
