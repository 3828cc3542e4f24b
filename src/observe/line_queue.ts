/**
 * A bounded queue of log lines between the query path and a slow writer (a disk, a pipe): a
 * push never waits and never grows memory past the cap; a line that does not fit is dropped and
 * counted. The writer takes everything queued in one batch and writes it in one go.
 *
 * @module
 */

/** Options of {@linkcode LineQueue}. */
export interface LineQueueOptions {
  /** Most characters held at once (default 1 MiB); past it lines are dropped. */
  maxChars?: number;
  /** Told of each dropped line (a metric). Must not throw. */
  onDrop?: () => void;
  /** Told when a line arrives in an empty queue: time to schedule a write. Must not throw. */
  onReady?: () => void;
}

/**
 * Lines waiting to be written.
 *
 * @example
 * ```ts
 * const queue = new LineQueue({ maxChars: 1 << 20, onReady: () => queueMicrotask(flush) });
 * queue.push('{"name":"example.com"}\n');
 * const batch = queue.take(); // the lines, joined
 * ```
 */
export class LineQueue {
  readonly #max: number;
  readonly #onDrop?: () => void;
  readonly #onReady?: () => void;
  #lines: string[] = [];
  #chars = 0;
  #dropped = 0;

  constructor(options: LineQueueOptions = {}) {
    this.#max = options.maxChars ?? 1 << 20;
    this.#onDrop = options.onDrop;
    this.#onReady = options.onReady;
  }

  /** Lines dropped since the start. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Characters queued. */
  get size(): number {
    return this.#chars;
  }

  /** Queues `line` (with its newline); false, and counted, when it does not fit. */
  push(line: string): boolean {
    if (this.#chars + line.length > this.#max) {
      this.#dropped++;
      this.#onDrop?.();
      return false;
    }
    this.#lines.push(line);
    this.#chars += line.length;
    if (this.#lines.length === 1) this.#onReady?.();
    return true;
  }

  /** Everything queued, joined in order, and an empty queue; `""` when there was nothing. */
  take(): string {
    if (this.#lines.length === 0) return "";
    const text = this.#lines.join("");
    this.#lines = [];
    this.#chars = 0;
    return text;
  }
}
