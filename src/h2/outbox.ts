/**
 * The sending side of an HTTP/2 connection, client or server: frames are written straight into
 * one growing buffer, and everything queued in one turn of the event loop leaves in one socket
 * write. While a write is in flight, frames go to a second buffer (double buffering), so the
 * steady state allocates nothing per frame.
 *
 * Bounded: above a high-water mark of bytes queued or in flight it says so (`onFull`, and the
 * connection stops reading until `onDrained`); a write that does not finish within the write
 * deadline fails the connection; and closing after a final frame (GOAWAY) writes it even when a
 * write is in flight at that moment.
 *
 * @module
 */
import { type H2Clock, SYSTEM_CLOCK, type TimerId } from "./clock.ts";
import type { H2Socket } from "./socket.ts";

/** Writes a 9-byte frame header at `at`. */
export function frameHeader(
  out: Uint8Array,
  at: number,
  length: number,
  type: number,
  flags: number,
  id: number,
): void {
  out[at] = length >>> 16;
  out[at + 1] = (length >>> 8) & 0xff;
  out[at + 2] = length & 0xff;
  out[at + 3] = type;
  out[at + 4] = flags;
  out[at + 5] = (id >>> 24) & 0x7f;
  out[at + 6] = (id >>> 16) & 0xff;
  out[at + 7] = (id >>> 8) & 0xff;
  out[at + 8] = id & 0xff;
}

/** What a {@linkcode FrameOutbox} tells its connection, and its bounds. */
export interface FrameOutboxOptions {
  /** A write failed or timed out (the connection is gone); not called once closed. */
  readonly onError: (error: Error) => void;
  /** A flush finished with nothing left to write. */
  readonly onDrained?: () => void;
  /** Bytes queued or in flight went over `highWaterMark` (once, until the next drain). */
  readonly onFull?: () => void;
  /** See `onFull`. Default 256 KiB. */
  readonly highWaterMark?: number;
  /** A socket write still unfinished after this long fails (0: never). Default 30 000 ms. */
  readonly writeTimeoutMs?: number;
  /** The time and the write deadline's timer. Default the runtime's. */
  readonly clock?: H2Clock;
}

/** Frames waiting for the socket. */
export class FrameOutbox {
  #socket: H2Socket | undefined;
  #out: Uint8Array<ArrayBuffer> = new Uint8Array(16 * 1024);
  #length = 0;
  #spare: Uint8Array<ArrayBuffer> | undefined;
  #scheduled = false;
  #writing = false;
  /** Bytes of the write in flight. */
  #inFlight = 0;
  /** When the write in flight started (ms), for the write deadline. */
  #writeStarted = 0;
  #timer: TimerId | undefined;
  #full = false;
  #closed = false;
  /** A write failed or timed out: nothing more is written. */
  #dead = false;
  /** What to call once the final flush is over. */
  #done: (() => void) | undefined;
  readonly #onError: (error: Error) => void;
  readonly #onDrained: () => void;
  readonly #onFull: () => void;
  readonly #highWater: number;
  readonly #timeoutMs: number;
  readonly #clock: H2Clock;
  readonly #onTimer = () => this.#checkDeadline();

  constructor(options: FrameOutboxOptions) {
    this.#onError = options.onError;
    this.#onDrained = options.onDrained ?? (() => {});
    this.#onFull = options.onFull ?? (() => {});
    this.#highWater = options.highWaterMark ?? 256 * 1024;
    this.#timeoutMs = options.writeTimeoutMs ?? 30_000;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
  }

  /** Starts writing to `socket` (frames queued before are sent first). */
  attach(socket: H2Socket): void {
    this.#socket = socket;
    if (this.#length > 0) this.#schedule();
  }

  /** Bytes queued or being written. */
  get busy(): boolean {
    return this.#length > 0 || this.#writing;
  }

  /** Bytes queued plus the bytes of the write in flight. */
  get queued(): number {
    return this.#length + this.#inFlight;
  }

  /** Queues raw bytes (the client preface). */
  raw(bytes: Uint8Array): void {
    this.#out.set(bytes, this.#reserve(bytes.length));
  }

  /** Queues one frame. */
  emit(type: number, flags: number, id: number, payload?: Uint8Array): void {
    const length = payload?.length ?? 0;
    const at = this.#reserve(9 + length);
    frameHeader(this.#out, at, length, type, flags, id);
    if (payload) this.#out.set(payload, at + 9);
  }

  /**
   * Stops, once. With `flushFirst`, what is queued (a final GOAWAY) is written first, after the
   * write in flight if there is one (within the write deadline), then `done` runs; otherwise,
   * or when writing has failed, `done` runs at once.
   */
  close(flushFirst: boolean, done: () => void): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!flushFirst || !this.#socket || this.#dead) {
      this.#length = 0; // a flush in flight stops after its write
      this.#clearTimer();
      done();
      return;
    }
    this.#done = done;
    if (this.#writing) return; // the flush loop writes the rest, then finishes
    if (this.#length === 0) return this.#finish();
    void this.#flush();
  }

  /** Makes room for `n` more octets and returns where they go (no view made per frame). */
  #reserve(n: number): number {
    const at = this.#length;
    if (at + n > this.#out.length) {
      const grown = new Uint8Array(Math.max(this.#out.length * 2, at + n));
      grown.set(this.#out.subarray(0, at));
      this.#out = grown;
    }
    this.#length = at + n;
    if (!this.#full && this.#length + this.#inFlight > this.#highWater) {
      this.#full = true;
      this.#onFull();
    }
    this.#schedule();
    return at;
  }

  #schedule(): void {
    if (this.#scheduled || this.#writing || !this.#socket || this.#closed) return;
    this.#scheduled = true;
    queueMicrotask(() => this.#flush());
  }

  /** What is queued, leaving an empty buffer (the spare one if free) to queue into. */
  #take(): Uint8Array<ArrayBuffer> {
    const bytes = this.#out.subarray(0, this.#length);
    this.#out = this.#spare ?? new Uint8Array(Math.min(this.#out.length, 64 * 1024));
    this.#spare = undefined;
    this.#length = 0;
    return bytes;
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    const socket = this.#socket;
    if (!socket || this.#writing || this.#dead) return;
    this.#writing = true;
    try {
      while (this.#length > 0 && !this.#dead) {
        const bytes = this.#take();
        this.#inFlight = bytes.length;
        if (this.#timeoutMs > 0) {
          this.#writeStarted = this.#clock.now();
          // One timer per connection, re-armed from the last write when it fires.
          this.#timer ??= this.#clock.setTimeout(this.#onTimer, this.#timeoutMs);
        }
        await socket.write(bytes);
        this.#inFlight = 0;
        // Written: its buffer can take the frames after next.
        if (bytes.buffer.byteLength <= 64 * 1024) this.#spare = new Uint8Array(bytes.buffer);
      }
    } catch (error) {
      this.#writing = false;
      this.#inFlight = 0;
      if (this.#closed) return this.#finish();
      if (this.#dead) return; // timed out: already reported
      this.#dead = true;
      this.#clearTimer();
      this.#onError(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    this.#writing = false;
    if (this.#closed) return this.#finish();
    if (this.#dead) return;
    this.#full = false;
    this.#onDrained();
  }

  /** The write deadline timer fired: fail a write that is late, or wait for the one in flight. */
  #checkDeadline(): void {
    this.#timer = undefined;
    if (!this.#writing || this.#dead) return;
    const late = this.#clock.now() - this.#writeStarted;
    if (late < this.#timeoutMs) {
      this.#timer = this.#clock.setTimeout(this.#onTimer, this.#timeoutMs - late);
      return;
    }
    this.#dead = true;
    if (this.#closed) return this.#finish(); // the final flush gives up: close now
    this.#onError(new Error(`write not finished after ${this.#timeoutMs} ms`));
  }

  #finish(): void {
    this.#clearTimer();
    const done = this.#done;
    this.#done = undefined;
    done?.();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
