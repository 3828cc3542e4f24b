/**
 * An abort whose `AbortController` is made only if someone reads its signal. A request that is
 * answered without ever looking at its signal (a DoH GET answered from the cache) then costs no
 * controller and no `AbortSignal`, each an object graph Deno builds with some care; aborting
 * before the signal was read is remembered, so a signal read later is already aborted.
 *
 * @module
 */

/**
 * An abort made lazily.
 *
 * @example
 * ```ts
 * const abort = new LazyAbort();
 * abort.abort(new Error("client reset the stream")); // nothing made yet
 * abort.signal.aborted; // true: made now, already aborted
 * ```
 */
export class LazyAbort {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;

  /** The signal, made on first read. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** Aborts with `reason` (once; later calls are ignored, as `AbortController.abort`'s are). */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}
