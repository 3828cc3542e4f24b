/**
 * The receiving side of one HTTP/2 connection's streams, in the manner of the h2 crate's
 * `proto/streams/recv.rs`: DATA counted against the windows we granted (`flow.ts`, with the
 * connection WINDOW_UPDATE queued when due), its padding removed and its frames counted
 * (`bodies.ts`, which also holds the bodies), and header blocks joined (`header_block.ts`) and
 * decoded with the connection's one HPACK decoder under the decoded-list cap. The connection
 * core (`connection.ts`) hands the results to the side.
 *
 * @module
 */
import { uint32Bytes } from "../bytes/uint.ts";
import { BodyBuffers, type BodyStream } from "./bodies.ts";
import { type FlowStream, InFlow } from "./flow.ts";
import { Code, ConnectionError, Flag, FrameType } from "./frames.ts";
import { HeaderBlockReader } from "./header_block.ts";
import { type FieldHandler, HpackDecoder, HpackError } from "./hpack_decode.ts";
import type { FrameOutbox } from "./outbox.ts";

/** Options of {@linkcode StreamReceiver}. */
export interface StreamReceiverOptions {
  /** Each stream's receive window (what we advertised as SETTINGS_INITIAL_WINDOW_SIZE). */
  readonly streamWindow: number;
  /** The largest compressed header block, HEADERS and CONTINUATION together. */
  readonly maxHeaderBytes: number;
  /** The largest decoded header list (RFC 9113 §6.5.2). */
  readonly maxHeaderListSize: number;
  /** Octets of the buffers of the bodies being received, all streams together. */
  readonly maxBufferedBytes: number;
  /** DATA frames received on the open streams, together. */
  readonly maxDataFrames: number;
}

/**
 * Receives the DATA and header blocks of one connection's streams.
 *
 * @example
 * ```ts
 * const recv = new StreamReceiver(outbox, options);
 * const data = recv.data(flags, id, payload, streams.get(id)); // undefined: stream window passed
 * const block = recv.blocks.headers(flags, id, payload);
 * if (block) recv.decode(block, (name, value) => fields.push([name, value]));
 * ```
 */
export class StreamReceiver<S extends FlowStream & BodyStream> {
  /** The windows we grant. */
  readonly flow: InFlow;
  /** The bodies being received. */
  readonly bodies: BodyBuffers;
  /** Header blocks being joined. */
  readonly blocks: HeaderBlockReader;
  readonly #decoder = new HpackDecoder();
  readonly #maxListSize: number;
  readonly #outbox: FrameOutbox;

  /** @param outbox where connection WINDOW_UPDATE frames go */
  constructor(outbox: FrameOutbox, options: StreamReceiverOptions) {
    this.#outbox = outbox;
    this.flow = new InFlow(options.streamWindow);
    this.bodies = new BodyBuffers(options.maxBufferedBytes, options.maxDataFrames);
    this.blocks = new HeaderBlockReader(options.maxHeaderBytes);
    this.#maxListSize = options.maxHeaderListSize;
  }

  /**
   * A DATA frame on stream `id`, `stream` if it is open: counts it against the windows and the
   * DATA-frame cap, and returns its data without padding (a view of `payload`), or `undefined`
   * when it goes past the stream's window (a stream error, FLOW_CONTROL_ERROR).
   *
   * @throws {ConnectionError} for stream 0, bad padding, DATA past the connection window or
   *   the DATA-frame cap
   */
  data(
    flags: number,
    id: number,
    payload: Uint8Array,
    stream: S | undefined,
  ): Uint8Array | undefined {
    if (id === 0) throw new ConnectionError(Code.ProtocolError, "DATA on stream 0");
    const increment = this.flow.take(payload.length);
    if (increment > 0) this.#outbox.emit(FrameType.WindowUpdate, 0, 0, uint32Bytes(increment));
    let data = payload;
    if (flags & Flag.Padded) {
      const pad = payload[0] ?? 0;
      if (payload.length < 1 + pad) throw new ConnectionError(Code.ProtocolError, "bad padding");
      data = payload.subarray(1, payload.length - pad);
    }
    if (stream) {
      this.bodies.countFrame(stream);
      // The padding counts against the windows too.
      if (!this.flow.takeStream(stream, payload.length)) return undefined;
    }
    return data;
  }

  /**
   * Decodes a complete header block, handing each field to `onField`, to its end (the table's
   * state spans streams); false when the decoded list went over the cap (the fields handed
   * over are an incomplete list: drop them).
   *
   * @throws {ConnectionError} COMPRESSION_ERROR for a block that cannot be decoded
   */
  decode(block: Uint8Array, onField: FieldHandler): boolean {
    try {
      return this.#decoder.decode(block, onField, this.#maxListSize);
    } catch (error) {
      if (error instanceof HpackError) {
        throw new ConnectionError(Code.CompressionError, error.message);
      }
      throw error;
    }
  }
}
