/**
 * An in-memory byte pipe for protocol tests that script one side of a connection.
 *
 * @module
 */
import type { H2Socket } from "../../src/h2/connection.ts";

/** A byte queue one side writes and the other reads. */
export class Channel {
  #chunks: Uint8Array[] = [];
  #waiters: (() => void)[] = [];
  closed = false;
  push(bytes: Uint8Array) {
    this.#chunks.push(bytes.slice());
    for (const w of this.#waiters.splice(0)) w();
  }
  close() {
    this.closed = true;
    for (const w of this.#waiters.splice(0)) w();
  }
  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.closed) return null;
      await new Promise<void>((r) => this.#waiters.push(r));
    }
    const chunk = this.#chunks[0];
    const n = Math.min(chunk.length, buffer.length);
    buffer.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    return n;
  }
}

/** One end of a pipe: reads `incoming`, writes `outgoing` (refused once closed); closing ends both. */
export function channelSocket(incoming: Channel, outgoing: Channel): H2Socket {
  return {
    read: (buffer) => incoming.read(buffer),
    write: (bytes) => {
      if (outgoing.closed) return Promise.reject(new Error("closed"));
      outgoing.push(bytes);
      return Promise.resolve();
    },
    close: () => {
      outgoing.close();
      incoming.close();
    },
  };
}

/** One HTTP/2 frame as a test side sees it. */
export interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Uint8Array;
}

/** An HTTP/2 frame's bytes. */
export function encodeFrame(
  type: number,
  flags: number,
  id: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const frame = new Uint8Array(9 + payload.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, payload.length << 8);
  frame[3] = type;
  frame[4] = flags;
  view.setUint32(5, id);
  frame.set(payload, 9);
  return frame;
}

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * Reads the frames the other side writes into a {@linkcode Channel} (one reader for the pipe's
 * whole life, so no read is ever abandoned), skipping a client preface at the start when asked.
 */
export class FrameTap {
  /** Frames no `expect` has taken yet, in order. */
  readonly frames: Frame[] = [];
  #buffer = new Uint8Array(0);
  #notify: (() => void) | undefined;
  #reading = false;
  #ended = false;

  constructor(readonly source: Channel, readonly skipPreface = false) {}

  /** The source ended. */
  get closed(): boolean {
    return this.#ended || this.source.closed;
  }

  async #pump(): Promise<void> {
    const chunk = new Uint8Array(65_536);
    let prefaceChecked = !this.skipPreface;
    for (;;) {
      const n = await this.source.read(chunk);
      if (n === null) break;
      const joined = new Uint8Array(this.#buffer.length + n);
      joined.set(this.#buffer);
      joined.set(chunk.subarray(0, n), this.#buffer.length);
      this.#buffer = joined;
      if (!prefaceChecked && this.#buffer.length >= PREFACE.length) {
        prefaceChecked = true;
        if (PREFACE.every((b, i) => this.#buffer[i] === b)) {
          this.#buffer = this.#buffer.subarray(PREFACE.length);
        }
      }
      while (prefaceChecked && this.#buffer.length >= 9) {
        const length = (this.#buffer[0] << 16) | (this.#buffer[1] << 8) | this.#buffer[2];
        if (this.#buffer.length < 9 + length) break;
        const view = new DataView(this.#buffer.buffer, this.#buffer.byteOffset);
        this.frames.push({
          type: this.#buffer[3],
          flags: this.#buffer[4],
          id: view.getUint32(5) & 0x7fffffff,
          payload: this.#buffer.slice(9, 9 + length),
        });
        this.#buffer = this.#buffer.subarray(9 + length);
      }
      this.#notify?.();
    }
    this.#ended = true;
    this.#notify?.();
  }

  /** Takes the first frame `match` accepts, waiting up to 1 s for one to arrive. */
  async expect(match: (f: Frame) => boolean, what: string): Promise<Frame> {
    if (!this.#reading) {
      this.#reading = true;
      void this.#pump();
    }
    const deadline = Date.now() + 1_000;
    for (;;) {
      const i = this.frames.findIndex(match);
      if (i >= 0) return this.frames.splice(i, 1)[0];
      if (this.closed) throw new Error(`connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#notify = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}
