/**
 * Deadlines as AbortSignals whose timers are always cleared.
 *
 * @module
 */

/** The reason a deadline's signal aborts with. */
export class DeadlineError extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = "TimeoutError";
  }
}

/**
 * Runs `fn` with a signal that aborts when `parent` aborts or after `ms`, and settles as soon as
 * either happens, even if `fn` ignores the signal. The timer is cleared when `fn` settles.
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
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      controller.abort(parent.reason);
      reject(parent.reason);
    };
    const timer = setTimeout(() => {
      const reason = new DeadlineError(ms);
      controller.abort(reason);
      reject(reason);
    }, ms);
    parent.addEventListener("abort", onAbort, { once: true });
    const cleanup = () => {
      clearTimeout(timer);
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
