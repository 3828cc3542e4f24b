/**
 * The server side of one stream connection carrying length-prefixed DNS messages (DoT, or TCP).
 * Runtime-free: the edge gives it a {@linkcode StreamTransport} and feeds it bytes.
 *
 * Every complete query is dispatched at once (out-of-order pipelining, RFC 7766 §6.2.1.1);
 * answers are written as they complete, and answers that complete together go out in one write.
 * At `maxInFlight` unanswered queries, or when the transport's write buffer is full, the session
 * stops reading (backpressure) instead of buffering without bound.
 *
 * @module
 */
import { encodeFrames, FrameDecoder, FrameError } from "./codec.ts";
import { Sweeper, tickFor } from "./sweeper.ts";

/** What a session needs from the connection under it. */
export interface StreamTransport {
  /** Queue bytes for sending. Must not throw for a closed transport. */
  write(bytes: Uint8Array): void;
  /** Bytes queued and not yet handed to the kernel. */
  readonly writableLength: number;
  /** Stop delivering data (backpressure). */
  pause(): void;
  /** Deliver data again. */
  resume(): void;
  /** Close after queued bytes are sent. */
  end(): void;
  /** Close now, dropping queued bytes. */
  destroy(): void;
}

/**
 * An answer as a session writes it: its bytes. The resolver's answers (`Answer` in `src/dns`,
 * `wire` with its parse) are already this shape, so they are written as they come.
 */
export interface Framed {
  readonly wire: Uint8Array;
}

/** How a session turns one query into one answer. `null` means: close this connection. */
export type MessageProcessor = (message: Uint8Array) => Promise<Framed | null>;

/** Why a session ended; for logs and metrics. */
export type CloseReason =
  | "peer-closed"
  | "idle"
  | "frame-error"
  | "frame-timeout"
  | "dropped"
  | "shutdown"
  | "write-error";

/** Limits and hooks of a {@linkcode StreamSession}. */
export interface StreamSessionOptions {
  /** Answers per query; must not reject (a rejection closes the connection). */
  process: MessageProcessor;
  /** Unanswered queries allowed at once before reading stops. Default 128. */
  maxInFlight?: number;
  /** Largest accepted message. Default 65535. */
  maxFrameSize?: number;
  /** Close after this long with nothing in flight and nothing received. Default 10 000 ms. */
  idleTimeoutMs?: number;
  /** Close if one frame takes longer than this to arrive once started. Default 5 000 ms. */
  frameTimeoutMs?: number;
  /** Stop reading while the transport has more than this many bytes queued. Default 1 MiB. */
  writeHighWaterMark?: number;
  /** Milliseconds clock. Default `performance.now`. */
  now?: () => number;
  /** Called once when the session ends. */
  onClose?: (reason: CloseReason, error?: unknown) => void;
  /**
   * Checks this session's deadlines together with other sessions' on one timer (a listener's),
   * its tick at most a tenth of the timeouts. Default: a sweeper of its own.
   */
  sweeper?: Sweeper;
}

/**
 * One connection's query loop.
 *
 * @example
 * ```ts
 * const session = new StreamSession(transport, { process: (q) => processor(q, ctx) });
 * socket.on("data", (chunk) => session.receive(chunk));
 * socket.on("end", () => session.peerEnded());
 * socket.on("close", () => session.transportClosed());
 * socket.on("drain", () => session.writable());
 * ```
 */
export class StreamSession {
  readonly #transport: StreamTransport;
  readonly #process: MessageProcessor;
  readonly #decoder: FrameDecoder;
  readonly #maxInFlight: number;
  readonly #idleMs: number;
  readonly #frameMs: number;
  readonly #highWater: number;
  readonly #now: () => number;
  readonly #onClose?: (reason: CloseReason, error?: unknown) => void;

  #inFlight = 0;
  #backlog: Uint8Array[] = [];
  #outbox: Uint8Array[] = [];
  #flushScheduled = false;
  #paused = false;
  #draining = false;
  #drainReason: CloseReason = "peer-closed";
  #closed = false;
  #lastActivity: number;
  /** Something was received or answered since the last sweep (which then reads the clock). */
  #active = false;
  readonly #sweeper: Sweeper;
  #drainWaiters: (() => void)[] | undefined;

  constructor(transport: StreamTransport, options: StreamSessionOptions) {
    this.#transport = transport;
    this.#process = options.process;
    this.#decoder = new FrameDecoder(options.maxFrameSize ?? 65535);
    this.#maxInFlight = options.maxInFlight ?? 128;
    this.#idleMs = options.idleTimeoutMs ?? 10_000;
    this.#frameMs = options.frameTimeoutMs ?? 5_000;
    this.#highWater = options.writeHighWaterMark ?? 1 << 20;
    this.#now = options.now ?? (() => performance.now());
    this.#onClose = options.onClose;
    this.#lastActivity = this.#now();
    this.#sweeper = options.sweeper ?? new Sweeper(tickFor(this.#idleMs, this.#frameMs));
    this.#sweeper.add(this);
  }

  /** Queries received and not yet answered, including those waiting for a slot. */
  get inFlight(): number {
    return this.#inFlight + this.#backlog.length;
  }

  /** True once the session has ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Feed bytes read from the transport. */
  receive(chunk: Uint8Array): void {
    if (this.#closed || this.#draining) return;
    this.#active = true;
    let messages: Uint8Array[];
    try {
      messages = this.#decoder.push(chunk, this.#now);
    } catch (error) {
      if (error instanceof FrameError) return this.#close("frame-error", error, true);
      throw error;
    }
    for (const m of messages) {
      if (this.#inFlight < this.#maxInFlight) this.#dispatch(m);
      else this.#backlog.push(m);
    }
    this.#updateFlow();
  }

  /** The peer closed its sending side: answer what is in flight, then close. */
  peerEnded(): void {
    if (this.#closed) return;
    this.#draining = true;
    this.#maybeFinish();
  }

  /** The transport closed under us: forget everything. */
  transportClosed(): void {
    if (this.#closed) return;
    this.#close("peer-closed", undefined, false);
  }

  /** The transport's write buffer drained. */
  writable(): void {
    this.#updateFlow();
  }

  /**
   * Graceful shutdown: stop reading, answer every query already received, then close. Resolves
   * when the session has closed; after `graceMs` the connection is dropped regardless.
   */
  shutdown(graceMs: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#draining = true;
    this.#drainReason = "shutdown";
    this.#transport.pause();
    this.#paused = true;
    const done = new Promise<void>((resolve) => (this.#drainWaiters ??= []).push(resolve));
    const force = setTimeout(() => this.#close("shutdown", undefined, true), graceMs);
    this.#maybeFinish();
    return done.finally(() => clearTimeout(force));
  }

  #dispatch(message: Uint8Array): void {
    this.#inFlight++;
    let promise: Promise<Framed | null>;
    try {
      promise = this.#process(message);
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then(
      (answer) => this.#complete(answer),
      (error) => {
        this.#inFlight--;
        this.#close("dropped", error, true);
      },
    );
  }

  #complete(answer: Framed | null): void {
    this.#inFlight--;
    if (this.#closed) return;
    if (answer === null) return this.#close("dropped", undefined, false);
    this.#active = true;
    this.#outbox.push(answer.wire);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flush());
    }
    while (this.#backlog.length > 0 && this.#inFlight < this.#maxInFlight) {
      this.#dispatch(this.#backlog.shift()!);
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#closed || this.#outbox.length === 0) return;
    const batch = this.#outbox;
    this.#outbox = [];
    let bytes: Uint8Array;
    try {
      bytes = encodeFrames(batch);
    } catch (error) {
      return this.#close("write-error", error, true);
    }
    this.#transport.write(bytes);
    this.#updateFlow();
    if (this.#draining) this.#maybeFinish();
  }

  #updateFlow(): void {
    if (this.#closed || this.#draining) return;
    const full = this.#backlog.length > 0 || this.#inFlight >= this.#maxInFlight ||
      this.#transport.writableLength > this.#highWater;
    if (full && !this.#paused) {
      this.#paused = true;
      this.#transport.pause();
    } else if (!full && this.#paused) {
      this.#paused = false;
      this.#transport.resume();
    }
  }

  #maybeFinish(): void {
    if (this.#closed) return;
    if (this.#backlog.length > 0) {
      while (this.#backlog.length > 0 && this.#inFlight < this.#maxInFlight) {
        this.#dispatch(this.#backlog.shift()!);
      }
    }
    if (this.#inFlight === 0 && this.#backlog.length === 0 && this.#outbox.length === 0) {
      this.#close(this.#drainReason, undefined, false);
    }
  }

  /**
   * Called by the sweeper every tick: closes a session whose half-received frame is past the
   * frame timeout, or that has been idle (nothing in flight, nothing received or answered) for
   * the idle timeout. False once closed.
   */
  sweep(): boolean {
    if (this.#closed) return false;
    const now = this.#now();
    if (this.#active) {
      // Activity is timed at the sweep after it: at most a tick late, so idleness is never
      // judged early, and the query path reads no clock.
      this.#active = false;
      this.#lastActivity = now;
    }
    // partialSince may legitimately be 0, so ask whether bytes are buffered.
    if (this.#decoder.bufferedBytes > 0 && now - this.#decoder.partialSince >= this.#frameMs) {
      this.#close("frame-timeout", undefined, true);
      return false;
    }
    if (
      this.#inFlight === 0 && this.#backlog.length === 0 && this.#outbox.length === 0 &&
      now - this.#lastActivity >= this.#idleMs
    ) {
      this.#close("idle", undefined, false);
      return false;
    }
    return true;
  }

  #close(reason: CloseReason, error: unknown, abrupt: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sweeper.delete(this);
    this.#backlog = [];
    this.#outbox = [];
    if (abrupt) this.#transport.destroy();
    else this.#transport.end();
    for (const resolve of this.#drainWaiters ?? []) resolve();
    this.#drainWaiters = undefined;
    this.#onClose?.(reason, error);
  }
}
