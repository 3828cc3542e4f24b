/**
 * The HTTP/2 connection core (RFC 9113) that the client (`client.ts`) and the server
 * (`server.ts`) specialise. It owns everything both ends do alike: the read loop and frame
 * dispatch, the SETTINGS exchange and its ACK, PING, flow control both ways (the peer's windows
 * for what we send, WINDOW_UPDATE for what we receive), CONTINUATION assembly under a size cap,
 * HPACK decoding with the connection's one dynamic table, RST_STREAM with a reset-flood guard,
 * GOAWAY, the idle timer, graceful drain, and the outbox that sends one write per event-loop turn.
 *
 * Resource bounds, both ends: the decoded header list is capped while it is decoded
 * (`maxHeaderListSize`, RFC 9113 §6.5.2), the compressed block and its CONTINUATION frames are
 * capped, DATA beyond the windows we advertised is a flow-control error, a peer's offences are
 * counted ({@linkcode MAX_OFFENCES} end the connection), one read-deadline timer covers the
 * peer's SETTINGS, an unfinished header block, the streams a side hands to `awaitRest` and the
 * bodies that wait for the peer's window without progress, and reading stops while the outbox
 * is over its high-water mark. Bodies that wait for window are capped in bytes
 * (`maxParkedBytes`); bodies received are held in one buffer per stream
 * ({@linkcode H2Core.appendBody}), capped in bytes and in DATA frames for the connection; stream
 * resets and SETTINGS frames are rate-limited (token buckets: a burst, then so many a second),
 * and a SETTINGS frame is capped in entries.
 *
 * A side extends {@linkcode H2Core} and answers its hooks (`onHeaderField`, `onHeaderBlock`,
 * `onHeaderListTooLarge`, `onData`, `onStreamReset`, `onStreamError`, `onTerminate`, and
 * optionally the others); a hook may throw a {@linkcode ConnectionError} to end the connection
 * with GOAWAY.
 *
 * Runtime-free: it runs over an {@linkcode H2Socket} the edge supplies (TLS with ALPN `h2`).
 *
 * @module
 */
import { concatBytes } from "../bytes/concat.ts";
import { getUint16, getUint32, uint32Bytes } from "../bytes/uint.ts";
import {
  Code,
  ConnectionError,
  Flag,
  FrameReader,
  FrameType,
  MAX_WINDOW,
  PREFACE,
  Setting,
} from "./frames.ts";
import { TokenBucket } from "./budget.ts";
import { type FieldHandler, HpackDecoder, HpackError } from "./hpack_decode.ts";
import { FrameOutbox } from "./outbox.ts";
import type { H2Socket } from "./socket.ts";

/**
 * Why a connection ended, or why a request on it failed. `retryable` marks failures that a
 * fresh connection may fix (the peer closed or went away, a stream was refused), as opposed to a
 * peer that broke the protocol.
 */
export class H2Error extends Error {
  constructor(message: string, readonly retryable: boolean, options?: ErrorOptions) {
    super(message, options);
    this.name = "H2Error";
  }
}

/** What the core keeps of each open stream; a side's stream type extends it. */
export interface H2Stream {
  /** Stream ID (0 while a client request waits for a slot). */
  id: number;
  /** Our send window on this stream. */
  sendWindow: number;
  /** Body bytes not yet sent (waiting for window); `undefined` when none are left. */
  pending: Uint8Array | undefined;
  /** Flow-controlled bytes received on this stream (DATA payloads with their padding); start 0. */
  received: number;
  /**
   * When the peer must have finished sending on this stream (ms since the epoch), set by
   * {@linkcode H2Core.awaitRest}; 0 once it has, or when there is no deadline. Start 0.
   */
  readBy: number;
  /**
   * While `pending` waits for the peer's window: when it began waiting, or last made progress
   * (ms since the epoch); 0 while nothing waits. Start 0.
   */
  stalledSince: number;
  /** DATA frames received on this stream. Start 0. */
  dataFrames: number;
  /** The body received so far, in one buffer ({@linkcode H2Core.appendBody}). Start `undefined`. */
  buffer: Uint8Array | undefined;
  /** Bytes of `buffer` in use. Start 0. */
  buffered: number;
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
   * more (or more than {@linkcode MAX_CONTINUATIONS} frames) is a connection error
   * (ENHANCE_YOUR_CALM).
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
   * since HPACK cannot skip it), a stream handed to {@linkcode H2Core.awaitRest} must be
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
}

/** Connection receive window we keep open (refilled at half). */
export const CONNECTION_WINDOW = 16 * 1024 * 1024;
/** SETTINGS frames (not ACKs) a peer may send at once; {@linkcode SETTINGS_RATE} a second after. */
export const SETTINGS_BURST = 32;
/** See {@linkcode SETTINGS_BURST}. */
export const SETTINGS_RATE = 8;
/** Entries one SETTINGS frame may hold (nghttp2's limit); more: GOAWAY(ENHANCE_YOUR_CALM). */
export const MAX_SETTINGS_ENTRIES = 32;
/** CONTINUATION frames one header block may take, whatever their sizes (empty ones too). */
export const MAX_CONTINUATIONS = 64;
/** Offences a peer may commit before GOAWAY(ENHANCE_YOUR_CALM): this many end the connection. */
export const MAX_OFFENCES = 3;

const EMPTY = new Uint8Array(0);

/** A header block being continued. */
interface Continuation {
  readonly id: number;
  readonly endStream: boolean;
  readonly parts: Uint8Array[];
  size: number;
  /** Its read deadline (0: none). */
  readonly readBy: number;
}

/**
 * One HTTP/2 connection, either end. A side calls {@linkcode start} once its socket is up, opens
 * and forgets streams ({@linkcode open}, {@linkcode forget}), sends with
 * {@linkcode sendHeaders}, {@linkcode sendBody} and {@linkcode reset}, and ends with
 * {@linkcode beginDrain} or {@linkcode terminate}.
 */
export abstract class H2Core<S extends H2Stream> {
  protected socket: H2Socket | undefined;
  /** Open streams by ID. */
  protected readonly streams: Map<number, S> = new Map();
  protected readonly outbox: FrameOutbox;
  /** No new streams: GOAWAY sent or received, or ending. */
  protected draining = false;
  protected closed = false;
  /** The highest stream ID the peer opened (stays 0 on a client: it accepts none). */
  protected lastPeerId = 0;
  /** The peer's SETTINGS_MAX_FRAME_SIZE. */
  protected peerMaxFrame = 16_384;
  /** The peer acknowledged our SETTINGS: it knows our limits. */
  protected settingsAcked = false;
  readonly #options: H2CoreOptions;
  /** Our stream receive window (what we advertised; never refilled). */
  readonly #streamWindow: number;
  readonly #peer: string;
  readonly #decoder = new HpackDecoder();
  readonly #onField: FieldHandler = (name, value) => this.onHeaderField(name, value);
  #peerInitialWindow = 65_535;
  /** Our connection-level send window. */
  #sendWindow = 65_535;
  /** Connection-level bytes received since we last opened the window. */
  #received = 0;
  /** Streams whose body waits for send window. */
  #blocked: S[] = [];
  #continuation: Continuation | undefined;
  #settingsSeen = false;
  /** Stream resets the peer may still cause now. */
  readonly #resets: TokenBucket;
  /** SETTINGS frames the peer may still send now. */
  readonly #settingsBudget: TokenBucket;
  #offences = 0;
  /** Bytes of the bodies waiting for window (`pending` of the streams with `stalledSince`). */
  #parked = 0;
  /** Bytes of the body buffers of open streams. */
  #buffered = 0;
  /** DATA frames received on the open streams. */
  #dataFrames = 0;
  /**
   * The idle timer: armed when the connection goes idle and none is armed, never cleared while
   * it runs (a request that comes and goes costs no timer); when it fires it checks `#idleSince`.
   */
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #onIdleTimer = () => this.#idleCheck();
  /** When the connection last went idle (ms), or 0 while something is open. */
  #idleSince = 0;
  /** The one read-deadline timer, armed only while a deadline is pending. */
  #readTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #onReadTimer = () => this.#readDeadline();
  /** When the peer's SETTINGS are due (0: arrived, or no deadline). */
  #settingsBy = 0;
  /** Streams handed to `awaitRest`, oldest deadline first; entries finished since are skipped. */
  #unfinished: S[] = [];
  /** How many of `#unfinished` still have a deadline. */
  #unfinishedCount = 0;
  /** Reading is held: the outbox is over its high-water mark. */
  #paused = false;
  /** Resumes a read loop held by `#paused`. */
  #resumeRead: (() => void) | undefined;
  readonly #reader = new FrameReader();
  readonly #onFrame = (type: number, flags: number, id: number, payload: Uint8Array) => {
    this.#frame(type, flags, id, payload);
    return !this.closed;
  };
  /** Server side: what arrived of the client preface so far (`undefined` once it is checked). */
  #preface: Uint8Array | undefined;

  constructor(options: H2CoreOptions) {
    this.#options = options;
    this.#peer = options.side === "client" ? "server" : "client";
    if (options.side === "server") this.#preface = new Uint8Array(0);
    const initial = options.settings.find(([key]) => key === Setting.InitialWindowSize);
    this.#streamWindow = initial?.[1] ?? 65_535;
    const now = Date.now();
    this.#resets = new TokenBucket(options.resetBudget[0], options.resetBudget[1], now);
    this.#settingsBudget = new TokenBucket(SETTINGS_BURST, SETTINGS_RATE, now);
    this.outbox = new FrameOutbox({
      onError: (error) =>
        this.terminate(new H2Error(`write failed: ${error.message}`, true, { cause: error })),
      onDrained: () => {
        if (this.#paused) this.#resume();
        if (this.draining) this.closeIfDone();
      },
      onFull: () => this.#pause(),
      highWaterMark: options.writeHighWaterMark,
      writeTimeoutMs: options.writeTimeoutMs,
    });
  }

  // --- hooks -----------------------------------------------------------------------------

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
   * (drop them). The side answers or resets the stream; it may call {@linkcode offend}.
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

  // --- life ------------------------------------------------------------------------------

  /**
   * Starts on `socket`: the client preface (client side), our SETTINGS and the connection
   * window, then the read loop.
   */
  protected start(socket: H2Socket): void {
    this.socket = socket;
    this.outbox.attach(socket);
    if (this.#options.side === "client") this.outbox.raw(PREFACE);
    const settings = this.#options.settings;
    const payload = new Uint8Array(settings.length * 6);
    const view = new DataView(payload.buffer);
    settings.forEach(([key, value], i) => {
      view.setUint16(i * 6, key);
      view.setUint32(i * 6 + 2, value);
    });
    this.outbox.emit(FrameType.Settings, 0, 0, payload);
    this.outbox.emit(FrameType.WindowUpdate, 0, 0, uint32Bytes(CONNECTION_WINDOW - 65_535));
    if (this.isIdle()) this.#armIdle();
    if (this.#options.readTimeoutMs > 0 && !this.#settingsSeen) {
      this.#settingsBy = Date.now() + this.#options.readTimeoutMs;
      this.#armReadTimer();
    }
    if (socket.read) this.#read(socket.read.bind(socket));
  }

  /** Bytes a pushing socket received (valid only during the call). */
  receive(data: Uint8Array): void {
    if (this.closed) return;
    try {
      this.#input(data);
    } catch (error) {
      this.#failed(error);
    }
  }

  /** A pushing socket's peer closed its side, or its read failed with `error`. */
  receiveEnd(error?: Error): void {
    if (this.closed) return;
    if (error) return this.#failed(error);
    this.terminate(new H2Error(`the ${this.#peer} closed the connection`, true));
  }

  /** Registers a stream that has just opened (either side), with the peer's initial window. */
  protected open(stream: S): void {
    stream.sendWindow = this.#peerInitialWindow;
    this.streams.set(stream.id, stream);
    this.#idleSince = 0;
  }

  /** Drops a stream that is done; drains or arms the idle timer when it was the last. */
  protected forget(stream: S): void {
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    if (stream.readBy !== 0) this.restArrived(stream);
    if (stream.pending !== undefined) this.#unpark(stream); // a body that will never be sent
    this.#dataFrames -= stream.dataFrames;
    stream.dataFrames = 0;
    this.#dropBody(stream);
    this.onStreamEnded();
    if (this.isIdle()) {
      if (this.draining) this.closeIfDone();
      else this.#armIdle();
    }
  }

  /** Stops taking new streams: GOAWAY(NO_ERROR), then closes once the open ones finish. */
  protected beginDrain(): void {
    if (this.draining || this.closed) return;
    this.draining = true;
    if (this.socket) this.goaway(Code.NoError);
    this.closeIfDone();
  }

  /** Closes when draining and nothing is open or left to write. */
  protected closeIfDone(): void {
    if (!this.draining || this.closed || !this.isIdle()) return;
    if (this.outbox.busy) return; // the outbox calls back when written
    this.terminate(new H2Error("connection drained", true), false);
  }

  /**
   * Counts one offence by the peer (an oversized header list, a stream over the limit it
   * acknowledged); the {@linkcode MAX_OFFENCES}th throws a {@linkcode ConnectionError}
   * (ENHANCE_YOUR_CALM), so call it from frame handling (a hook), after queuing the stream's
   * own answer or reset.
   */
  protected offend(what: string): void {
    if (++this.#offences >= MAX_OFFENCES) {
      throw new ConnectionError(Code.EnhanceYourCalm, `${what} (offence ${this.#offences})`);
    }
  }

  /**
   * Gives the peer until the read deadline to finish sending on `stream` (an open stream whose
   * request or response has not ended); {@linkcode restArrived} (or forgetting it) lifts it.
   * No-op without a read deadline. Costs no timer of its own: one timer serves the connection.
   */
  protected awaitRest(stream: S): void {
    const timeout = this.#options.readTimeoutMs;
    if (timeout <= 0 || stream.readBy !== 0) return;
    stream.readBy = Date.now() + timeout;
    this.#unfinishedCount++;
    // Finished entries are skipped lazily; drop them before they outnumber the live ones.
    if (this.#unfinished.length >= 2 * this.#unfinishedCount + 16) {
      this.#unfinished = this.#unfinished.filter((s) => s.readBy !== 0);
    }
    this.#unfinished.push(stream);
    this.#armReadTimer();
  }

  /** The peer finished sending on `stream`: its read deadline is lifted. */
  protected restArrived(stream: S): void {
    if (stream.readBy === 0) return;
    stream.readBy = 0;
    this.#unfinishedCount--;
  }

  /** Ends the connection now; a queued final GOAWAY is written first. */
  protected terminate(reason: H2Error, failed = true): void {
    if (this.closed) return;
    this.closed = true;
    this.draining = true;
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    if (this.#readTimer !== undefined) clearTimeout(this.#readTimer);
    this.#readTimer = undefined;
    this.#unfinished = [];
    this.#blocked = [];
    this.#resume();
    this.onTerminate(reason, failed);
    this.streams.clear();
    const socket = this.socket;
    if (socket) this.outbox.close(true, () => socket.close());
  }

  /** The connection went idle: it drains once it has stayed so for the idle timeout. */
  #armIdle(): void {
    if (this.closed) return;
    this.#idleSince = Date.now();
    this.#idleTimer ??= setTimeout(this.#onIdleTimer, this.#options.idleTimeoutMs);
  }

  #idleCheck(): void {
    this.#idleTimer = undefined;
    if (this.closed || this.#idleSince === 0 || !this.isIdle()) return; // re-armed when idle
    const idle = Date.now() - this.#idleSince;
    const timeout = this.#options.idleTimeoutMs;
    if (idle >= timeout) this.beginDrain();
    else this.#idleTimer = setTimeout(this.#onIdleTimer, timeout - idle);
  }

  // --- read deadlines and backpressure ---------------------------------------------------

  /**
   * Arms the read-deadline timer for the earliest pending deadline, if none is armed. Every
   * deadline is "now + readTimeoutMs" when set, so a later one never precedes an armed timer;
   * the timer re-arms itself for the next when it fires.
   */
  #armReadTimer(): void {
    if (this.#readTimer !== undefined || this.closed) return;
    let next = Infinity;
    if (this.#settingsBy !== 0) next = this.#settingsBy;
    const c = this.#continuation;
    if (c && c.readBy !== 0 && c.readBy < next) next = c.readBy;
    const queue = this.#unfinished;
    while (queue.length > 0 && queue[0].readBy === 0) queue.shift();
    if (queue.length > 0 && queue[0].readBy < next) next = queue[0].readBy;
    const timeout = this.#options.readTimeoutMs;
    if (timeout > 0) {
      for (const stream of this.#blocked) { // bodies waiting for window, until they progress
        if (stream.stalledSince !== 0 && stream.stalledSince + timeout < next) {
          next = stream.stalledSince + timeout;
        }
      }
    }
    if (next === Infinity) return;
    this.#readTimer = setTimeout(this.#onReadTimer, Math.max(0, next - Date.now()));
  }

  /** The read-deadline timer fired: end what is overdue, then re-arm for the next. */
  #readDeadline(): void {
    this.#readTimer = undefined;
    if (this.closed) return;
    const now = Date.now();
    const timeout = this.#options.readTimeoutMs;
    if (this.#settingsBy !== 0 && now >= this.#settingsBy) {
      this.goaway(Code.NoError);
      return this.terminate(
        new H2Error(`no SETTINGS from the ${this.#peer} in ${timeout} ms`, true),
      );
    }
    const c = this.#continuation;
    if (c && c.readBy !== 0 && now >= c.readBy) {
      this.goaway(Code.EnhanceYourCalm);
      return this.terminate(
        new H2Error(`header block on stream ${c.id} unfinished after ${timeout} ms`, false),
      );
    }
    let expired = false;
    const queue = this.#unfinished;
    while (queue.length > 0 && (queue[0].readBy === 0 || now >= queue[0].readBy)) {
      const stream = queue.shift()!;
      if (stream.readBy === 0 || this.streams.get(stream.id) !== stream) continue;
      this.restArrived(stream);
      expired = true;
      this.reset(stream.id, Code.Cancel);
      this.onStreamError(
        stream,
        new H2Error(
          `stream ${stream.id} unfinished by the ${this.#peer} after ${timeout} ms`,
          false,
        ),
      );
      if (this.closed) return;
    }
    // Bodies that made no progress against the peer's window for the whole deadline.
    const stalled = this.#blocked.filter((s) =>
      timeout > 0 && s.stalledSince !== 0 && now - s.stalledSince >= timeout
    );
    for (const stream of stalled) {
      if (stream.stalledSince === 0 || this.streams.get(stream.id) !== stream) continue;
      this.#unpark(stream);
      expired = true;
      this.reset(stream.id, Code.Cancel);
      this.onStreamError(
        stream,
        new H2Error(
          `stream ${stream.id}: no room in the ${this.#peer}'s flow-control window for ${timeout} ms`,
          false,
        ),
      );
      if (this.closed) return;
    }
    // A connection holding only streams that wait on the peer is serving nobody: let it go.
    if (expired && !this.draining && this.#onlyWaitingOnPeer()) this.beginDrain();
    this.#armReadTimer();
  }

  /** Every open stream waits on the peer: for the rest of its request, or for window. */
  #onlyWaitingOnPeer(): boolean {
    for (const stream of this.streams.values()) {
      if (stream.readBy === 0 && stream.stalledSince === 0) return false;
    }
    return true;
  }

  /** The outbox is over its high-water mark: read no more until it drains. */
  #pause(): void {
    if (this.#paused || this.closed) return;
    this.#paused = true;
    this.socket?.pause?.();
  }

  /** The outbox drained (or the connection ended): read again. */
  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (!this.closed) this.socket?.resume?.();
    const resume = this.#resumeRead;
    this.#resumeRead = undefined;
    resume?.();
  }

  // --- sending ---------------------------------------------------------------------------

  /** Sends a header block, as HEADERS plus CONTINUATION when it exceeds the peer's frame size. */
  protected sendHeaders(id: number, block: Uint8Array, endStream: boolean): void {
    const end = endStream ? Flag.EndStream : 0;
    const max = this.peerMaxFrame;
    if (block.length <= max) {
      this.outbox.emit(FrameType.Headers, Flag.EndHeaders | end, id, block);
      return;
    }
    for (let at = 0; at < block.length; at += max) {
      const part = block.subarray(at, at + max);
      const last = at + max >= block.length ? Flag.EndHeaders : 0;
      if (at === 0) this.outbox.emit(FrameType.Headers, end | last, id, part);
      else this.outbox.emit(FrameType.Continuation, last, id, part);
    }
  }

  /**
   * Sends as much of `stream.pending` as the windows allow, the last DATA frame with
   * END_STREAM (an empty body is one empty frame, which needs no window); parks the rest until
   * WINDOW_UPDATE. Calls `onBodySent` once all is queued.
   *
   * A parked body is bounded: when it would take the bytes parked over `maxParkedBytes`, or
   * when it makes no progress against the peer's window for the read deadline, its stream is
   * reset (CANCEL) and handed to `onStreamError`.
   */
  protected sendBody(stream: S): void {
    let body = stream.pending!;
    // A parked body is taken out of the count while it is sent, and parked again if need be.
    const since = stream.stalledSince;
    if (since !== 0) {
      this.#parked -= body.length;
      stream.stalledSince = 0;
    }
    let sent = 0;
    for (;;) {
      const room = Math.min(this.peerMaxFrame, this.#sendWindow, stream.sendWindow);
      if (body.length > 0 && room <= 0) return this.#park(stream, body, sent === 0 ? since : 0);
      const n = Math.min(body.length, Math.max(0, room));
      const last = n === body.length;
      // The usual body (a DNS answer) fits one frame: no views made for it.
      const part = last ? body : body.subarray(0, n);
      this.outbox.emit(FrameType.Data, last ? Flag.EndStream : 0, stream.id, part);
      this.#sendWindow -= n;
      stream.sendWindow -= n;
      sent += n;
      if (last) break;
      body = body.subarray(n);
    }
    stream.pending = undefined;
    this.onBodySent(stream);
  }

  /**
   * Keeps the rest of a body until the peer opens its window, unless the bytes parked would go
   * over the cap (then the stream is reset). `since`: when it began waiting, if it was waiting
   * already and sent nothing now (its wait goes on); else 0 (its wait starts now).
   */
  #park(stream: S, body: Uint8Array, since: number): void {
    if (this.#parked + body.length > this.#options.maxParkedBytes) {
      this.#unpark(stream);
      this.reset(stream.id, Code.Cancel);
      this.onStreamError(
        stream,
        new H2Error(
          `stream ${stream.id}: ${body.length} bytes would take the bytes waiting for the ${this.#peer}'s window over ${this.#options.maxParkedBytes}`,
          false,
        ),
      );
      return;
    }
    stream.pending = body;
    this.#parked += body.length;
    stream.stalledSince = since !== 0 ? since : Date.now();
    if (!this.#blocked.includes(stream)) this.#blocked.push(stream);
    if (this.#options.readTimeoutMs > 0) this.#armReadTimer();
  }

  /** Drops what `stream` has waiting to be sent. */
  #unpark(stream: S): void {
    if (stream.stalledSince !== 0 && stream.pending !== undefined) {
      this.#parked -= stream.pending.length;
    }
    stream.pending = undefined;
    stream.stalledSince = 0;
    const i = this.#blocked.indexOf(stream);
    if (i >= 0) this.#blocked.splice(i, 1);
  }

  /**
   * Appends body bytes received on `stream` to its buffer: one buffer per stream, made `size`
   * bytes at once when the side knows the length (a declared content-length), else as large as
   * what came and doubled as more comes, never past `max` unless the bytes need it (the side
   * refuses bodies over its cap before calling). The buffers of the open streams together are
   * capped at `maxBufferedBytes`: past it a {@linkcode ConnectionError} (ENHANCE_YOUR_CALM), so
   * call it from frame handling (`onData`).
   */
  protected appendBody(stream: S, data: Uint8Array, max: number, size = 0): void {
    const needed = stream.buffered + data.length;
    let buffer = stream.buffer;
    if (buffer === undefined || needed > buffer.length) {
      const wanted = buffer === undefined ? size : 2 * buffer.length;
      const length = Math.max(needed, Math.min(max, wanted));
      this.#buffered += length - (buffer?.length ?? 0);
      if (this.#buffered > this.#options.maxBufferedBytes) {
        throw new ConnectionError(
          Code.EnhanceYourCalm,
          `bodies being received over ${this.#options.maxBufferedBytes} bytes`,
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
  protected takeBody(stream: S): Uint8Array {
    const buffer = stream.buffer;
    if (buffer === undefined) return EMPTY;
    const n = stream.buffered;
    this.#dropBody(stream);
    return n === buffer.length ? buffer : buffer.slice(0, n);
  }

  /** Lets go of `stream`'s body buffer, if it has one. */
  #dropBody(stream: S): void {
    if (stream.buffer === undefined) return;
    this.#buffered -= stream.buffer.length;
    stream.buffer = undefined;
    stream.buffered = 0;
  }

  /** Resends what waits for window, for the streams still open. */
  #unblock(): void {
    if (this.#blocked.length === 0) return;
    const blocked = this.#blocked;
    this.#blocked = [];
    for (const stream of blocked) {
      if (stream.pending !== undefined && this.streams.get(stream.id) === stream) {
        this.sendBody(stream);
      }
    }
  }

  /** Queues RST_STREAM (the side forgets the stream itself). */
  protected reset(id: number, code: number): void {
    this.outbox.emit(FrameType.RstStream, 0, id, uint32Bytes(code));
  }

  /** Queues GOAWAY with the last peer stream taken. */
  protected goaway(code: number): void {
    const payload = new Uint8Array(8);
    payload.set(uint32Bytes(this.lastPeerId));
    payload.set(uint32Bytes(code), 4);
    this.outbox.emit(FrameType.Goaway, 0, 0, payload);
  }

  // --- receiving -------------------------------------------------------------------------

  /** Checks the client preface (server side), then cuts `data` into frames. */
  #input(data: Uint8Array): void {
    let preface = this.#preface;
    if (preface) {
      const seen = concatBytes([preface, data], preface.length + data.length);
      const part = seen.subarray(0, Math.min(seen.length, PREFACE.length));
      if (part.some((b, i) => b !== PREFACE[i])) {
        return this.terminate(new H2Error("not an HTTP/2 client preface", false));
      }
      if (seen.length < PREFACE.length) {
        this.#preface = seen;
        return;
      }
      preface = this.#preface = undefined;
      data = seen.subarray(PREFACE.length);
    }
    this.#reader.feed(data, this.#onFrame);
    if (!this.closed) this.onFramesRead();
    if (this.draining && !this.closed) this.closeIfDone();
  }

  /** Ends the connection for a failed read or a protocol error (GOAWAY with its code). */
  #failed(error: unknown): void {
    if (error instanceof ConnectionError) {
      this.goaway(error.code);
      this.terminate(
        new H2Error(`HTTP/2 protocol error from the ${this.#peer}: ${error.message}`, false, {
          cause: error,
        }),
      );
    } else {
      const cause = error instanceof Error ? error : new Error(String(error));
      this.terminate(new H2Error(`read failed: ${cause.message}`, true, { cause }));
    }
  }

  /** The read loop of a socket that is read from (`H2Socket.read`). */
  async #read(read: (buffer: Uint8Array) => Promise<number | null>): Promise<void> {
    const [initial, max] = this.#options.readBuffer;
    // An idle connection pins its pending read's buffer: start small where connections are many.
    let buffer = new Uint8Array(initial);
    try {
      for (;;) {
        if (this.#paused) {
          await new Promise<void>((resolve) => (this.#resumeRead = resolve));
          if (this.closed) return;
        }
        const n = await read(buffer);
        if (n === null) {
          return this.terminate(new H2Error(`the ${this.#peer} closed the connection`, true));
        }
        if (this.closed) return;
        this.#input(buffer.subarray(0, n));
        if (this.closed) return;
        if (n === buffer.length && buffer.length < max) buffer = new Uint8Array(buffer.length * 2);
      }
    } catch (error) {
      this.#failed(error);
    }
  }

  #frame(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (this.#continuation && type !== FrameType.Continuation) {
      throw new ConnectionError(Code.ProtocolError, "expected CONTINUATION");
    }
    switch (type) {
      case FrameType.Data:
        return this.#onData(flags, id, payload);
      case FrameType.Headers:
        return this.#onHeaders(flags, id, payload);
      case FrameType.Continuation:
        return this.#onContinuation(flags, id, payload);
      case FrameType.RstStream:
        return this.#onRstStream(id, payload);
      case FrameType.Settings:
        return this.#onSettings(flags, id, payload);
      case FrameType.PushPromise:
        throw new ConnectionError(Code.ProtocolError, `PUSH_PROMISE from the ${this.#peer}`);
      case FrameType.Ping:
        if (id !== 0 || payload.length !== 8) {
          throw new ConnectionError(Code.ProtocolError, "bad PING");
        }
        if (!(flags & Flag.Ack)) this.outbox.emit(FrameType.Ping, Flag.Ack, 0, payload);
        return;
      case FrameType.Goaway:
        return this.#onGoaway(id, payload);
      case FrameType.WindowUpdate:
        return this.#onWindowUpdate(id, payload);
      default:
        return; // PRIORITY and unknown frame types are ignored (RFC 9113 §4.1, §5.5)
    }
  }

  #onData(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) throw new ConnectionError(Code.ProtocolError, "DATA on stream 0");
    // RFC 9113 §6.9.1: the connection window is what we granted since the last refill.
    if (this.#received + payload.length > CONNECTION_WINDOW) {
      throw new ConnectionError(Code.FlowControlError, "DATA beyond the connection window");
    }
    this.#received += payload.length;
    if (this.#received >= CONNECTION_WINDOW / 2) {
      this.outbox.emit(FrameType.WindowUpdate, 0, 0, uint32Bytes(this.#received));
      this.#received = 0;
    }
    let data = payload;
    if (flags & Flag.Padded) {
      const pad = payload[0] ?? 0;
      if (payload.length < 1 + pad) throw new ConnectionError(Code.ProtocolError, "bad padding");
      data = payload.subarray(1, payload.length - pad);
    }
    const stream = this.streams.get(id);
    if (stream) {
      stream.dataFrames++;
      // Many small frames cost more than their bytes say (CVE-2019-9518's empty frames too).
      if (++this.#dataFrames > this.#options.maxDataFrames) {
        throw new ConnectionError(
          Code.EnhanceYourCalm,
          `over ${this.#options.maxDataFrames} DATA frames on the open streams`,
        );
      }
      stream.received += payload.length;
      if (stream.received > this.#streamWindow) {
        // A stream error: the bytes counted against the connection window; the rest carry on.
        this.#chargeReset();
        this.reset(id, Code.FlowControlError);
        return this.onStreamError(
          stream,
          new H2Error(
            `HTTP/2 protocol error from the ${this.#peer}: DATA beyond the stream window on stream ${id}`,
            false,
          ),
        );
      }
    }
    this.onData(id, stream, data, (flags & Flag.EndStream) !== 0);
  }

  #onHeaders(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) throw new ConnectionError(Code.ProtocolError, "HEADERS on stream 0");
    let start = 0;
    let end = payload.length;
    if (flags & Flag.Padded) {
      start = 1;
      end -= payload[0] ?? 0;
    }
    if (flags & Flag.Priority) start += 5;
    if (start > end) throw new ConnectionError(Code.ProtocolError, "bad HEADERS padding");
    const block = payload.subarray(start, end);
    const endStream = (flags & Flag.EndStream) !== 0;
    if (block.length > this.#options.maxHeaderBytes) this.#tooLarge();
    if (flags & Flag.EndHeaders) return this.#headerBlock(id, block, endStream);
    const timeout = this.#options.readTimeoutMs;
    const readBy = timeout > 0 ? Date.now() + timeout : 0;
    this.#continuation = { id, endStream, parts: [block.slice()], size: block.length, readBy };
    if (readBy !== 0) this.#armReadTimer();
  }

  #onContinuation(flags: number, id: number, payload: Uint8Array): void {
    const c = this.#continuation;
    if (!c || c.id !== id) throw new ConnectionError(Code.ProtocolError, "unexpected CONTINUATION");
    c.size += payload.length;
    if (c.size > this.#options.maxHeaderBytes) this.#tooLarge();
    if (c.parts.length > MAX_CONTINUATIONS) {
      throw new ConnectionError(Code.EnhanceYourCalm, "too many CONTINUATION frames");
    }
    c.parts.push(payload.slice());
    if (flags & Flag.EndHeaders) {
      this.#continuation = undefined;
      this.#headerBlock(id, concatBytes(c.parts, c.size), c.endStream);
    }
  }

  #tooLarge(): never {
    throw new ConnectionError(
      Code.EnhanceYourCalm,
      `header block over ${this.#options.maxHeaderBytes} bytes`,
    );
  }

  #headerBlock(id: number, block: Uint8Array, endStream: boolean): void {
    let complete: boolean;
    try {
      // Always decoded to the end: the table's state spans streams.
      complete = this.#decoder.decode(block, this.#onField, this.#options.maxHeaderListSize);
    } catch (error) {
      if (error instanceof HpackError) {
        throw new ConnectionError(Code.CompressionError, error.message);
      }
      throw error;
    }
    if (complete) this.onHeaderBlock(id, endStream);
    else this.onHeaderListTooLarge(id, endStream);
  }

  #onRstStream(id: number, payload: Uint8Array): void {
    if (id === 0 || payload.length !== 4) {
      throw new ConnectionError(Code.ProtocolError, "bad RST_STREAM");
    }
    // Rapid reset (CVE-2023-44487): streams opened and reset at once cost us, not the peer.
    this.#chargeReset();
    const stream = this.streams.get(id);
    if (stream) this.onStreamReset(stream, getUint32(payload, 0));
  }

  /** Counts one stream reset the peer caused; past the budget, a connection error. */
  #chargeReset(): void {
    if (!this.#resets.take(Date.now())) {
      throw new ConnectionError(
        Code.EnhanceYourCalm,
        `stream resets over ${this.#resets.burst} at once or ${this.#resets.perSecond} a second`,
      );
    }
  }

  #onSettings(flags: number, id: number, payload: Uint8Array): void {
    if (id !== 0) throw new ConnectionError(Code.ProtocolError, "SETTINGS on a stream");
    if (flags & Flag.Ack) {
      this.settingsAcked = true;
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(Code.FrameSizeError, "bad SETTINGS");
    if (payload.length > MAX_SETTINGS_ENTRIES * 6) {
      throw new ConnectionError(
        Code.EnhanceYourCalm,
        `SETTINGS with ${payload.length / 6} entries (at most ${MAX_SETTINGS_ENTRIES})`,
      );
    }
    if (!this.#settingsBudget.take(Date.now())) {
      throw new ConnectionError(
        Code.EnhanceYourCalm,
        `SETTINGS frames over ${SETTINGS_BURST} at once or ${SETTINGS_RATE} a second`,
      );
    }
    let maxStreams: number | undefined;
    let window: number | undefined;
    for (let at = 0; at < payload.length; at += 6) {
      const key = getUint16(payload, at);
      const value = getUint32(payload, at + 2);
      if (key === Setting.MaxConcurrentStreams) maxStreams = value;
      else if (key === Setting.InitialWindowSize) {
        if (value > MAX_WINDOW) {
          throw new ConnectionError(Code.FlowControlError, "initial window too large");
        }
        window = value; // the last one stands: applied once below, whatever the repeats
      } else if (key === Setting.MaxFrameSize) {
        if (value < 16_384 || value > 16_777_215) {
          throw new ConnectionError(Code.ProtocolError, "bad MAX_FRAME_SIZE");
        }
        this.peerMaxFrame = value;
      }
    }
    if (window !== undefined && window !== this.#peerInitialWindow) {
      const delta = window - this.#peerInitialWindow;
      this.#peerInitialWindow = window;
      for (const s of this.streams.values()) {
        s.sendWindow += delta;
        // RFC 9113 §6.9.2: a change that takes a window past 2^31-1 is a connection error.
        if (s.sendWindow > MAX_WINDOW) {
          throw new ConnectionError(Code.FlowControlError, "stream window overflow");
        }
      }
    }
    const first = !this.#settingsSeen;
    this.#settingsSeen = true;
    this.#settingsBy = 0;
    this.outbox.emit(FrameType.Settings, Flag.Ack, 0);
    this.#unblock();
    this.onPeerSettings(maxStreams, first);
  }

  #onGoaway(id: number, payload: Uint8Array): void {
    if (id !== 0 || payload.length < 8) throw new ConnectionError(Code.ProtocolError, "bad GOAWAY");
    this.draining = true;
    this.onPeerGoaway(getUint32(payload, 0) & MAX_WINDOW, getUint32(payload, 4));
    this.closeIfDone();
  }

  #onWindowUpdate(id: number, payload: Uint8Array): void {
    if (payload.length !== 4) throw new ConnectionError(Code.FrameSizeError, "bad WINDOW_UPDATE");
    const increment = getUint32(payload, 0) & MAX_WINDOW;
    if (id === 0) {
      if (increment === 0) throw new ConnectionError(Code.ProtocolError, "WINDOW_UPDATE of 0");
      this.#sendWindow += increment;
      if (this.#sendWindow > MAX_WINDOW) {
        throw new ConnectionError(Code.FlowControlError, "window overflow");
      }
    } else {
      const stream = this.streams.get(id);
      if (!stream) return;
      if (increment === 0 || stream.sendWindow + increment > MAX_WINDOW) {
        // RFC 9113 §6.9, §6.9.1: a stream error; the connection's other streams carry on.
        this.#chargeReset();
        const code = increment === 0 ? Code.ProtocolError : Code.FlowControlError;
        this.reset(id, code);
        const what = increment === 0 ? "WINDOW_UPDATE of 0" : "window overflow";
        this.onStreamError(
          stream,
          new H2Error(
            `HTTP/2 protocol error from the ${this.#peer}: ${what} on stream ${id}`,
            false,
          ),
        );
        return;
      }
      stream.sendWindow += increment;
    }
    this.#unblock();
  }
}
