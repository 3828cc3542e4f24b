/**
 * One timer for the deadlines of many connections: every `tickMs` it asks each member whether it
 * is past a deadline (idle, half a frame), instead of each connection keeping a timer of its own.
 * An idle connection then costs no timer, no closure and no timer-list entry, which matters at
 * tens of thousands of idle DoT connections; a deadline is met at most one tick late, never
 * early. With no members left the timer is not set again (an idle process keeps nothing
 * scheduled).
 *
 * @module
 */

/** What a {@linkcode Sweeper} checks. */
export interface Sweepable {
  /** Acts on any deadline passed; false once the member has ended (it is then dropped). */
  sweep(): boolean;
}

/**
 * The tick for deadlines of these lengths: a tenth of the shortest, between 5 ms and 1 s, so a
 * deadline is met within 10% of its length (or a second).
 */
export function tickFor(...deadlinesMs: number[]): number {
  return Math.min(1_000, Math.max(5, Math.floor(Math.min(...deadlinesMs) / 10)));
}

/**
 * Checks its members every `tickMs` while it has any.
 *
 * @example
 * ```ts
 * const sweeper = new Sweeper(tickFor(10_000, 5_000));
 * sweeper.add({ sweep: () => !closeIfIdle() });
 * ```
 */
export class Sweeper {
  readonly #members = new Set<Sweepable>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly tickMs: number) {}

  /** Members being checked. */
  get size(): number {
    return this.#members.size;
  }

  add(member: Sweepable): void {
    this.#members.add(member);
    if (this.#timer === undefined) this.#arm();
  }

  /** Stops checking `member` (the timer runs out if it was the last). */
  delete(member: Sweepable): void {
    this.#members.delete(member);
  }

  #arm(): void {
    this.#timer = setTimeout(() => this.#run(), this.tickMs);
  }

  #run(): void {
    this.#timer = undefined;
    // Deleting the current member while iterating a Set is safe; members added meanwhile are
    // visited in this pass too, harmlessly.
    for (const member of this.#members) {
      if (!member.sweep()) this.#members.delete(member);
    }
    if (this.#members.size > 0) this.#arm();
  }
}
