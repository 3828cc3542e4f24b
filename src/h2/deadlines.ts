/**
 * The read deadlines of one HTTP/2 connection, on one timer: the peer's SETTINGS must arrive,
 * a header block must end, a stream handed to {@linkcode ReadDeadlines.awaitRest} must be
 * finished by the peer, and a body waiting for the peer's window (`parked.ts`) must make
 * progress, each within `timeoutMs`. When the timer fires, what is late is ended through the
 * {@linkcode DeadlineActions} the connection core (`connection.ts`) supplies: a late SETTINGS or
 * header block ends the connection, a late stream or stalled body is reset.
 *
 * Every deadline is "now + timeoutMs" when it is set, so a later one never precedes the one the
 * timer is armed for: the streams wait in a plain queue, oldest deadline first, and setting one
 * costs no timer of its own.
 *
 * @module
 */
import { type H2Clock, SYSTEM_CLOCK, type TimerId } from "./clock.ts";
import { Code } from "./frames.ts";
import type { ParkedBodies, ParkedStream } from "./parked.ts";

/** What the deadlines keep on each stream (a part of `H2Stream`). */
export interface DeadlineStream {
  /** Stream ID (named in errors). */
  readonly id: number;
  /**
   * When the peer must have finished sending on this stream (ms), set by
   * {@linkcode ReadDeadlines.awaitRest}; 0 once it has, or when there is no deadline. Start 0.
   */
  readBy: number;
}

/** How what is late is ended; the connection core supplies them. */
export interface DeadlineActions<S> {
  /** Whether `stream` is still open (a stream forgotten since is passed over). */
  isOpen(stream: S): boolean;
  /** The connection cannot go on: GOAWAY(`code`), then close, for `why`. */
  fail(code: number, why: string, retryable: boolean): void;
  /** `stream` is late: reset it (CANCEL) and hand it to the side with `why`. */
  expire(stream: S, why: string): void;
  /** One or more streams expired in one firing (the connection may have nothing else left). */
  expired(): void;
}

/** Options of {@linkcode ReadDeadlines}. */
export interface ReadDeadlinesOptions<S extends DeadlineStream & ParkedStream> {
  /** Every deadline's length (0: none at all). */
  readonly timeoutMs: number;
  /** The other end, "client" or "server" (named in errors). */
  readonly peer: string;
  /** The bodies waiting for the peer's window: a wait without progress is a deadline too. */
  readonly parked: ParkedBodies<S>;
  readonly actions: DeadlineActions<S>;
  /** Default the runtime's. */
  readonly clock?: H2Clock;
}

/**
 * One connection's read deadlines. Nothing is armed without a deadline pending, or when
 * `timeoutMs` is 0.
 *
 * @example
 * ```ts
 * const deadlines = new ReadDeadlines({ timeoutMs: 10_000, peer: "client", parked, actions });
 * deadlines.expectSettings(); // the peer's SETTINGS within 10 s
 * deadlines.awaitRest(stream); // the rest of its request within 10 s
 * deadlines.restArrived(stream);
 * ```
 */
export class ReadDeadlines<S extends DeadlineStream & ParkedStream> {
  readonly timeoutMs: number;
  readonly #peer: string;
  readonly #parked: ParkedBodies<S>;
  readonly #actions: DeadlineActions<S>;
  readonly #clock: H2Clock;
  readonly #onTimer = () => this.#fire();
  #timer: TimerId | undefined;
  #stopped = false;
  /** When the peer's SETTINGS are due (0: arrived, or not asked for). */
  #settingsBy = 0;
  /** When the header block being received must end (0: none is). */
  #headerBlockBy = 0;
  /** The stream of that header block. */
  #headerBlockId = 0;
  /** Streams handed to `awaitRest`, oldest deadline first; entries finished since are skipped. */
  #unfinished: S[] = [];
  /** How many of `#unfinished` still have a deadline. */
  #unfinishedCount = 0;

  constructor(options: ReadDeadlinesOptions<S>) {
    this.timeoutMs = options.timeoutMs;
    this.#peer = options.peer;
    this.#parked = options.parked;
    this.#actions = options.actions;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
  }

  /** Streams handed to {@linkcode awaitRest} whose deadline is not lifted. */
  get unfinished(): number {
    return this.#unfinishedCount;
  }

  /** Whether the timer is armed. */
  get armed(): boolean {
    return this.#timer !== undefined;
  }

  /** The peer's SETTINGS are due `timeoutMs` from now. */
  expectSettings(): void {
    if (this.timeoutMs <= 0) return;
    this.#settingsBy = this.#clock.now() + this.timeoutMs;
    this.arm();
  }

  /** The peer's SETTINGS arrived. */
  settingsArrived(): void {
    this.#settingsBy = 0;
  }

  /** A header block began on stream `id` without ending: CONTINUATION must end it in time. */
  headerBlockBegan(id: number): void {
    if (this.timeoutMs <= 0) return;
    this.#headerBlockBy = this.#clock.now() + this.timeoutMs;
    this.#headerBlockId = id;
    this.arm();
  }

  /** The header block being received ended. */
  headerBlockEnded(): void {
    this.#headerBlockBy = 0;
  }

  /**
   * Gives the peer until `timeoutMs` from now to finish sending on `stream`;
   * {@linkcode restArrived} lifts it. No-op without deadlines, or when `stream` has one already.
   */
  awaitRest(stream: S): void {
    const timeout = this.timeoutMs;
    if (timeout <= 0 || stream.readBy !== 0) return;
    stream.readBy = this.#clock.now() + timeout;
    this.#unfinishedCount++;
    // Finished entries are skipped lazily; drop them before they outnumber the live ones.
    if (this.#unfinished.length >= 2 * this.#unfinishedCount + 16) {
      this.#unfinished = this.#unfinished.filter((s) => s.readBy !== 0);
    }
    this.#unfinished.push(stream);
    this.arm();
  }

  /** The peer finished sending on `stream`: its deadline is lifted. */
  restArrived(stream: S): void {
    if (stream.readBy === 0) return;
    stream.readBy = 0;
    this.#unfinishedCount--;
  }

  /** Arms the timer for the earliest deadline pending, unless it is armed or none is pending. */
  arm(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    let next = Infinity;
    if (this.#settingsBy !== 0) next = this.#settingsBy;
    if (this.#headerBlockBy !== 0 && this.#headerBlockBy < next) next = this.#headerBlockBy;
    const queue = this.#unfinished;
    while (queue.length > 0 && queue[0].readBy === 0) queue.shift();
    if (queue.length > 0 && queue[0].readBy < next) next = queue[0].readBy;
    const timeout = this.timeoutMs;
    if (timeout > 0) {
      // Bodies waiting for window, until they progress.
      const stall = this.#parked.earliestStall() + timeout;
      if (stall < next) next = stall;
    }
    if (next === Infinity) return;
    this.#timer = this.#clock.setTimeout(this.#onTimer, Math.max(0, next - this.#clock.now()));
  }

  /** Cancels the timer and forgets every deadline, for good (the connection ended). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#unfinished = [];
  }

  /** The timer fired: end what is late, then re-arm for the next. */
  #fire(): void {
    this.#timer = undefined;
    if (this.#stopped) return;
    const now = this.#clock.now();
    const timeout = this.timeoutMs;
    const actions = this.#actions;
    if (this.#settingsBy !== 0 && now >= this.#settingsBy) {
      return actions.fail(
        Code.NoError,
        `no SETTINGS from the ${this.#peer} in ${timeout} ms`,
        true,
      );
    }
    if (this.#headerBlockBy !== 0 && now >= this.#headerBlockBy) {
      return actions.fail(
        Code.EnhanceYourCalm,
        `header block on stream ${this.#headerBlockId} unfinished after ${timeout} ms`,
        false,
      );
    }
    let expired = false;
    const queue = this.#unfinished;
    while (queue.length > 0 && (queue[0].readBy === 0 || now >= queue[0].readBy)) {
      const stream = queue.shift()!;
      if (stream.readBy === 0 || !actions.isOpen(stream)) continue;
      this.restArrived(stream);
      expired = true;
      actions.expire(
        stream,
        `stream ${stream.id} unfinished by the ${this.#peer} after ${timeout} ms`,
      );
      if (this.#stopped) return;
    }
    // Bodies that made no progress against the peer's window for the whole deadline.
    for (const stream of this.#parked.stalled(now, timeout)) {
      if (stream.stalledSince === 0 || !actions.isOpen(stream)) continue;
      this.#parked.unpark(stream);
      expired = true;
      actions.expire(
        stream,
        `stream ${stream.id}: no room in the ${this.#peer}'s flow-control window for ${timeout} ms`,
      );
      if (this.#stopped) return;
    }
    if (expired) actions.expired();
    this.arm();
  }
}
