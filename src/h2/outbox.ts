/**
 * The sending side of an HTTP/2 connection, client or server: frames are written straight into
 * one growing buffer, and everything queued in one turn of the event loop leaves in one socket
 * write. While a write is in flight, frames go to a second buffer (double buffering), so the
 * steady state allocates nothing per frame.
 *
 * @module
 */
import type { H2Socket } from "./connection.ts";

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

/** Frames waiting for the socket. */
export class FrameOutbox {
  #socket: H2Socket | undefined;
  #out: Uint8Array<ArrayBuffer> = new Uint8Array(16 * 1024);
  #length = 0;
  #spare: Uint8Array<ArrayBuffer> | undefined;
  #scheduled = false;
  #writing = false;
  #closed = false;
  readonly #onError: (error: Error) => void;
  readonly #onDrained: () => void;

  /**
   * @param onError a write failed (the connection is gone)
   * @param onDrained a flush finished with nothing left to write
   */
  constructor(onError: (error: Error) => void, onDrained: () => void = () => {}) {
    this.#onError = onError;
    this.#onDrained = onDrained;
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

  /** Queues raw bytes (the client preface). */
  raw(bytes: Uint8Array): void {
    this.#reserve(bytes.length).set(bytes);
  }

  /** Queues one frame. */
  emit(type: number, flags: number, id: number, payload?: Uint8Array): void {
    const length = payload?.length ?? 0;
    const at = this.#length;
    const out = this.#reserve(9 + length);
    frameHeader(this.#out, at, length, type, flags, id);
    if (payload) out.set(payload, 9);
  }

  /**
   * Stops: with `flushFirst`, what is queued (a final GOAWAY) is written, then `done` runs;
   * otherwise `done` runs at once.
   */
  close(flushFirst: boolean, done: () => void): void {
    this.#closed = true;
    const socket = this.#socket;
    if (flushFirst && socket && this.#length > 0 && !this.#writing) {
      socket.write(this.#take()).catch(() => {}).finally(done);
    } else done();
  }

  #reserve(n: number): Uint8Array {
    const at = this.#length;
    if (at + n > this.#out.length) {
      const grown = new Uint8Array(Math.max(this.#out.length * 2, at + n));
      grown.set(this.#out.subarray(0, at));
      this.#out = grown;
    }
    this.#length = at + n;
    this.#schedule();
    return this.#out.subarray(at, at + n);
  }

  #schedule(): void {
    if (this.#scheduled || this.#writing || !this.#socket) return;
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
    if (!socket || this.#writing) return;
    this.#writing = true;
    try {
      while (this.#length > 0 && !this.#closed) {
        const bytes = this.#take();
        await socket.write(bytes);
        // Written: its buffer can take the frames after next.
        if (bytes.buffer.byteLength <= 64 * 1024) this.#spare = new Uint8Array(bytes.buffer);
      }
    } catch (error) {
      this.#writing = false;
      this.#onError(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    this.#writing = false;
    if (!this.#closed) this.#onDrained();
  }
}
