/**
 * Timers of one fixed length, many at a time, on one `setTimeout`: the helper under
 * {@linkcode withDeadline} (`deadline.ts`).
 *
 * @module
 */

/** One pending timer of a {@linkcode TimerLane}; `fire` is dropped once cancelled or run. */
export interface LaneEntry {
  readonly at: number;
  fire: (() => void) | undefined;
}

/**
 * All timers of one length. They expire in the order they were set, so a FIFO queue and a
 * single timer (for its head) serve them all: adding and cancelling one costs no timer of its
 * own, which matters at tens of thousands of queries per second. Once nothing is pending, the
 * lane's timer fires at most once more and is not set again (an idle process keeps nothing
 * scheduled).
 *
 * @example
 * ```ts
 * const lane = new TimerLane(2_000);
 * const entry = lane.add(() => console.log("2 s passed"));
 * lane.cancel(entry); // nothing fires; the lane's timer runs out without being set again
 * ```
 */
export class TimerLane {
  #queue: (LaneEntry | undefined)[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Entries neither run nor cancelled. */
  #live = 0;

  /** @param ms how long after {@linkcode add} each callback runs */
  constructor(readonly ms: number) {}

  /** Runs `fire` in `ms` unless {@linkcode cancel} comes first. */
  add(fire: () => void): LaneEntry {
    const entry: LaneEntry = { at: performance.now() + this.ms, fire };
    this.#queue.push(entry);
    this.#live++;
    if (this.#timer === undefined) this.#arm(this.ms);
    return entry;
  }

  /**
   * Drops a pending entry. With none left the queue is emptied, but the timer is left to run out
   * (it then finds nothing and is not set again): a lane that goes empty and busy again between
   * every batch of queries would otherwise clear and set a timer each time. Safe to call twice.
   */
  cancel(entry: LaneEntry): void {
    if (entry.fire === undefined) return;
    entry.fire = undefined;
    if (--this.#live > 0) return;
    this.#queue = [];
    this.#head = 0;
  }

  #arm(delay: number): void {
    this.#timer = setTimeout(() => this.#run(), Math.max(0, delay));
  }

  #run(): void {
    this.#timer = undefined;
    const now = performance.now();
    const due: (() => void)[] = [];
    const queue = this.#queue;
    while (this.#head < queue.length) {
      const entry = queue[this.#head]!;
      if (entry.fire !== undefined && entry.at > now) break;
      queue[this.#head++] = undefined;
      if (entry.fire !== undefined) {
        due.push(entry.fire);
        entry.fire = undefined;
        this.#live--;
      }
    }
    if (this.#head === queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else {
      if (this.#head > 1024 && this.#head * 2 > queue.length) {
        this.#queue = queue.slice(this.#head);
        this.#head = 0;
      }
      this.#arm(this.#queue[this.#head]!.at - now);
    }
    // Fired last: a callback may add or cancel entries on this lane.
    for (const fire of due) fire();
  }
}
