/**
 * HTTP/2 framing (RFC 9113 §4, §6, §7) under the connection core (`connection.ts`): frame
 * types, flags, error codes, settings, and the reader that cuts a byte stream into frames.
 *
 * @module
 */
import { concatBytes } from "../bytes/concat.ts";

/** The connection preface a client sends first (RFC 9113 §3.4). */
export const PREFACE: Uint8Array = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** Frame types. */
export const FrameType = {
  Data: 0,
  Headers: 1,
  Priority: 2,
  RstStream: 3,
  Settings: 4,
  PushPromise: 5,
  Ping: 6,
  Goaway: 7,
  WindowUpdate: 8,
  Continuation: 9,
} as const;

/** Frame flags (END_STREAM and ACK share a bit on different frame types). */
export const Flag = {
  EndStream: 0x1,
  Ack: 0x1,
  EndHeaders: 0x4,
  Padded: 0x8,
  Priority: 0x20,
} as const;

/** Setting identifiers (RFC 9113 §6.5.2) used here. */
export const Setting = {
  EnablePush: 0x2,
  MaxConcurrentStreams: 0x3,
  InitialWindowSize: 0x4,
  MaxFrameSize: 0x5,
  MaxHeaderListSize: 0x6,
} as const;

/** Error codes (RFC 9113 §7) used here. */
export const Code = {
  NoError: 0,
  ProtocolError: 1,
  FlowControlError: 3,
  StreamClosed: 5,
  FrameSizeError: 6,
  RefusedStream: 7,
  Cancel: 8,
  CompressionError: 9,
  EnhanceYourCalm: 11,
} as const;

/**
 * SETTINGS_MAX_FRAME_SIZE until the peer's SETTINGS say otherwise, and the smallest it may say
 * (RFC 9113 §6.5.2).
 */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;

/** The largest SETTINGS_MAX_FRAME_SIZE a peer may announce (2^24 - 1). */
export const LARGEST_MAX_FRAME_SIZE = 16_777_215;

/** The largest frame payload either side accepts: {@linkcode DEFAULT_MAX_FRAME_SIZE} (we never raise it). */
export const MAX_FRAME = DEFAULT_MAX_FRAME_SIZE;

/**
 * The flow-control window of a new connection, and of each stream until SETTINGS_INITIAL_WINDOW_SIZE
 * says otherwise (RFC 9113 §6.9.2).
 */
export const DEFAULT_WINDOW = 65_535;

/** The largest stream ID and flow-control window (2^31 - 1). */
export const MAX_WINDOW = 0x7fffffff;

/**
 * A protocol violation by the peer (RFC 9113 §5.4.1): thrown inside frame handling, it ends the
 * connection with GOAWAY(`code`).
 */
export class ConnectionError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = "ConnectionError";
  }
}

/** Called per frame; the payload is a view valid only during the call. Return false to stop. */
export type FrameHandler = (
  type: number,
  flags: number,
  id: number,
  payload: Uint8Array,
) => boolean | void;

/**
 * Cuts the bytes a connection reads into frames, keeping a partial frame for the next read.
 * Throws {@linkcode ConnectionError} (FRAME_SIZE_ERROR) for a frame over {@linkcode MAX_FRAME}.
 */
export class FrameReader {
  #pending: Uint8Array | undefined;

  /** Feeds `data` (may be reused by the caller after this returns) to `onFrame`. */
  feed(data: Uint8Array, onFrame: FrameHandler): void {
    if (this.#pending) {
      data = concatBytes([this.#pending, data]);
      this.#pending = undefined;
    }
    let pos = 0;
    while (data.length - pos >= 9) {
      const length = (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2];
      if (length > MAX_FRAME) {
        throw new ConnectionError(Code.FrameSizeError, `frame of ${length} bytes`);
      }
      if (data.length - pos < 9 + length) break;
      const id = ((data[pos + 5] & 0x7f) << 24 | data[pos + 6] << 16 | data[pos + 7] << 8 |
        data[pos + 8]) >>> 0;
      const go = onFrame(
        data[pos + 3],
        data[pos + 4],
        id,
        data.subarray(pos + 9, pos + 9 + length),
      );
      pos += 9 + length;
      if (go === false) return;
    }
    if (pos < data.length) this.#pending = data.slice(pos);
  }
}
