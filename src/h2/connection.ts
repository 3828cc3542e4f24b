/**
 * The HTTP/2 connection core (RFC 9113) that the client (`client.ts`) and the server
 * (`server.ts`) specialise, as sides (`side.ts`: their options, streams and hooks). It owns what
 * both ends do alike: frame dispatch, the SETTINGS exchange and its ACK, PING, RST_STREAM with a
 * reset-flood guard (a token bucket, `budget.ts`), GOAWAY, offences ({@linkcode MAX_OFFENCES}
 * end the connection), graceful drain and the life of streams; and it wires up the pieces
 * beside it, each with its own bounds:
 *
 * - `input.ts`: the read loop, or a socket that pushes; the client preface; reading held
 *   while the outbox is over its high-water mark;
 * - `recv.ts`: DATA within the windows we grant (`flow.ts`), bodies held one buffer per
 *   stream and capped in bytes and in DATA frames (`bodies.ts`), header blocks joined and
 *   capped (`header_block.ts`) and decoded under the list cap (`hpack_decode.ts`);
 * - `send.ts`: headers and bodies within the peer's windows (`flow.ts`), the rest parked and
 *   capped in bytes (`parked.ts`);
 * - `deadlines.ts`: the one read-deadline timer (the peer's SETTINGS, an unfinished header
 *   block, streams handed to {@linkcode H2Core.awaitRest}, parked bodies without progress);
 * - `settings.ts`: the peer's SETTINGS, capped in entries and rate-limited;
 * - `idle.ts`: the idle timer; `outbox.ts`: one socket write per event-loop turn, with a write
 *   deadline.
 *
 * Runtime-free: it runs over an {@linkcode H2Socket} the edge supplies (TLS with ALPN `h2`), and
 * reads the time and sets timers through an {@linkcode H2Clock}.
 *
 * @module
 */
import { getUint32, uint32Bytes } from "../bytes/uint.ts";
import { TokenBucket } from "./budget.ts";
import { type H2Clock, SYSTEM_CLOCK } from "./clock.ts";
import { type DeadlineActions, ReadDeadlines } from "./deadlines.ts";
import { H2Error } from "./error.ts";
import {
  Code,
  ConnectionError,
  DEFAULT_WINDOW,
  Flag,
  FrameType,
  MAX_WINDOW,
  PREFACE,
  Setting,
} from "./frames.ts";
import type { FieldHandler } from "./hpack_decode.ts";
import { IdleTimer } from "./idle.ts";
import { FrameInput, type InputHandler } from "./input.ts";
import { FrameOutbox } from "./outbox.ts";
import { StreamReceiver } from "./recv.ts";
import { StreamSender } from "./send.ts";
import { encodeSettings, SettingsReader } from "./settings.ts";
import { type H2CoreOptions, H2Side, type H2Stream } from "./side.ts";
import type { H2Socket } from "./socket.ts";

/** Offences a peer may commit before GOAWAY(ENHANCE_YOUR_CALM): this many end the connection. */
export const MAX_OFFENCES = 3;

/**
 * One HTTP/2 connection, either end. A side calls {@linkcode start} once its socket is up, opens
 * and forgets streams ({@linkcode open}, {@linkcode forget}), sends with
 * {@linkcode sendHeaders}, {@linkcode sendBody} and {@linkcode reset}, and ends with
 * {@linkcode beginDrain} or {@linkcode terminate}.
 */
export abstract class H2Core<S extends H2Stream> extends H2Side<S> {
  protected socket: H2Socket | undefined;
  protected readonly outbox: FrameOutbox;
  /** No new streams: GOAWAY sent or received, or ending. */
  protected draining = false;
  protected closed = false;
  /** The highest stream ID the peer opened (stays 0 on a client: it accepts none). */
  protected lastPeerId = 0;
  /** The peer acknowledged our SETTINGS: it knows our limits. */
  protected settingsAcked = false;
  /** The time and timers. */
  protected readonly clock: H2Clock;
  readonly #options: H2CoreOptions;
  readonly #peer: string;
  readonly #onField: FieldHandler = (name, value) => this.onHeaderField(name, value);
  /** DATA and header blocks in, within the windows we grant. */
  readonly #recv: StreamReceiver<S>;
  /** Headers and bodies out, within the windows the peer grants. */
  readonly #send: StreamSender<S>;
  readonly #input: FrameInput;
  readonly #deadlines: ReadDeadlines<S>;
  readonly #idle: IdleTimer;
  readonly #settings: SettingsReader;
  #settingsSeen = false;
  /** Stream resets the peer may still cause now. */
  readonly #resets: TokenBucket;
  #offences = 0;

  constructor(options: H2CoreOptions) {
    super();
    this.#options = options;
    const clock = this.clock = options.clock ?? SYSTEM_CLOCK;
    this.#peer = options.side === "client" ? "server" : "client";
    this.outbox = new FrameOutbox({
      onError: (error) =>
        this.terminate(new H2Error(`write failed: ${error.message}`, true, { cause: error })),
      onDrained: () => {
        this.#input.resume();
        if (this.draining) this.closeIfDone();
      },
      onFull: () => this.#input.pause(),
      highWaterMark: options.writeHighWaterMark,
      writeTimeoutMs: options.writeTimeoutMs,
      clock,
    });
    const initial = options.settings.find(([key]) => key === Setting.InitialWindowSize);
    this.#recv = new StreamReceiver(this.outbox, {
      streamWindow: initial?.[1] ?? DEFAULT_WINDOW,
      maxHeaderBytes: options.maxHeaderBytes,
      maxHeaderListSize: options.maxHeaderListSize,
      maxBufferedBytes: options.maxBufferedBytes,
      maxDataFrames: options.maxDataFrames,
    });
    this.#send = new StreamSender(this.outbox, options.maxParkedBytes, clock);
    this.#input = new FrameInput(this.#inputHandler(), options.side === "server");
    this.#deadlines = new ReadDeadlines({
      timeoutMs: options.readTimeoutMs,
      peer: this.#peer,
      parked: this.#send.parked,
      actions: this.#deadlineActions(),
      clock,
    });
    this.#idle = new IdleTimer(
      options.idleTimeoutMs,
      () => this.isIdle(),
      () => this.beginDrain(),
      clock,
    );
    const now = clock.now();
    this.#resets = new TokenBucket(options.resetBudget[0], options.resetBudget[1], now);
    this.#settings = new SettingsReader(now);
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
    this.outbox.emit(FrameType.Settings, 0, 0, encodeSettings(this.#options.settings));
    this.outbox.emit(FrameType.WindowUpdate, 0, 0, uint32Bytes(this.#recv.flow.opening));
    if (this.isIdle()) this.#idle.start();
    if (!this.#settingsSeen) this.#deadlines.expectSettings();
    this.#input.attach(socket);
    if (socket.read) this.#input.pull(socket.read.bind(socket), this.#options.readBuffer);
  }

  /** Bytes a pushing socket received (valid only during the call). */
  receive(data: Uint8Array): void {
    this.#input.push(data);
  }

  /** A pushing socket's peer closed its side, or its read failed with `error`. */
  receiveEnd(error?: Error): void {
    this.#input.pushEnd(error);
  }

  /** Registers a stream that has just opened (either side), with the peer's initial window. */
  protected open(stream: S): void {
    this.#send.flow.open(stream);
    this.streams.set(stream.id, stream);
    this.#idle.busy();
  }

  /** Drops a stream that is done; drains or arms the idle timer when it was the last. */
  protected forget(stream: S): void {
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    if (stream.readBy !== 0) this.restArrived(stream);
    if (stream.pending !== undefined) this.#send.parked.unpark(stream); // a body never to be sent
    this.#recv.bodies.release(stream);
    this.onStreamEnded();
    if (this.isIdle()) {
      if (this.draining) this.closeIfDone();
      else this.#idle.start();
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
    this.#deadlines.awaitRest(stream);
  }

  /** The peer finished sending on `stream`: its read deadline is lifted. */
  protected restArrived(stream: S): void {
    this.#deadlines.restArrived(stream);
  }

  /** Ends the connection now; a queued final GOAWAY is written first. */
  protected terminate(reason: H2Error, failed = true): void {
    if (this.closed) return;
    this.closed = true;
    this.draining = true;
    this.#idle.stop();
    this.#deadlines.stop();
    this.#send.parked.takeAll(); // nothing is sent again
    this.#input.stop();
    this.onTerminate(reason, failed);
    this.streams.clear();
    const socket = this.socket;
    if (socket) this.outbox.close(true, () => socket.close());
  }

  // --- what the pieces call back --------------------------------------------------------

  /** Where the input goes (made once per connection). */
  #inputHandler(): InputHandler {
    return {
      frame: (type, flags, id, payload) => {
        this.#frame(type, flags, id, payload);
        return !this.closed;
      },
      framesRead: () => {
        this.onFramesRead();
        if (this.draining && !this.closed) this.closeIfDone();
      },
      notPreface: () => this.terminate(new H2Error("not an HTTP/2 client preface", false)),
      peerClosed: () =>
        this.terminate(new H2Error(`the ${this.#peer} closed the connection`, true)),
      failed: (error) => this.#failed(error),
    };
  }

  /** How the read deadlines end what is late (made once per connection). */
  #deadlineActions(): DeadlineActions<S> {
    return {
      isOpen: (stream) => this.streams.get(stream.id) === stream,
      fail: (code, why, retryable) => {
        this.goaway(code);
        this.terminate(new H2Error(why, retryable));
      },
      expire: (stream, why) => {
        this.reset(stream.id, Code.Cancel);
        this.onStreamError(stream, new H2Error(why, false));
      },
      // A connection holding only streams that wait on the peer is serving nobody: let it go.
      expired: () => {
        if (!this.draining && this.#onlyWaitingOnPeer()) this.beginDrain();
      },
    };
  }

  /** Every open stream waits on the peer: for the rest of its request, or for window. */
  #onlyWaitingOnPeer(): boolean {
    for (const stream of this.streams.values()) {
      if (stream.readBy === 0 && stream.stalledSince === 0) return false;
    }
    return true;
  }

  // --- sending ---------------------------------------------------------------------------

  /** Sends a header block, as HEADERS plus CONTINUATION when it exceeds the peer's frame size. */
  protected sendHeaders(id: number, block: Uint8Array, endStream: boolean): void {
    this.#send.headers(id, block, endStream);
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
    const outcome = this.#send.body(stream);
    if (outcome === "sent") return this.onBodySent(stream);
    if (outcome === "parked") return this.#deadlines.arm();
    const parked = this.#send.parked;
    const rest = stream.pending!.length;
    parked.unpark(stream);
    this.reset(stream.id, Code.Cancel);
    this.onStreamError(
      stream,
      new H2Error(
        `stream ${stream.id}: ${rest} bytes would take the bytes waiting for the ${this.#peer}'s window over ${parked.maxBytes}`,
        false,
      ),
    );
  }

  /** Resends what waits for window, for the streams still open. */
  #unblock(): void {
    const parked = this.#send.parked;
    if (parked.size === 0) return;
    for (const stream of parked.takeAll()) {
      if (stream.pending !== undefined && this.streams.get(stream.id) === stream) {
        this.sendBody(stream);
      }
    }
  }

  /**
   * Appends body bytes received on `stream` to its buffer (see `BodyBuffers.append` in
   * `bodies.ts`: `size` is the length the side knows, `max` its cap). Past the buffers' cap for
   * the connection a {@linkcode ConnectionError} (ENHANCE_YOUR_CALM), so call it from frame
   * handling (`onData`).
   */
  protected appendBody(stream: S, data: Uint8Array, max: number, size = 0): void {
    this.#recv.bodies.append(stream, data, max, size);
  }

  /** The body received on `stream` (empty if none came); its buffer is no longer counted. */
  protected takeBody(stream: S): Uint8Array {
    return this.#recv.bodies.take(stream);
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

  #frame(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (this.#recv.blocks.continuing && type !== FrameType.Continuation) {
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
    const stream = this.streams.get(id);
    const data = this.#recv.data(flags, id, payload, stream);
    if (data === undefined) {
      // A stream error: the bytes counted against the connection window; the rest carry on.
      return this.#streamFault(stream!, Code.FlowControlError, "DATA beyond the stream window");
    }
    this.onData(id, stream, data, (flags & Flag.EndStream) !== 0);
  }

  #onHeaders(flags: number, id: number, payload: Uint8Array): void {
    const block = this.#recv.blocks.headers(flags, id, payload);
    if (block === undefined) return this.#deadlines.headerBlockBegan(id); // CONTINUATION follows
    this.#headerBlock(id, block, (flags & Flag.EndStream) !== 0);
  }

  #onContinuation(flags: number, id: number, payload: Uint8Array): void {
    const block = this.#recv.blocks.continuation(flags, id, payload);
    if (block === undefined) return;
    this.#deadlines.headerBlockEnded();
    this.#headerBlock(id, block, this.#recv.blocks.endStream);
  }

  #headerBlock(id: number, block: Uint8Array, endStream: boolean): void {
    if (this.#recv.decode(block, this.#onField)) this.onHeaderBlock(id, endStream);
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

  /**
   * A stream error of the peer's making (RFC 9113 §5.4.2): counted as a reset it caused,
   * RST_STREAM(`code`) queued, the stream handed to the side; the other streams carry on.
   */
  #streamFault(stream: S, code: number, what: string): void {
    this.#chargeReset();
    this.reset(stream.id, code);
    this.onStreamError(
      stream,
      new H2Error(
        `HTTP/2 protocol error from the ${this.#peer}: ${what} on stream ${stream.id}`,
        false,
      ),
    );
  }

  /** Counts one stream reset the peer caused; past the budget, a connection error. */
  #chargeReset(): void {
    if (!this.#resets.take(this.clock.now())) {
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
    const peer = this.#settings.read(payload, this.clock.now());
    if (peer.maxFrameSize !== undefined) this.#send.maxFrame = peer.maxFrameSize;
    if (peer.initialWindowSize !== undefined) {
      this.#send.flow.setInitial(peer.initialWindowSize, this.streams.values());
    }
    const first = !this.#settingsSeen;
    this.#settingsSeen = true;
    this.#deadlines.settingsArrived();
    this.outbox.emit(FrameType.Settings, Flag.Ack, 0);
    this.#unblock();
    this.onPeerSettings(peer.maxConcurrentStreams, first);
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
    if (id === 0) this.#send.flow.growConnection(increment);
    else {
      const stream = this.streams.get(id);
      if (!stream) return;
      const code = this.#send.flow.growStream(stream, increment);
      // RFC 9113 §6.9, §6.9.1: a stream error; the connection's other streams carry on.
      if (code === Code.ProtocolError) return this.#streamFault(stream, code, "WINDOW_UPDATE of 0");
      if (code !== Code.NoError) return this.#streamFault(stream, code, "window overflow");
    }
    this.#unblock();
  }
}
