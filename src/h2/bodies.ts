/**
 * The bodies one HTTP/2 connection is receiving: one buffer per stream, and two bounds over the
 * open streams together, the octets of those buffers and the DATA frames received (many small
 * frames cost more than their octets say: CVE-2019-9518's empty frames too). Past either, the
 * connection ends with GOAWAY(ENHANCE_YOUR_CALM).
 *
 * @module
 */
import { Code, ConnectionError } from "./frames.ts";

/** What the body buffers keep on each stream (a part of `H2Stream`). */
export interface BodyStream {
  /** DATA frames received on this stream. Start 0. */
  dataFrames: number;
  /** The body received so far, in one buffer ({@linkcode BodyBuffers.append}). Start `undefined`. */
  buffer: Uint8Array | undefined;
  /** Bytes of `buffer` in use. Start 0. */
  buffered: number;
}

const EMPTY = new Uint8Array(0);

/**
 * The receive buffers of one connection's streams and their bounds.
 *
 * @example
 * ```ts
 * const bodies = new BodyBuffers(1024 * 1024, 1_024);
 * bodies.countFrame(stream); // throws past 1 024 DATA frames on the open streams
 * bodies.append(stream, data, 65_535, declaredLength); // throws past 1 MiB of buffers
 * const body = bodies.take(stream);
 * bodies.release(stream); // when the stream is forgotten
 * ```
 */
export class BodyBuffers {
  /** Octets of the buffers of open streams. */
  #bytes = 0;
  /** DATA frames received on the open streams. */
  #frames = 0;

  /**
   * @param maxBytes octets of the buffers of the open streams, together
   * @param maxFrames DATA frames received on the open streams, together
   */
  constructor(readonly maxBytes: number, readonly maxFrames: number) {}

  /** Octets of the buffers held now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** DATA frames counted on the streams still held. */
  get frames(): number {
    return this.#frames;
  }

  /**
   * Counts one DATA frame received on `stream`.
   *
   * @throws {ConnectionError} ENHANCE_YOUR_CALM past `maxFrames` on the open streams
   */
  countFrame(stream: BodyStream): void {
    stream.dataFrames++;
    if (++this.#frames > this.maxFrames) {
      throw new ConnectionError(
        Code.EnhanceYourCalm,
        `over ${this.maxFrames} DATA frames on the open streams`,
      );
    }
  }

  /**
   * Appends body bytes received on `stream` to its buffer: made `size` bytes at once when the
   * side knows the length (a declared content-length), else as large as what came and doubled
   * as more comes, never past `max` unless the bytes need it (the side refuses bodies over its
   * cap before calling).
   *
   * @throws {ConnectionError} ENHANCE_YOUR_CALM when the buffers would pass `maxBytes`
   */
  append(stream: BodyStream, data: Uint8Array, max: number, size = 0): void {
    const needed = stream.buffered + data.length;
    let buffer = stream.buffer;
    if (buffer === undefined || needed > buffer.length) {
      const wanted = buffer === undefined ? size : 2 * buffer.length;
      const length = Math.max(needed, Math.min(max, wanted));
      this.#bytes += length - (buffer?.length ?? 0);
      if (this.#bytes > this.maxBytes) {
        throw new ConnectionError(
          Code.EnhanceYourCalm,
          `bodies being received over ${this.maxBytes} bytes`,
        );
      }
      const grown = new Uint8Array(length);
      if (buffer !== undefined) grown.set(buffer.subarray(0, stream.buffered));
      stream.buffer = buffer = grown;
    }
    buffer.set(data, stream.buffered);
    stream.buffered = needed;
  }

  /** The body received on `stream` (empty if none came); its buffer is no longer counted. */
  take(stream: BodyStream): Uint8Array {
    const buffer = stream.buffer;
    if (buffer === undefined) return EMPTY;
    const n = stream.buffered;
    this.#drop(stream);
    return n === buffer.length ? buffer : buffer.slice(0, n);
  }

  /** Lets go of a stream that is forgotten: its DATA frames and its buffer are no longer counted. */
  release(stream: BodyStream): void {
    this.#frames -= stream.dataFrames;
    stream.dataFrames = 0;
    this.#drop(stream);
  }

  #drop(stream: BodyStream): void {
    if (stream.buffer === undefined) return;
    this.#bytes -= stream.buffer.length;
    stream.buffer = undefined;
    stream.buffered = 0;
  }
}
