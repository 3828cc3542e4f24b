/**
 * HTTP/2 flow control (RFC 9113 §5.2, §6.9), in the manner of Go's `x/net/http2` `flow.go`:
 * the windows we grant the peer for what it sends ({@linkcode InFlow}) and the windows the peer
 * grants us ({@linkcode OutFlow}). They count and check; the connection core (`connection.ts`)
 * sends the frames and ends what they refuse.
 *
 * @module
 */
import { Code, ConnectionError, DEFAULT_WINDOW, MAX_WINDOW } from "./frames.ts";

/** Connection receive window we keep open: opened at start, refilled each time half is used. */
export const CONNECTION_WINDOW = 16 * 1024 * 1024;

/** What flow control keeps on each stream (a part of `H2Stream`). */
export interface FlowStream {
  /** Our send window on this stream. */
  sendWindow: number;
  /** Flow-controlled bytes received on this stream (DATA payloads with their padding); start 0. */
  received: number;
}

/**
 * The windows we grant (inflow): the connection's, refilled each time half of
 * {@linkcode CONNECTION_WINDOW} is used, and each stream's, `streamWindow` octets for its whole
 * life (what we advertised as SETTINGS_INITIAL_WINDOW_SIZE, never refilled: the bodies here
 * are small).
 *
 * @example
 * ```ts
 * const inflow = new InFlow(65_535);
 * const increment = inflow.take(payload.length); // throws past the connection window
 * if (increment > 0) sendWindowUpdate(0, increment);
 * if (!inflow.takeStream(stream, payload.length)) resetStream(stream, Code.FlowControlError);
 * ```
 */
export class InFlow {
  /** Connection-level bytes received since we last opened the window. */
  #received = 0;

  /** @param streamWindow each stream's receive window (what we advertised) */
  constructor(readonly streamWindow: number) {}

  /**
   * The WINDOW_UPDATE increment sent at start on the connection: it takes the connection
   * window from {@linkcode DEFAULT_WINDOW} to {@linkcode CONNECTION_WINDOW}.
   */
  get opening(): number {
    return CONNECTION_WINDOW - DEFAULT_WINDOW;
  }

  /**
   * Counts `n` flow-controlled octets (a DATA payload with its padding) against the connection
   * window; returns the connection WINDOW_UPDATE increment to send now (0: none yet).
   *
   * @throws {ConnectionError} FLOW_CONTROL_ERROR when they go past what we granted
   */
  take(n: number): number {
    // RFC 9113 §6.9.1: the connection window is what we granted since the last refill.
    if (this.#received + n > CONNECTION_WINDOW) {
      throw new ConnectionError(Code.FlowControlError, "DATA beyond the connection window");
    }
    this.#received += n;
    if (this.#received < CONNECTION_WINDOW / 2) return 0;
    const increment = this.#received;
    this.#received = 0;
    return increment;
  }

  /**
   * Counts `n` flow-controlled octets against `stream`'s window; false when they go past it (a
   * stream error: FLOW_CONTROL_ERROR for that stream alone).
   */
  takeStream(stream: FlowStream, n: number): boolean {
    stream.received += n;
    return stream.received <= this.streamWindow;
  }
}

/**
 * The windows the peer grants (outflow): the connection's and each stream's, both
 * {@linkcode DEFAULT_WINDOW} until the peer's SETTINGS and WINDOW_UPDATE frames change them. A
 * DATA frame may carry at most the smaller of the two (and the peer's frame size).
 *
 * @example
 * ```ts
 * const outflow = new OutFlow();
 * outflow.open(stream);
 * const n = Math.min(body.length, outflow.room(stream, peerMaxFrame));
 * outflow.spend(stream, n);
 * ```
 */
export class OutFlow {
  /** Our connection-level send window. */
  #connection = DEFAULT_WINDOW;
  /** The peer's SETTINGS_INITIAL_WINDOW_SIZE: each new stream's send window. */
  #initial = DEFAULT_WINDOW;

  /** Our connection-level send window now. */
  get connection(): number {
    return this.#connection;
  }

  /** A new stream's send window (the peer's SETTINGS_INITIAL_WINDOW_SIZE). */
  get initial(): number {
    return this.#initial;
  }

  /** Gives a stream that has just opened its send window. */
  open(stream: FlowStream): void {
    stream.sendWindow = this.#initial;
  }

  /** Octets one DATA frame on `stream` may carry now: 0 or less when a window is shut. */
  room(stream: FlowStream, maxFrame: number): number {
    return Math.min(maxFrame, this.#connection, stream.sendWindow);
  }

  /** Counts `n` octets sent on `stream` against both windows. */
  spend(stream: FlowStream, n: number): void {
    this.#connection -= n;
    stream.sendWindow -= n;
  }

  /**
   * Applies the peer's new SETTINGS_INITIAL_WINDOW_SIZE (at most {@linkcode MAX_WINDOW}, checked
   * by the caller) to the open `streams`: each window moves by the difference (RFC 9113 §6.9.2).
   *
   * @throws {ConnectionError} FLOW_CONTROL_ERROR when that takes a window past 2^31-1
   */
  setInitial(window: number, streams: Iterable<FlowStream>): void {
    if (window === this.#initial) return;
    const delta = window - this.#initial;
    this.#initial = window;
    for (const s of streams) {
      s.sendWindow += delta;
      // RFC 9113 §6.9.2: a change that takes a window past 2^31-1 is a connection error.
      if (s.sendWindow > MAX_WINDOW) {
        throw new ConnectionError(Code.FlowControlError, "stream window overflow");
      }
    }
  }

  /**
   * A WINDOW_UPDATE on the connection (stream 0) opens the connection window by `increment`.
   *
   * @throws {ConnectionError} PROTOCOL_ERROR for an increment of 0, FLOW_CONTROL_ERROR when the
   *   window would pass 2^31-1
   */
  growConnection(increment: number): void {
    if (increment === 0) throw new ConnectionError(Code.ProtocolError, "WINDOW_UPDATE of 0");
    this.#connection += increment;
    if (this.#connection > MAX_WINDOW) {
      throw new ConnectionError(Code.FlowControlError, "window overflow");
    }
  }

  /**
   * A WINDOW_UPDATE on `stream` opens its window by `increment`. Returns `Code.NoError` (0), or
   * the code of the stream error it is (RFC 9113 §6.9, §6.9.1: PROTOCOL_ERROR for an increment
   * of 0, FLOW_CONTROL_ERROR past 2^31-1), leaving the window as it was.
   */
  growStream(stream: FlowStream, increment: number): number {
    if (increment === 0) return Code.ProtocolError;
    if (stream.sendWindow + increment > MAX_WINDOW) return Code.FlowControlError;
    stream.sendWindow += increment;
    return Code.NoError;
  }
}
