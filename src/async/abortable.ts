/**
 * A promise raced against an AbortSignal, in the manner of Deno std `async/abortable.ts`.
 *
 * @module
 */
import { unwatchAbort, watchAbort } from "./abort_watch.ts";

/**
 * Settles as `promise` does, or rejects with `signal.reason` as soon as `signal` aborts (at once
 * when it already has), whichever comes first. The watch on the signal goes when either happens,
 * so a long-lived signal collects no listeners.
 *
 * The work behind `promise` is not stopped, only no longer awaited: what it resolves with after
 * the abort goes to `onLate` (a connection nobody will use, to be closed), and what it rejects
 * with then is dropped, never an unhandled rejection.
 *
 * @example
 * ```ts
 * const conn = await abortable(Deno.connect({ hostname, port }), signal, (late) => late.close());
 * ```
 */
export function abortable<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  onLate?: (value: T) => void,
): Promise<T> {
  const late = () => {
    promise.then(onLate, () => {});
  };
  if (signal.aborted) {
    late();
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      late();
      reject(signal.reason);
    };
    watchAbort(signal, onAbort);
    promise.then(
      (value) => {
        unwatchAbort(signal, onAbort);
        resolve(value);
      },
      (error) => {
        unwatchAbort(signal, onAbort);
        reject(error);
      },
    );
  });
}
