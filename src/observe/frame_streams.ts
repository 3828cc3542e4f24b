/**
 * Frame Streams (the transport dnstap rides on, `fstrm`): data frames are a 32-bit big-endian
 * length and the payload; control frames start with a zero length (the escape), then their own
 * length, a control type and fields (only CONTENT_TYPE is defined). A bidirectional sender sends
 * READY with the content types it offers, reads ACCEPT with the one the receiver takes, sends
 * START, then data frames, and at the end STOP, waiting for FINISH.
 *
 * @module
 */

/** Control frame types. */
export const Control = {
  ACCEPT: 0x01,
  START: 0x02,
  STOP: 0x03,
  READY: 0x04,
  FINISH: 0x05,
} as const;

/** The one control field type: a content type. */
const FIELD_CONTENT_TYPE = 0x01;

/** dnstap's content type. */
export const DNSTAP_CONTENT_TYPE = "protobuf:dnstap.Dnstap";

/** Largest control frame read (the reference implementation's limit is 512 bytes). */
export const MAX_CONTROL_FRAME = 512;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A control frame: escape, length, type, and one CONTENT_TYPE field per content type.
 *
 * @example
 * ```ts
 * controlFrame(Control.READY, [DNSTAP_CONTENT_TYPE]);
 * ```
 */
export function controlFrame(type: number, contentTypes: readonly string[] = []): Uint8Array {
  const fields = contentTypes.map((t) => encoder.encode(t));
  const length = 4 + fields.reduce((n, f) => n + 8 + f.length, 0);
  const out = new Uint8Array(8 + length);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0);
  view.setUint32(4, length);
  view.setUint32(8, type);
  let at = 12;
  for (const f of fields) {
    view.setUint32(at, FIELD_CONTENT_TYPE);
    view.setUint32(at + 4, f.length);
    out.set(f, at + 8);
    at += 8 + f.length;
  }
  return out;
}

/** One data frame around `payload`. */
export function dataFrame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, 4);
  return out;
}

/** A control frame as read. */
export interface ControlFrame {
  readonly type: number;
  readonly contentTypes: readonly string[];
}

/**
 * Reads the control frames a receiver sends a sender (ACCEPT, FINISH) from bytes as they arrive
 * in any pieces. A receiver sends no data frames; one, or a control frame over
 * {@linkcode MAX_CONTROL_FRAME}, is a protocol error.
 *
 * @example
 * ```ts
 * const reader = new ControlReader();
 * for (const frame of reader.push(chunk)) if (frame.type === Control.ACCEPT) started();
 * ```
 */
export class ControlReader {
  #buffer = new Uint8Array(0);

  /**
   * Adds bytes; returns the control frames now complete.
   *
   * @throws {RangeError} on a data frame or an oversize or malformed control frame
   */
  push(bytes: Uint8Array): ControlFrame[] {
    const joined = new Uint8Array(this.#buffer.length + bytes.length);
    joined.set(this.#buffer);
    joined.set(bytes, this.#buffer.length);
    const out: ControlFrame[] = [];
    let at = 0;
    const view = new DataView(joined.buffer);
    while (joined.length - at >= 4) {
      if (view.getUint32(at) !== 0) throw new RangeError("frame streams: data frame from receiver");
      if (joined.length - at < 8) break;
      const length = view.getUint32(at + 4);
      if (length < 4 || length > MAX_CONTROL_FRAME) {
        throw new RangeError(`frame streams: control frame of ${length} bytes`);
      }
      if (joined.length - at - 8 < length) break;
      out.push(parseControl(joined.subarray(at + 8, at + 8 + length)));
      at += 8 + length;
    }
    this.#buffer = joined.slice(at);
    return out;
  }
}

function parseControl(body: Uint8Array): ControlFrame {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const type = view.getUint32(0);
  const contentTypes: string[] = [];
  let at = 4;
  while (at < body.length) {
    if (body.length - at < 8) throw new RangeError("frame streams: truncated control field");
    const field = view.getUint32(at);
    const length = view.getUint32(at + 4);
    if (body.length - at - 8 < length) throw new RangeError("frame streams: truncated field");
    if (field === FIELD_CONTENT_TYPE) {
      contentTypes.push(decoder.decode(body.subarray(at + 8, at + 8 + length)));
    }
    at += 8 + length;
  }
  return { type, contentTypes };
}

/** Options of {@linkcode FrameQueue}. */
export interface FrameQueueOptions {
  /** Most bytes held at once (default 4 MiB); past it frames are dropped. */
  maxBytes?: number;
  /** Told of each dropped frame (a metric). Must not throw. */
  onDrop?: () => void;
  /** Told when a frame arrives in an empty queue. Must not throw. */
  onReady?: () => void;
}

/**
 * Data frames waiting for the collector: a push never waits and memory stays under the cap; what
 * does not fit is dropped and counted.
 *
 * @example
 * ```ts
 * const queue = new FrameQueue({ onReady: wake });
 * queue.push(dataFrame(payload));
 * const { bytes, count } = queue.take(); // every frame queued, in one buffer
 * ```
 */
export class FrameQueue {
  readonly #max: number;
  readonly #onDrop?: () => void;
  readonly #onReady?: () => void;
  #frames: Uint8Array[] = [];
  #bytes = 0;

  constructor(options: FrameQueueOptions = {}) {
    this.#max = options.maxBytes ?? 4 << 20;
    this.#onDrop = options.onDrop;
    this.#onReady = options.onReady;
  }

  /** Bytes queued. */
  get size(): number {
    return this.#bytes;
  }

  /** Queues a frame; false (and counted) when it does not fit. */
  push(frame: Uint8Array): boolean {
    if (this.#bytes + frame.length > this.#max) {
      this.#onDrop?.();
      return false;
    }
    this.#frames.push(frame);
    this.#bytes += frame.length;
    if (this.#frames.length === 1) this.#onReady?.();
    return true;
  }

  /** Every frame queued, concatenated, with how many there were; the queue is left empty. */
  take(): { bytes: Uint8Array; count: number } {
    const frames = this.#frames;
    if (frames.length === 0) return { bytes: new Uint8Array(0), count: 0 };
    const out = new Uint8Array(this.#bytes);
    let at = 0;
    for (const f of frames) {
      out.set(f, at);
      at += f.length;
    }
    this.#frames = [];
    this.#bytes = 0;
    return { bytes: out, count: frames.length };
  }

  /** Drops everything queued, counting each frame. */
  clear(): void {
    for (let i = 0; i < this.#frames.length; i++) this.#onDrop?.();
    this.#frames = [];
    this.#bytes = 0;
  }
}
