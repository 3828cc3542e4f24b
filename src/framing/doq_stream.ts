/**
 * The framing of a DNS-over-QUIC stream (RFC 9250 §4.2): each bidirectional stream carries
 * exactly one DNS message in each direction, with the 2-byte length prefix of DNS over TCP, then
 * the sender's FIN. Both sides of DoQ read a stream here: the face its query, the upstream its
 * answer.
 *
 * @module
 */
import { abortable } from "../async/abortable.ts";
import type { TimerLane } from "../async/timer_lane.ts";
import { concatBytes } from "../bytes/concat.ts";
import { getUint16 } from "../bytes/uint.ts";
import { MAX_MESSAGE_SIZE } from "../dns/constants.ts";

/** Why a DoQ stream does not carry exactly one message (RFC 9250 §4.2, §4.3.3). */
export type DoqStreamFault = "empty" | "oversize" | "truncated" | "trailing-data";

/** A stream that breaks the framing; `fault` says how. A `RangeError`, like other bad input. */
export class DoqStreamError extends RangeError {
  constructor(readonly fault: DoqStreamFault, message: string) {
    super(`DoQ stream: ${message}`);
    this.name = "DoqStreamError";
  }
}

/** The most bytes a DoQ stream may carry: the 2-byte prefix and a 65 535-byte message. */
export const MAX_DOQ_STREAM_BYTES = 2 + MAX_MESSAGE_SIZE;

/**
 * The message a whole stream carries (its bytes up to the FIN): the length prefix must announce
 * a message of 1 to `maxMessageSize` bytes and the stream must hold exactly that.
 *
 * @returns a view of `stream` without the prefix
 * @throws {DoqStreamError} naming the fault: nothing or a zero length (`empty`), a length over
 *   `maxMessageSize` (`oversize`), fewer bytes than announced (`truncated`), more (`trailing-data`)
 *
 * @example
 * ```ts
 * const query = doqMessageOf(Uint8Array.of(0, 3, 1, 2, 3)); // Uint8Array [1, 2, 3]
 * ```
 */
export function doqMessageOf(
  stream: Uint8Array,
  maxMessageSize: number = MAX_MESSAGE_SIZE,
): Uint8Array {
  const have = stream.byteLength;
  if (have === 0) throw new DoqStreamError("empty", "no message before the FIN");
  if (have < 2) throw new DoqStreamError("truncated", "the FIN came inside the length prefix");
  const length = getUint16(stream, 0);
  if (length === 0) throw new DoqStreamError("empty", "a zero-length message");
  if (length > maxMessageSize) {
    throw new DoqStreamError("oversize", `a message of ${length} bytes exceeds ${maxMessageSize}`);
  }
  if (have < 2 + length) {
    throw new DoqStreamError(
      "truncated",
      `the FIN came after ${have - 2} of the message's ${length} bytes`,
    );
  }
  if (have > 2 + length) throw new DoqStreamError("trailing-data", "data after the message");
  return stream.subarray(2);
}

/** Options of {@linkcode readDoqMessage}. */
export interface ReadDoqMessageOptions {
  /** The largest message accepted. Default 65 535. */
  maxMessageSize?: number;
  /**
   * `"fin"` (default; a server reading a query): read the stream to its FIN, then check it
   * whole. `"message"` (a client reading an answer): settle as soon as the message is complete,
   * refuse a byte past it at once, and leave the FIN to be read in the background (the stream is
   * cancelled if data comes instead), so the answer is not held for a FIN in a later packet.
   */
  until?: "fin" | "message";
  /** Stops the read: the call rejects with the signal's reason (a deadline, say). */
  signal?: AbortSignal;
  /**
   * A deadline as an entry on this lane (one timer for every read of a listener, no
   * AbortController or listener per stream): when it fires, the stream is cancelled and the call
   * rejects with a {@linkcode DoqReadTimeout}.
   */
  lane?: TimerLane;
}

/** A read given up at its lane's deadline (see {@linkcode ReadDoqMessageOptions.lane}). */
export class DoqReadTimeout extends Error {
  constructor(ms: number) {
    super(`DoQ stream: no message and FIN within ${ms} ms`);
    this.name = "DoqReadTimeout";
  }
}

/** The first buffer a byte stream is read into: a query or answer of usual size fits. */
const FIRST_BUFFER_BYTES = 512;

/**
 * Reads the one message of a DoQ stream (see {@linkcode doqMessageOf} for what is refused).
 * Never holds more than {@linkcode MAX_DOQ_STREAM_BYTES}.
 *
 * A byte stream (a QUIC stream's `readable`) is read with a BYOB reader into one buffer of
 * 512 bytes, doubled when it fills: the default reader of Deno's resource streams allocates a
 * 64 KiB chunk per read, which cost a DoQ server about three quarters of its CPU per query in
 * garbage collection. Its reader's lock is released only when the read fails or is aborted; a
 * stream read to its FIN is closed and stays locked (releasing a lock builds a TypeError for the
 * reader's `closed`, a stack trace each time: ~1/6 of a DoQ face's CPU per query). Other streams
 * are read with their default reader, whose lock is released before the call settles (with
 * `until: "message"`, once the FIN has been read).
 *
 * @throws {DoqStreamError} for a stream that breaks the framing; the stream's own error when it
 *   fails (reset, connection lost); the signal's reason when it aborts; a
 *   {@linkcode DoqReadTimeout} at the lane's deadline
 *
 * @example
 * ```ts
 * const query = await readDoqMessage(stream.readable, { signal: AbortSignal.timeout(5000) });
 * const answer = await readDoqMessage(stream.readable, { until: "message" });
 * ```
 */
export async function readDoqMessage(
  readable: ReadableStream<Uint8Array>,
  options: ReadDoqMessageOptions = {},
): Promise<Uint8Array> {
  const byob = byobReaderOf(readable);
  const stream = byob
    ? await readIntoBuffer(byob, options)
    : await readChunks(readable.getReader(), options);
  return doqMessageOf(stream, options.maxMessageSize);
}

/** A BYOB reader of `readable` when it is a byte stream, else `undefined`. */
function byobReaderOf(readable: ReadableStream<Uint8Array>): ReadableStreamBYOBReader | undefined {
  try {
    return readable.getReader({ mode: "byob" });
  } catch (error) {
    if (error instanceof TypeError) return undefined; // not a byte stream
    throw error;
  }
}

/** The stream's bytes (to the FIN, or to the message's end) read into one growing buffer. */
async function readIntoBuffer(
  reader: ReadableStreamBYOBReader,
  options: ReadDoqMessageOptions,
): Promise<Uint8Array> {
  const toFin = (options.until ?? "fin") === "fin";
  const { signal, lane } = options;
  let buffer = new Uint8Array(FIRST_BUFFER_BYTES);
  let have = 0;
  let need = -1; // prefix and message, once the prefix is in (`until: "message"` only)
  let complete = false;
  let ended = false;
  let expired = false;
  const entry = lane?.add(() => {
    expired = true;
    reader.cancel().catch(() => {}); // settles the pending read
  });
  try {
    for (;;) {
      if (have === buffer.byteLength) {
        if (have > MAX_DOQ_STREAM_BYTES) {
          throw new DoqStreamError("oversize", `more than ${MAX_DOQ_STREAM_BYTES} bytes`);
        }
        const bigger = new Uint8Array(Math.min(2 * have, MAX_DOQ_STREAM_BYTES + 1));
        bigger.set(buffer);
        buffer = bigger;
      }
      const read = reader.read(buffer.subarray(have));
      const { value, done } = await (signal ? abortable(read, signal) : read);
      if (expired) throw new DoqReadTimeout(lane!.ms);
      // The read took the buffer over and hands it back in `value`.
      if (value) buffer = new Uint8Array(value.buffer);
      if (done) {
        ended = true;
        break;
      }
      have += value.byteLength;
      if (!toFin) {
        if (need < 0 && have >= 2) need = 2 + getUint16(buffer, 0);
        if (need >= 0 && have > need) {
          throw new DoqStreamError("trailing-data", "data after the message");
        }
        if (have === need) {
          complete = true;
          break;
        }
      }
    }
  } finally {
    if (entry) lane!.cancel(entry);
    if (complete) awaitFin(reader, () => reader.read(new Uint8Array(1)), false);
    else if (!ended) reader.releaseLock();
  }
  return buffer.subarray(0, have);
}

/** The stream's bytes (to the FIN, or to the message's end) read chunk by chunk. */
async function readChunks(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  options: ReadDoqMessageOptions,
): Promise<Uint8Array> {
  const toFin = (options.until ?? "fin") === "fin";
  const { signal, lane } = options;
  const chunks: Uint8Array[] = [];
  let have = 0;
  let need = -1; // prefix and message, once the prefix is in (`until: "message"` only)
  let complete = false;
  let expired = false;
  const entry = lane?.add(() => {
    expired = true;
    reader.cancel().catch(() => {}); // settles the pending read
  });
  try {
    for (;;) {
      const { value, done } = await (signal ? abortable(reader.read(), signal) : reader.read());
      if (expired) throw new DoqReadTimeout(lane!.ms);
      if (done) break;
      if (value.byteLength === 0) continue;
      chunks.push(value);
      have += value.byteLength;
      if (!toFin) {
        if (need < 0 && have >= 2) {
          need = 2 +
            getUint16(chunks[0].byteLength >= 2 ? chunks[0] : concatBytes(chunks, have), 0);
        }
        if (need >= 0 && have > need) {
          throw new DoqStreamError("trailing-data", "data after the message");
        }
        if (have === need) {
          complete = true;
          break;
        }
      }
      if (have > MAX_DOQ_STREAM_BYTES) {
        throw new DoqStreamError("oversize", `more than ${MAX_DOQ_STREAM_BYTES} bytes`);
      }
    }
  } finally {
    if (entry) lane!.cancel(entry);
    if (complete) awaitFin(reader, () => reader.read(), true);
    else reader.releaseLock();
  }
  return chunks.length === 1 ? chunks[0] : concatBytes(chunks, have);
}

/**
 * After the whole message: waits in the background for the peer's FIN, so the stream is done on
 * both sides and its resources go, and cancels the stream if more data comes instead. The lock
 * is released then, or (`releaseAtFin` false) only when the FIN did not come.
 */
function awaitFin(
  reader: ReadableStreamGenericReader & { releaseLock(): void },
  read: () => Promise<ReadableStreamReadResult<Uint8Array>>,
  releaseAtFin: boolean,
): void {
  read().then(
    ({ done }) => {
      if (!done) reader.cancel().catch(() => {});
      if (!done || releaseAtFin) reader.releaseLock();
    },
    () => reader.releaseLock(),
  );
}
