/**
 * The time and the timers of the HTTP/2 code, injected: the connection core, its outbox, its
 * read deadlines and the server's grace period read the time and set timers only through an
 * {@linkcode H2Clock}, which defaults to the runtime's ({@linkcode SYSTEM_CLOCK}), so that tests
 * can drive them with a fake one.
 *
 * @module
 */

/**
 * What {@linkcode H2Clock.setTimeout} returns, for {@linkcode H2Clock.clearTimeout}: the
 * runtime's timer handle (a number in Deno, an object where Node's types apply), or a fake
 * clock's number.
 */
export type TimerId = ReturnType<typeof setTimeout> | number;

/**
 * A millisecond clock and one-shot timers.
 *
 * @example
 * ```ts
 * const clock: H2Clock = SYSTEM_CLOCK;
 * const started = clock.now();
 * const timer = clock.setTimeout(() => console.log(clock.now() - started), 100);
 * clock.clearTimeout(timer);
 * ```
 */
export interface H2Clock {
  /** Milliseconds since the epoch (deadlines are compared with it). */
  now(): number;
  /** Runs `callback` once, `ms` from now (0 or less: as soon as possible). */
  setTimeout(callback: () => void, ms: number): TimerId;
  /** Cancels a timer that has not run; a timer that ran (or an unknown one) is ignored. */
  clearTimeout(id: TimerId): void;
}

/** The runtime's clock: `Date.now`, `setTimeout` and `clearTimeout`, looked up at each call. */
export const SYSTEM_CLOCK: H2Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
};
