/**
 * An in-memory byte pipe for protocol tests that script one side of a connection.
 *
 * @module
 */
import type { H2Socket } from "../../src/h2/socket.ts";

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
