/**
 * The idle timer of one HTTP/2 connection: once nothing has been open for `timeoutMs`, the
 * connection drains. The timer is armed when the connection goes idle and none is armed, and
 * never cleared while it runs: a request that comes and goes costs no timer; when it fires it
 * checks how long the connection has been idle, and waits the rest if need be.
 *
 * @module
 */
import { type H2Clock, SYSTEM_CLOCK, type TimerId } from "./clock.ts";

/**
 * One connection's idle timer.
 *
 * @example
 * ```ts
 * const idle = new IdleTimer(30_000, () => streams.size === 0, () => drain());
 * idle.start(); // nothing is open
 * idle.busy(); // a stream opened
 * ```
 */
export class IdleTimer {
  readonly #isIdle: () => boolean;
  readonly #onIdle: () => void;
  readonly #clock: H2Clock;
  readonly #onTimer = () => this.#check();
  #timer: TimerId | undefined;
  /** When the connection last went idle (ms), or 0 while something is open. */
  #since = 0;
  #stopped = false;

  /**
   * @param timeoutMs how long the connection may stay idle
   * @param isIdle whether nothing is open now (checked when the timer fires)
   * @param onIdle called once it has stayed idle for `timeoutMs`
   */
  constructor(
    readonly timeoutMs: number,
    isIdle: () => boolean,
    onIdle: () => void,
    clock: H2Clock = SYSTEM_CLOCK,
  ) {
    this.#isIdle = isIdle;
    this.#onIdle = onIdle;
    this.#clock = clock;
  }

  /** Whether the timer is armed. */
  get armed(): boolean {
    return this.#timer !== undefined;
  }

  /** The connection went idle now. */
  start(): void {
    if (this.#stopped) return;
    this.#since = this.#clock.now();
    this.#timer ??= this.#clock.setTimeout(this.#onTimer, this.timeoutMs);
  }

  /** Something opened: the connection is not idle. */
  busy(): void {
    this.#since = 0;
  }

  /** Cancels the timer for good (the connection ended). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #check(): void {
    this.#timer = undefined;
    if (this.#stopped || this.#since === 0 || !this.#isIdle()) return; // re-armed when idle
    const idle = this.#clock.now() - this.#since;
    if (idle >= this.timeoutMs) this.#onIdle();
    else this.#timer = this.#clock.setTimeout(this.#onTimer, this.timeoutMs - idle);
  }
}
