/**
 * A fake {@linkcode H2Clock} for tests: time moves only when told, and timers run then, in the
 * order they fall due.
 *
 * @module
 */
import type { H2Clock, TimerId } from "../../src/h2/clock.ts";

interface Timer {
  readonly at: number;
  readonly callback: () => void;
}

/**
 * Time that stands still until {@linkcode advance}.
 *
 * @example
 * ```ts
 * const clock = new FakeClock();
 * clock.setTimeout(() => console.log("ran"), 1_000);
 * clock.advance(1_000); // ran
 * ```
 */
export class FakeClock implements H2Clock {
  #now: number;
  #next = 1;
  /** Timers set so far (run, cleared or pending). */
  set = 0;
  readonly #timers = new Map<number, Timer>();

  /** @param now the time it starts at (ms) */
  constructor(now = 1_000_000) {
    this.#now = now;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): TimerId {
    const id = this.#next++;
    this.set++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(id: TimerId): void {
    this.#timers.delete(id as number);
  }

  /** Timers set and neither run nor cleared. */
  get pending(): number {
    return this.#timers.size;
  }

  /** The delays of the pending timers from now (ms), soonest first. */
  get delays(): number[] {
    return [...this.#timers.values()].map((t) => t.at - this.#now).sort((a, b) => a - b);
  }

  /**
   * Moves time on by `ms`, running every timer that falls due on the way (those set meanwhile
   * too), each at its own time, soonest first.
   */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (let ran = 0;; ran++) {
      // A timer that keeps re-arming itself for now would run for ever: fail instead.
      if (ran > 10_000) throw new Error("fake clock: timers keep falling due at the same time");
      let due: [number, Timer] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= end && (!due || entry[1].at < due[1].at)) due = entry;
      }
      if (!due) break;
      this.#timers.delete(due[0]);
      this.#now = Math.max(this.#now, due[1].at);
      due[1].callback();
    }
    this.#now = end;
  }
}
