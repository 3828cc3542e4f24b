/**
 * Deadlines as AbortSignals, sharing one timer per deadline length, which is cleared whenever no
 * deadline is pending (so an idle process holds no timer).
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

/** One pending deadline; `fire` is dropped once it is cancelled or run. */
interface Entry {
  readonly at: number;
  fire: (() => void) | undefined;
}

/**
 * All deadlines of one length. They expire in the order they were set, so a FIFO queue and a
 * single timer (for its head) serve them all: setting and cancelling a deadline costs no timer
 * of its own, which matters at tens of thousands of queries per second.
 */
class Lane {
  #queue: (Entry | undefined)[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Entries neither run nor cancelled. */
  #live = 0;

  constructor(readonly ms: number) {}

  add(fire: () => void): Entry {
    const entry: Entry = { at: performance.now() + this.ms, fire };
    this.#queue.push(entry);
    this.#live++;
    if (this.#timer === undefined) this.#arm(this.ms);
    return entry;
  }

  /** Drops a pending entry; with none left, the timer goes too. */
  cancel(entry: Entry): void {
    if (entry.fire === undefined) return;
    entry.fire = undefined;
    if (--this.#live > 0) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
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
    // Fired last: a callback may set or cancel deadlines on this lane.
    for (const fire of due) fire();
  }
}

const lanes = new Map<number, Lane>();

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
    lane = new Lane(ms);
    if (lanes.size < 64) lanes.set(ms, lane); // deadline lengths are few (config values)
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      controller.abort(parent.reason);
      reject(parent.reason);
    };
    const entry = lane.add(() => {
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
