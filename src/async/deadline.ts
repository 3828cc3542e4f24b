/**
 * Deadlines as AbortSignals, sharing one timer per deadline length, which stops once no deadline
 * is pending (so an idle process holds no timer).
 *
 * @module
 */
import { abortAndTell, makeWatchable } from "./abort_watch.ts";
import { TimerLane } from "./timer_lane.ts";

/** The reason a deadline's signal aborts with. */
export class DeadlineError extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = "TimeoutError";
  }
}

const lanes = new Map<number, TimerLane>();

/**
 * Runs `fn` with a signal that aborts when `parent` aborts or after `ms`, and settles as soon as
 * either happens, even if `fn` ignores the signal. The deadline is dropped when `fn` settles.
 *
 * @example
 * ```ts
 * const answer = await withDeadline(signal, 2000, (s) => upstream.exchange(query, s));
 * ```
 */
export function withDeadline<T>(
  parent: AbortSignal,
  ms: number,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  if (parent.aborted) return Promise.reject(parent.reason);
  const controller = new AbortController();
  let lane = lanes.get(ms);
  if (!lane) {
    lane = new TimerLane(ms);
    if (lanes.size < 64) lanes.set(ms, lane); // deadline lengths are few (config values)
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      controller.abort(parent.reason);
      reject(parent.reason);
    };
    const entry = lane.add(() => {
      // Past the deadline the parent's abort no longer matters, even if `fn` never settles.
      parent.removeEventListener("abort", onAbort);
      const reason = new DeadlineError(ms);
      controller.abort(reason);
      reject(reason);
    });
    parent.addEventListener("abort", onAbort, { once: true });
    const cleanup = () => {
      lane.cancel(entry);
      parent.removeEventListener("abort", onAbort);
    };
    let promise: Promise<T>;
    try {
      promise = fn(controller.signal);
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (error) => {
        cleanup();
        reject(error);
      },
    );
  });
}

/**
 * What a lazy deadline's parent abort comes from: a context's signal, or, where the context
 * offers it, a subscription. A DoT connection's context does: its queries would otherwise each
 * add (and remove, by a linear search) a listener on one signal, and the connection would need an
 * `AbortController` at all.
 */
export interface AbortParent {
  readonly signal: AbortSignal;
  /** Calls `onAbort` once when the parent aborts, at once if it already has. */
  watch?(onAbort: (reason: unknown) => void): void;
  /** Stops a {@linkcode watch}. */
  unwatch?(onAbort: (reason: unknown) => void): void;
}

/**
 * {@linkcode withDeadline} for work that rarely needs its signal: `fn` gets a getter, and the
 * signal (with its listener on the parent's) is made only when the getter is first called; the
 * parent's signal (`parent.signal`) is not read before either, so a context that makes its own
 * signal on first read (a DoT connection's) makes none for a query that never needs it. Until
 * then the deadline still settles the call after `ms`, but the parent aborting does not settle it
 * early: work that never looked at its signal is not told either. A cache hit answers without
 * ever asking, so it pays for no `AbortController` and no listener. `fn` may answer
 * synchronously (a value, not a promise, or a throw): that comes back as it is, with no timer
 * entry and no promise made; the deadline applies from when `fn` returned a promise.
 *
 * @example
 * ```ts
 * const answer = await withLazyDeadline(ctx, 5000, (signal) =>
 *   upstream.exchange(query, signal())
 * );
 * ```
 */
export function withLazyDeadline<T>(
  context: AbortParent,
  ms: number,
  fn: (signal: () => AbortSignal) => T | Promise<T>,
): T | Promise<T> {
  let controller: AbortController | undefined;
  // Made with the signal, only when something asks for it (a cache hit never does).
  let unhook: (() => void) | undefined;
  let settled = false;
  // The outer promise's reject, once there is one; a parent abort before that is kept here.
  let reject: ((reason: unknown) => void) | undefined;
  let early: { reason: unknown } | undefined;
  const signal = () => {
    if (controller) return controller.signal;
    controller = new AbortController();
    if (settled) return controller.signal;
    const own = controller;
    // Its abort is ours to make, so watchers (the HTTP/2 client's stream) are told directly.
    makeWatchable(own);
    const onAbort = (reason: unknown) => {
      abortAndTell(own, reason);
      if (reject) reject(reason);
      else early ??= { reason };
    };
    if (context.watch) {
      context.watch(onAbort);
      unhook = () => context.unwatch?.(onAbort);
      return own.signal;
    }
    const outer = context.signal;
    if (outer.aborted) onAbort(outer.reason);
    else {
      const listener = () => onAbort(outer.reason);
      outer.addEventListener("abort", listener, { once: true });
      unhook = () => outer.removeEventListener("abort", listener);
    }
    return own.signal;
  };
  let result: T | Promise<T>;
  try {
    result = fn(signal);
  } catch (error) {
    settled = true;
    unhook?.();
    throw error;
  }
  // Answered synchronously (a cache hit): no deadline to keep, no promise to make.
  if (typeof (result as Promise<T> | undefined)?.then !== "function") {
    settled = true;
    unhook?.();
    return result;
  }
  const promise = result as Promise<T>;
  let lane = lanes.get(ms);
  if (!lane) {
    lane = new TimerLane(ms);
    if (lanes.size < 64) lanes.set(ms, lane);
  }
  const deadlineLane = lane;
  return new Promise<T>((resolve, rejectOuter) => {
    reject = rejectOuter;
    if (early) rejectOuter(early.reason);
    const entry = deadlineLane.add(() => {
      settled = true;
      unhook?.();
      const reason = new DeadlineError(ms);
      if (controller) abortAndTell(controller, reason);
      rejectOuter(reason);
    });
    const done = () => {
      settled = true;
      deadlineLane.cancel(entry);
      unhook?.();
    };
    promise.then(
      (value) => {
        done();
        resolve(value);
      },
      (error) => {
        done();
        rejectOuter(error);
      },
    );
  });
}
