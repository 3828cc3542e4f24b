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

/**
 * What is told of an abort: a function of the reason, or an object with `handleEvent` (what
 * `addEventListener` takes too), for an owner made per request that can be its own watcher.
 */
export type AbortWatcher = ((reason: unknown) => void) | { handleEvent(): void };

/**
 * What {@linkcode watchAbort} takes: a function of nothing (an ordinary signal's listener gets an
 * `Event`, not the reason: read `signal.reason`), or an object with `handleEvent`.
 */
export type AbortListener = (() => void) | { handleEvent(): void };

function tellOne(watcher: AbortWatcher, reason: unknown): void {
  if (typeof watcher === "function") watcher(reason);
  else watcher.handleEvent();
}

/**
 * Callbacks waiting for one abort, told once each: the first in a field, more (rare) in a set.
 * What a watchable signal keeps, and what any other owner of an abort (a DoT connection's
 * context) can keep to be watched the same way.
 */
export class AbortWatchers {
  #first: AbortWatcher | undefined;
  #more: Set<AbortWatcher> | undefined;

  add(onAbort: AbortWatcher): void {
    if (this.#first === undefined) this.#first = onAbort;
    else (this.#more ??= new Set()).add(onAbort);
  }

  delete(onAbort: AbortWatcher): void {
    if (this.#first === onAbort) this.#first = undefined;
    else this.#more?.delete(onAbort);
  }

  /** Calls every watcher with `reason` and forgets them all. */
  tell(reason: unknown): void {
    const first = this.#first;
    const more = this.#more;
    this.#first = this.#more = undefined;
    if (first !== undefined) tellOne(first, reason);
    if (more) { for (const onAbort of more) tellOne(onAbort, reason); }
  }
}

type Watchable = AbortSignal & { [WATCHERS]?: AbortWatchers };

/**
 * Makes `controller`'s signal watchable; the owner must call {@linkcode abortAndTell} (not
 * `controller.abort`) so watchers hear of it.
 */
export function makeWatchable(controller: AbortController): void {
  (controller.signal as Watchable)[WATCHERS] = new AbortWatchers();
}

/** Aborts `controller` with `reason`, then calls its signal's watchers (once each). */
export function abortAndTell(controller: AbortController, reason: unknown): void {
  if (controller.signal.aborted) return;
  controller.abort(reason);
  (controller.signal as Watchable)[WATCHERS]?.tell(reason);
}

/** Calls `onAbort` once when `signal` aborts (not if it already has: check `aborted` first). */
export function watchAbort(signal: AbortSignal, onAbort: AbortListener): void {
  const w = (signal as Watchable)[WATCHERS];
  if (w) w.add(onAbort);
  else signal.addEventListener("abort", onAbort, { once: true });
}

/** Stops a {@linkcode watchAbort}. */
export function unwatchAbort(signal: AbortSignal, onAbort: AbortListener): void {
  const w = (signal as Watchable)[WATCHERS];
  if (w) w.delete(onAbort);
  else signal.removeEventListener("abort", onAbort);
}
