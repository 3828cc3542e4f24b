/**
 * The 2-byte length prefix of DNS over TCP and TLS (RFC 1035 §4.2.2, RFC 7858 §3.3).
 *
 * @module
 */
import { concatBytes } from "../bytes/concat.ts";
import { MAX_MESSAGE_SIZE } from "../dns/constants.ts";

/** Raised for a frame the decoder refuses; the stream cannot be resynchronised after it. */
export class FrameError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/**
 * Incremental decoder: feed it chunks as they arrive, get back every complete message. Partial
 * messages and partial length bytes are kept for the next chunk. A zero length or a length over
 * `maxFrameSize` throws {@linkcode FrameError}.
 *
 * Frames that lie whole inside one chunk are returned as views of it (no copy).
 *
 * @example
 * ```ts
 * const decoder = new FrameDecoder(4096);
 * for (const message of decoder.push(chunk)) handle(message);
 * ```
 */
export class FrameDecoder {
  #pending: Uint8Array | undefined;
  #pendingSince = 0;

  /** @param maxFrameSize the largest message accepted, at most 65535 */
  constructor(readonly maxFrameSize: number = MAX_MESSAGE_SIZE) {}

  /** Bytes held for an incomplete frame. */
  get bufferedBytes(): number {
    return this.#pending?.length ?? 0;
  }

  /** Timestamp passed to the push that started the incomplete frame, or 0 when none is held. */
  get partialSince(): number {
    return this.#pending ? this.#pendingSince : 0;
  }

  /**
   * Adds a chunk; returns the messages it completed, in order. `now` (a timestamp, or a clock
   * read only then) becomes {@linkcode partialSince} when this chunk starts an incomplete frame.
   */
  push(chunk: Uint8Array, now: number | (() => number) = 0): Uint8Array[] {
    // A Node Buffer (what node:net and node:tls hand over) has a slice() that returns a view;
    // frames are handed out as plain Uint8Arrays so no caller can be surprised by that.
    if (chunk.constructor !== Uint8Array) {
      chunk = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
    let data = chunk;
    if (this.#pending) {
      data = concatBytes([this.#pending, chunk]);
      this.#pending = undefined;
    }
    const out: Uint8Array[] = [];
    let pos = 0;
    while (data.length - pos >= 2) {
      const len = (data[pos] << 8) | data[pos + 1];
      if (len === 0) throw new FrameError("framing: zero-length message");
      if (len > this.maxFrameSize) {
        throw new FrameError(`framing: message of ${len} bytes exceeds ${this.maxFrameSize}`);
      }
      if (data.length - pos - 2 < len) break;
      out.push(data.subarray(pos + 2, pos + 2 + len));
      pos += 2 + len;
    }
    if (pos < data.length) {
      const wasPartial = data !== chunk;
      this.#pending = data.slice(pos);
      if (!wasPartial || out.length > 0) {
        this.#pendingSince = typeof now === "number" ? now : now();
      }
    }
    return out;
  }
}

/**
 * Frames messages into one buffer (length and body together, ready for a single write).
 *
 * @throws {RangeError} if a message is empty or over 65535 bytes
 *
 * @example
 * ```ts
 * socket.write(encodeFrames([answerA, answerB]));
 * ```
 */
export function encodeFrames(messages: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const m of messages) {
    if (m.length === 0 || m.length > MAX_MESSAGE_SIZE) {
      throw new RangeError(`framing: cannot frame a message of ${m.length} bytes`);
    }
    total += 2 + m.length;
  }
  const out = new Uint8Array(total);
  let pos = 0;
  for (const m of messages) {
    out[pos] = m.length >> 8;
    out[pos + 1] = m.length & 0xff;
    out.set(m, pos + 2);
    pos += 2 + m.length;
  }
  return out;
}
