/**
 * What a side (the client, `client.ts`, or the server, `server.ts`) gives the HTTP/2
 * connection core (`connection.ts`): its options ({@linkcode H2CoreOptions}), the shape of its
 * streams ({@linkcode H2Stream}), and the hooks it answers ({@linkcode H2Side}), which the core
 * calls as frames arrive and streams end.
 *
 * @module
 */
import type { BodyStream } from "./bodies.ts";
import type { H2Clock } from "./clock.ts";
import type { DeadlineStream } from "./deadlines.ts";
import type { H2Error } from "./error.ts";
import type { FlowStream } from "./flow.ts";
import type { ParkedStream } from "./parked.ts";

/**
 * What the core keeps of each open stream; a side's stream type extends it. Each piece of the
 * core documents its fields (`flow.ts`, `parked.ts`, `deadlines.ts`, `bodies.ts`); all start at
 * 0 or `undefined`, but `pending`, a body to send.
 */
export interface H2Stream extends FlowStream, ParkedStream, DeadlineStream, BodyStream {
  /** Stream ID (0 while a client request waits for a slot). */
  id: number;
}

/** What a side tells the core. */
export interface H2CoreOptions {
  /** This end; the peer is the other one (named in errors). */
  readonly side: "client" | "server";
  /**
   * SETTINGS sent first: identifier and value pairs. Its INITIAL_WINDOW_SIZE (else 65 535) is
   * each stream's receive window, never refilled: DATA beyond it resets the stream.
   */
  readonly settings: readonly (readonly [number, number])[];
  /**
   * Largest header block accepted from the peer, HEADERS and its CONTINUATION frames together;
   * more (or more than `MAX_CONTINUATIONS` frames) is a connection error (ENHANCE_YOUR_CALM).
   */
  readonly maxHeaderBytes: number;
  /**
   * Largest decoded header list accepted (name octets + value octets + 32 per field), counted
   * while decoding; over it the block goes to `onHeaderListTooLarge` instead of `onHeaderBlock`.
   */
  readonly maxHeaderListSize: number;
  /** With no stream open for this long, the connection drains (GOAWAY, then closes). */
  readonly idleTimeoutMs: number;
  /**
   * The read deadline (0: none): the peer's SETTINGS must arrive this long after start (else
   * GOAWAY and close), a header block must end this long after its HEADERS (else the same,
   * since HPACK cannot skip it), a stream handed to `H2Core.awaitRest` must be
   * finished by the peer this long after, and a body waiting for the peer's flow-control window
   * must make progress within this long (else the stream is reset, and when no stream is left
   * but those waiting on the peer, the connection drains).
   */
  readonly readTimeoutMs: number;
  /**
   * Body bytes waiting for the peer's window, all streams together, above which a body that
   * would wait too is not kept: its stream is reset (CANCEL).
   */
  readonly maxParkedBytes: number;
  /**
   * Bytes of the buffers holding bodies being received, all streams together; past it the
   * connection ends with GOAWAY(ENHANCE_YOUR_CALM).
   */
  readonly maxBufferedBytes: number;
  /** DATA frames received on the streams open now, together; past it the same. */
  readonly maxDataFrames: number;
  /**
   * Stream resets the peer may cause (its RST_STREAM frames, and the streams we reset for its
   * flow-control faults): this many at once, and this many more each second after; past them
   * GOAWAY(ENHANCE_YOUR_CALM) (rapid reset, CVE-2023-44487, on a server).
   */
  readonly resetBudget: readonly [burst: number, perSecond: number];
  /** A socket write unfinished after this long ends the connection. */
  readonly writeTimeoutMs: number;
  /** Bytes queued for the socket above which reading stops until they are written. */
  readonly writeHighWaterMark: number;
  /** Read buffer bytes: the starting size, and the size it doubles up to when reads fill it. */
  readonly readBuffer: readonly [initial: number, max: number];
  /** The time and timers (deadlines, the idle timer, the write deadline). Default the runtime's. */
  readonly clock?: H2Clock;
}

/**
 * The hooks a side answers (the core, `H2Core`, extends this and calls them); a hook may throw a
 * `ConnectionError` (`frames.ts`) to end the connection with GOAWAY. The abstract ones must be
 * answered; the others default to doing nothing.
 */
export abstract class H2Side<S extends H2Stream> {
  /** Open streams by ID. */
  protected readonly streams: Map<number, S> = new Map();

  /** Sees each field of the header block being decoded (binary strings). */
  protected abstract onHeaderField(name: string, value: string): void;

  /** A complete header block arrived on stream `id`; its fields went to `onHeaderField`. */
  protected abstract onHeaderBlock(id: number, endStream: boolean): void;

  /**
   * DATA arrived (padding removed, connection window accounted for); `stream` is the open stream
   * with that ID, if any. `data` is valid only during the call.
   */
  protected abstract onData(
    id: number,
    stream: S | undefined,
    data: Uint8Array,
    endStream: boolean,
  ): void;

  /** The peer reset an open stream. */
  protected abstract onStreamReset(stream: S, code: number): void;

  /**
   * The core reset an open stream for a fault of its own finding (a flow-control or
   * WINDOW_UPDATE error, a missed read deadline); RST_STREAM is queued. The side settles the
   * stream and forgets it.
   */
  protected abstract onStreamError(stream: S, error: H2Error): void;

  /**
   * A complete header block arrived on stream `id` whose decoded list is over
   * `maxHeaderListSize`: the fields handed to `onHeaderField` for it are an incomplete list
   * (drop them). The side answers or resets the stream; it may call `offend`.
   */
  protected abstract onHeaderListTooLarge(id: number, endStream: boolean): void;

  /**
   * The connection is ending (once): settle what is open. `streams` still holds the open
   * streams and is cleared after. `failed` is false for an orderly end (drained, closed by us).
   */
  protected abstract onTerminate(reason: H2Error, failed: boolean): void;

  /** The peer's SETTINGS were applied and acknowledged. */
  protected onPeerSettings(_maxConcurrentStreams: number | undefined, _first: boolean): void {}

  /** The peer sent GOAWAY; the core drains afterwards. */
  protected onPeerGoaway(_lastId: number, _code: number): void {}

  /** A stream was forgotten (a slot is free). */
  protected onStreamEnded(): void {}

  /** The last of a stream's body was queued. */
  protected onBodySent(_stream: S): void {}

  /**
   * Every frame of one read was handled (and the connection is still open): a side that
   * queued work while reading (the server's requests) starts it now, so that a stream the peer
   * resets later in the same read never starts.
   */
  protected onFramesRead(): void {}

  /** Whether nothing is open, so the idle timer may run and a drain may close. */
  protected isIdle(): boolean {
    return this.streams.size === 0;
  }
}
