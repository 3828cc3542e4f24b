/**
 * SETTINGS (RFC 9113 §6.5): ours encoded once at start, and the peer's read under bounds: a
 * frame holds at most {@linkcode MAX_SETTINGS_ENTRIES} entries, and a peer may send
 * {@linkcode SETTINGS_BURST} frames at once and {@linkcode SETTINGS_RATE} a second after (each
 * costs us an ACK and a walk of the open streams). The connection core (`connection.ts`)
 * applies what they say.
 *
 * @module
 */
import { getUint16, getUint32 } from "../bytes/uint.ts";
import { TokenBucket } from "./budget.ts";
import {
  Code,
  ConnectionError,
  DEFAULT_MAX_FRAME_SIZE,
  LARGEST_MAX_FRAME_SIZE,
  MAX_WINDOW,
  Setting,
} from "./frames.ts";

/** SETTINGS frames (not ACKs) a peer may send at once; {@linkcode SETTINGS_RATE} a second after. */
export const SETTINGS_BURST = 32;
/** See {@linkcode SETTINGS_BURST}. */
export const SETTINGS_RATE = 8;
/** Entries one SETTINGS frame may hold (nghttp2's limit); more: GOAWAY(ENHANCE_YOUR_CALM). */
export const MAX_SETTINGS_ENTRIES = 32;

/** What one SETTINGS frame from the peer set, of what the core uses (the last of repeats). */
export interface PeerSettings {
  /** SETTINGS_MAX_CONCURRENT_STREAMS. */
  readonly maxConcurrentStreams: number | undefined;
  /** SETTINGS_INITIAL_WINDOW_SIZE, at most 2^31-1. */
  readonly initialWindowSize: number | undefined;
  /** SETTINGS_MAX_FRAME_SIZE, between 16 384 and 2^24-1. */
  readonly maxFrameSize: number | undefined;
}

/**
 * A SETTINGS frame's payload: each identifier and value pair in 6 octets.
 *
 * @example
 * ```ts
 * encodeSettings([[Setting.MaxConcurrentStreams, 128]]); // 00 03 00 00 00 80
 * ```
 */
export function encodeSettings(settings: readonly (readonly [number, number])[]): Uint8Array {
  const payload = new Uint8Array(settings.length * 6);
  const view = new DataView(payload.buffer);
  settings.forEach(([key, value], i) => {
    view.setUint16(i * 6, key);
    view.setUint32(i * 6 + 2, value);
  });
  return payload;
}

/**
 * Reads the peer's SETTINGS frames (not their ACKs) on one connection, within the bounds above.
 *
 * @example
 * ```ts
 * const reader = new SettingsReader(Date.now());
 * const peer = reader.read(payload, Date.now()); // throws a ConnectionError for a bad frame
 * if (peer.maxFrameSize !== undefined) maxFrame = peer.maxFrameSize;
 * ```
 */
export class SettingsReader {
  /** SETTINGS frames the peer may still send now. */
  readonly #budget: TokenBucket;

  /** @param now the time the connection starts (ms) */
  constructor(now: number) {
    this.#budget = new TokenBucket(SETTINGS_BURST, SETTINGS_RATE, now);
  }

  /**
   * What the SETTINGS frame `payload`, received at `now` (ms), says.
   *
   * @throws {ConnectionError} FRAME_SIZE_ERROR for a payload not made of 6-octet entries,
   *   ENHANCE_YOUR_CALM for too many entries or frames, FLOW_CONTROL_ERROR for an initial
   *   window over 2^31-1, PROTOCOL_ERROR for a frame size out of range
   */
  read(payload: Uint8Array, now: number): PeerSettings {
    if (payload.length % 6 !== 0) throw new ConnectionError(Code.FrameSizeError, "bad SETTINGS");
    if (payload.length > MAX_SETTINGS_ENTRIES * 6) {
      throw new ConnectionError(
        Code.EnhanceYourCalm,
        `SETTINGS with ${payload.length / 6} entries (at most ${MAX_SETTINGS_ENTRIES})`,
      );
    }
    if (!this.#budget.take(now)) {
      throw new ConnectionError(
        Code.EnhanceYourCalm,
        `SETTINGS frames over ${SETTINGS_BURST} at once or ${SETTINGS_RATE} a second`,
      );
    }
    let maxConcurrentStreams: number | undefined;
    let initialWindowSize: number | undefined;
    let maxFrameSize: number | undefined;
    for (let at = 0; at < payload.length; at += 6) {
      const key = getUint16(payload, at);
      const value = getUint32(payload, at + 2);
      if (key === Setting.MaxConcurrentStreams) maxConcurrentStreams = value;
      else if (key === Setting.InitialWindowSize) {
        if (value > MAX_WINDOW) {
          throw new ConnectionError(Code.FlowControlError, "initial window too large");
        }
        initialWindowSize = value; // the last one stands: applied once, whatever the repeats
      } else if (key === Setting.MaxFrameSize) {
        if (value < DEFAULT_MAX_FRAME_SIZE || value > LARGEST_MAX_FRAME_SIZE) {
          throw new ConnectionError(Code.ProtocolError, "bad MAX_FRAME_SIZE");
        }
        maxFrameSize = value;
      }
    }
    return { maxConcurrentStreams, initialWindowSize, maxFrameSize };
  }
}
