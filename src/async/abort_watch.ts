/**
 * Abort signals whose owner tells watchers directly, without an event listener. The lazy
 * deadline's signal (`withLazyDeadline`, the one every upstream query carries) is one: its
 * watcher is usually exactly one, the HTTP/2 client's stream, and Deno's `addEventListener` and
 * `removeEventListener` cost about a microsecond and several objects per query. Code that gets a
 * signal calls {@linkcode watchAbort} and {@linkcode unwatchAbort}; for any other signal they fall
 * back to an `abort` event listener, so the signal stays an ordinary `AbortSignal` to everyone.
 *
 * @module
 */

const WATCHERS = Symbol("dotbridge.abortWatchers");

/** The watchers of one watchable signal: the first in a field, more (rare) in a set. */
class Watchers {
  first: (() => void) | undefined;
  more: Set<() => void> | undefined;
}

type Watchable = AbortSignal & { [WATCHERS]?: Watchers };

/**
 * Makes `controller`'s signal watchable; the owner must call {@linkcode abortAndTell} (not
 * `controller.abort`) so watchers hear of it.
 */
export function makeWatchable(controller: AbortController): void {
  (controller.signal as Watchable)[WATCHERS] = new Watchers();
}

/** Aborts `controller` with `reason`, then calls its signal's watchers (once each). */
export function abortAndTell(controller: AbortController, reason: unknown): void {
  if (controller.signal.aborted) return;
  controller.abort(reason);
  const w = (controller.signal as Watchable)[WATCHERS];
  if (!w) return;
  const { first, more } = w;
  w.first = w.more = undefined;
  first?.();
  if (more) { for (const fn of more) fn(); }
}

/** Calls `onAbort` once when `signal` aborts (not if it already has: check `aborted` first). */
export function watchAbort(signal: AbortSignal, onAbort: () => void): void {
  const w = (signal as Watchable)[WATCHERS];
  if (!w) return signal.addEventListener("abort", onAbort, { once: true });
  if (w.first === undefined) w.first = onAbort;
  else (w.more ??= new Set()).add(onAbort);
}

/** Stops a {@linkcode watchAbort}. */
export function unwatchAbort(signal: AbortSignal, onAbort: () => void): void {
  const w = (signal as Watchable)[WATCHERS];
  if (!w) return signal.removeEventListener("abort", onAbort);
  if (w.first === onAbort) w.first = undefined;
  else w.more?.delete(onAbort);
}
