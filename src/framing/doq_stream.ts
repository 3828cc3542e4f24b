/**
 * The framing of a DNS-over-QUIC stream (RFC 9250 §4.2): each bidirectional stream carries
 * exactly one DNS message in each direction, with the 2-byte length prefix of DNS over TCP, then
 * the sender's FIN. Both sides of DoQ read a stream here: the face its query, the upstream its
 * answer.
 *
 * @module
 */
import { abortable } from "../async/abortable.ts";
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
}

/**
 * Reads the one message of a DoQ stream (see {@linkcode doqMessageOf} for what is refused).
 * Never holds more than {@linkcode MAX_DOQ_STREAM_BYTES}; the reader's lock is released before
 * it settles (with `until: "message"`, once the FIN has been read).
 *
 * @throws {DoqStreamError} for a stream that breaks the framing; the stream's own error when it
 *   fails (reset, connection lost); the signal's reason when it aborts
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
  const toFin = (options.until ?? "fin") === "fin";
  const { signal } = options;
  const reader = readable.getReader();
  const chunks: Uint8Array[] = [];
  let have = 0;
  let need = -1; // prefix and message, once the prefix is in (`until: "message"` only)
  let complete = false;
  try {
    for (;;) {
      const { value, done } = await (signal ? abortable(reader.read(), signal) : reader.read());
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
    if (complete) awaitFin(reader);
    else reader.releaseLock();
  }
  return doqMessageOf(
    chunks.length === 1 ? chunks[0] : concatBytes(chunks, have),
    options.maxMessageSize,
  );
}

/**
 * After the whole message: waits in the background for the peer's FIN, so the stream is done on
 * both sides and its resources go, and cancels the stream if more data comes instead.
 */
function awaitFin(reader: ReadableStreamDefaultReader<Uint8Array>): void {
  reader.read().then(
    ({ done }) => {
      if (!done) reader.cancel().catch(() => {});
    },
    () => {},
  ).finally(() => reader.releaseLock());
}
