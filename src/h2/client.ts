/**
 * The client side of one HTTP/2 connection, on the connection core (`connection.ts`), cut to
 * what a DoH client needs: many concurrent request/response exchanges with small bodies, and
 * nothing else (no server push, no priorities, no trailers read, no dynamic-table HPACK on the
 * way out).
 *
 * Every frame queued in one turn of the event loop leaves in one socket write, and every frame
 * that arrives in one read is handled in one pass, so the per-request cost is a few small
 * allocations, not the streams and events of a general HTTP/2 stack.
 *
 * Bounded against a hostile or broken server: a response header list over
 * `maxHeaderListSize` (decoded) fails that request alone (its stream is reset), DATA beyond the
 * stream window fails it too, the server's SETTINGS and an unfinished header block have a read
 * deadline, a request body that waits for the server's window is capped and has the same
 * deadline, response bodies are held in one buffer per stream (capped in bytes and in DATA
 * frames for the connection), resets and SETTINGS frames are rate-limited, and the outbox has a
 * high-water mark and a write deadline.
 *
 * @module
 */
import { type AbortListener, unwatchAbort, watchAbort } from "../async/abort_watch.ts";
import type { H2Clock } from "./clock.ts";
import { H2Core } from "./connection.ts";
import { H2Error } from "./error.ts";
import type { H2Stream } from "./side.ts";
import type { H2Socket } from "./socket.ts";
import { Code, ConnectionError, MAX_WINDOW, Setting } from "./frames.ts";

/** What an exchange resolves with. */
export interface H2Response {
  readonly status: number;
  /** `content-type` (a binary string), or "" if absent. */
  readonly contentType: string;
  /** Empty unless the status is 200. */
  readonly body: Uint8Array;
}

/** Options of {@linkcode H2ClientConnection}. */
export interface H2ClientConnectionOptions {
  /** The connection closes itself after this long with no exchange open. Default 25 000 ms. */
  idleTimeoutMs?: number;
  /** Largest compressed response header block (HEADERS + CONTINUATION). Default 16 KiB. */
  maxHeaderBytes?: number;
  /**
   * Largest decoded response header list (RFC 9113 §6.5.2: name and value octets plus 32 per
   * field), advertised as SETTINGS_MAX_HEADER_LIST_SIZE and counted while decoding; a response
   * over it fails its request with an {@linkcode H2Error} and resets the stream. Default 64 KiB.
   */
  maxHeaderListSize?: number;
  /**
   * The server's SETTINGS, and each response header block once begun, must arrive within this,
   * else the connection ends. (Each request has its own deadline: its signal.) Default 10 000 ms.
   */
  readTimeoutMs?: number;
  /** A socket write unfinished after this long ends the connection. Default 30 000 ms. */
  writeTimeoutMs?: number;
  /** Bytes queued for the socket above which the connection stops reading. Default 256 KiB. */
  writeHighWaterMark?: number;
  /** The time and timers (deadlines, idle, writes). Default the runtime's. */
  clock?: H2Clock;
  /**
   * Called once when the connection is gone, with the error when it failed (not when it drained
   * or was closed by {@linkcode H2ClientConnection.close}).
   */
  onClose?: (error?: H2Error) => void;
}

/** Stream receive window we advertise: room for any DNS answer plus padding, never refilled. */
const STREAM_WINDOW = 256 * 1024;
/** Response bytes being received, all streams together, past which the connection ends. */
const MAX_BUFFERED = 8 * 1024 * 1024;
/** DATA frames on the open streams, together, past which the connection ends. */
const MAX_DATA_FRAMES = 8_192;
/** Request body bytes waiting for the server's window, all streams together. */
const MAX_PARKED = 1024 * 1024;
/**
 * Stream resets a server may send at once, and a second after. A server's resets cost a client
 * little (no work starts for them), so this only stops a flood.
 */
const RESET_BUDGET = [1_000, 100] as const;
/** Concurrent streams assumed until the server's SETTINGS say otherwise, and our own cap. */
const DEFAULT_STREAMS = 100;
const STREAM_CAP = 1_000;

/**
 * One request/response on the connection: one object per request (made for every upstream
 * query), its own abort watcher (an `EventListener` object: no closure per request), fields set
 * in the constructor.
 */
class Exchange implements H2Stream {
  id: number;
  readonly head: Uint8Array;
  pending: Uint8Array | undefined;
  readonly maxBody: number;
  readonly signal: AbortSignal;
  readonly resolve: (response: H2Response) => void;
  readonly reject: (error: unknown) => void;
  /** Watches `signal`: this exchange itself. */
  readonly onAbort: AbortListener;
  sendWindow: number;
  status: number;
  contentType: string;
  /** The server ended its side (END_STREAM) or we reset the stream. */
  done: boolean;
  received: number;
  readBy: number;
  stalledSince: number;
  dataFrames: number;
  buffer: Uint8Array | undefined;
  buffered: number;
  readonly #conn: H2ClientConnection;

  constructor(
    conn: H2ClientConnection,
    head: Uint8Array,
    body: Uint8Array | undefined,
    maxBody: number,
    signal: AbortSignal,
  ) {
    this.id = 0;
    this.head = head;
    this.pending = body;
    this.maxBody = maxBody;
    this.signal = signal;
    this.resolve = settleResolve!;
    this.reject = settleReject!;
    this.onAbort = this;
    this.sendWindow = 0;
    this.status = 0;
    this.contentType = "";
    this.done = false;
    this.received = 0;
    this.readBy = 0;
    this.stalledSince = 0;
    this.dataFrames = 0;
    this.buffer = undefined;
    this.buffered = 0;
    this.#conn = conn;
  }

  /** The request's signal aborted. */
  handleEvent(): void {
    this.#conn.abortExchange(this);
  }
}

/** The settle functions {@linkcode captureSettle} took from the promise made last. */
let settleResolve: ((response: H2Response) => void) | undefined;
let settleReject: ((error: unknown) => void) | undefined;

/** A promise executor shared by every request (a closure per request was measurable). */
function captureSettle(
  resolve: (response: H2Response) => void,
  reject: (error: unknown) => void,
): void {
  settleResolve = resolve;
  settleReject = reject;
}

/**
 * An HTTP/2 client connection. Requests may be made at once: they are queued until the socket
 * is up and a stream slot is free.
 *
 * @example
 * ```ts
 * const conn = new H2ClientConnection(connect(), {});
 * const res = await conn.request(head, query, 65_535, AbortSignal.timeout(2_000));
 * ```
 */
export class H2ClientConnection extends H2Core<Exchange> {
  readonly #onClose?: (error?: H2Error) => void;
  readonly #maxHeaderListSize: number;
  /** Exchanges waiting for a stream slot (or for the socket). */
  #waiting: Exchange[] = [];
  #nextId = 1;
  #peerMaxStreams = DEFAULT_STREAMS;
  /** What the header block being decoded said. */
  #status = 0;
  #contentType = "";
  /** Requests accepted so far (for rotation). */
  requests = 0;

  constructor(socket: Promise<H2Socket>, options: H2ClientConnectionOptions = {}) {
    const maxHeaderListSize = options.maxHeaderListSize ?? 64 * 1024;
    super({
      side: "client",
      settings: [
        [Setting.EnablePush, 0],
        [Setting.InitialWindowSize, STREAM_WINDOW],
        [Setting.MaxHeaderListSize, maxHeaderListSize],
      ],
      maxHeaderBytes: options.maxHeaderBytes ?? 16 * 1024,
      maxHeaderListSize,
      idleTimeoutMs: options.idleTimeoutMs ?? 25_000,
      readTimeoutMs: options.readTimeoutMs ?? 10_000,
      writeTimeoutMs: options.writeTimeoutMs ?? 30_000,
      writeHighWaterMark: options.writeHighWaterMark ?? 256 * 1024,
      maxParkedBytes: MAX_PARKED,
      maxBufferedBytes: MAX_BUFFERED,
      maxDataFrames: MAX_DATA_FRAMES,
      resetBudget: RESET_BUDGET,
      readBuffer: [64 * 1024, 64 * 1024],
      clock: options.clock,
    });
    this.#onClose = options.onClose;
    this.#maxHeaderListSize = maxHeaderListSize;
    socket.then(
      (s) => {
        if (this.closed) {
          s.close();
          return;
        }
        this.start(s);
        this.#pump();
      },
      (error) => {
        const cause = error instanceof Error ? error : new Error(String(error));
        this.terminate(new H2Error(cause.message, true, { cause }));
      },
    );
  }

  /** Takes new requests (not draining, not closed). */
  get usable(): boolean {
    return !this.draining && !this.closed;
  }

  /** Exchanges open or waiting on this connection. */
  get load(): number {
    return this.streams.size + this.#waiting.length;
  }

  /** Whether a new request would start at once rather than wait for a stream slot. */
  get hasRoom(): boolean {
    return this.streams.size + this.#waiting.length < this.#peerMaxStreams;
  }

  /**
   * Sends one request: `head` is a complete HPACK header block, `body` the request body (none
   * for GET). Resolves with the response (body read up to `maxBody` bytes, else a RangeError);
   * rejects with an {@linkcode H2Error} when the connection fails or the server refuses or
   * resets the stream, and with `signal.reason` on abort.
   */
  request(
    head: Uint8Array,
    body: Uint8Array | undefined,
    maxBody: number,
    signal: AbortSignal,
  ): Promise<H2Response> {
    if (!this.usable) return Promise.reject(new H2Error("connection is closing", true));
    if (signal.aborted) return Promise.reject(signal.reason);
    this.requests++;
    const response = new Promise<H2Response>(captureSettle);
    const exchange = new Exchange(this, head, body, maxBody, signal);
    watchAbort(signal, exchange.onAbort);
    this.#waiting.push(exchange);
    this.#pump();
    return response;
  }

  /** Stops taking requests; closes once the open exchanges finish. */
  drain(): void {
    this.beginDrain();
  }

  /** Closes now; open exchanges fail with a retryable {@linkcode H2Error}. */
  close(): void {
    this.terminate(new H2Error("connection closed", true), false);
  }

  // --- core hooks ------------------------------------------------------------------------

  protected override isIdle(): boolean {
    return this.streams.size === 0 && this.#waiting.length === 0;
  }

  protected override onStreamEnded(): void {
    this.#pump();
  }

  protected override onPeerSettings(maxStreams: number | undefined, first: boolean): void {
    if (maxStreams !== undefined) this.#peerMaxStreams = Math.min(maxStreams, STREAM_CAP);
    // The first SETTINGS without a stream limit means "unlimited": use our own cap.
    else if (first && this.#peerMaxStreams === DEFAULT_STREAMS) this.#peerMaxStreams = STREAM_CAP;
    this.#pump();
  }

  protected override onPeerGoaway(last: number, code: number): void {
    // Streams above `last` were never processed: safe to send again elsewhere.
    for (const exchange of [...this.streams.values()]) {
      if (exchange.id > last) {
        this.#end(exchange, new H2Error(`server sent GOAWAY (code ${code})`, true));
      }
    }
    for (const e of this.#waiting.splice(0)) {
      this.#settle(e, new H2Error(`server sent GOAWAY (code ${code})`, true));
    }
  }

  protected onHeaderField(name: string, value: string): void {
    if (name === ":status") this.#status = /^\d{3}$/.test(value) ? Number(value) : -1;
    else if (name === "content-type") this.#contentType = value;
  }

  protected onHeaderBlock(id: number, endStream: boolean): void {
    const status = this.#status;
    const contentType = this.#contentType;
    this.#status = 0;
    this.#contentType = "";
    const exchange = this.streams.get(id);
    if (!exchange || exchange.done) return;
    if (exchange.status === 0) {
      if (status >= 100 && status < 200) return; // informational: wait for the final one
      if (status < 200) {
        this.reset(id, Code.ProtocolError);
        this.#end(exchange, new H2Error(`response without a valid :status`, false));
        return;
      }
      exchange.status = status;
      exchange.contentType = contentType;
      if (status !== 200) {
        if (!endStream) this.reset(id, Code.Cancel);
        this.#answer(exchange, { status, contentType, body: new Uint8Array(0) });
        this.forget(exchange);
        return;
      }
    } // else: trailers, ignored
    if (endStream) this.#complete(exchange);
  }

  protected onData(
    id: number,
    exchange: Exchange | undefined,
    data: Uint8Array,
    endStream: boolean,
  ): void {
    if (!exchange || exchange.done) return; // reset or abandoned by us: drop
    if (exchange.status === 0) throw new ConnectionError(Code.ProtocolError, "DATA before HEADERS");
    if (exchange.buffered + data.length > exchange.maxBody) {
      this.reset(id, Code.Cancel);
      this.#end(exchange, new RangeError(`body exceeds ${exchange.maxBody} bytes`));
      return;
    }
    if (data.length > 0) this.appendBody(exchange, data, exchange.maxBody);
    if (endStream) this.#complete(exchange);
  }

  protected onStreamReset(exchange: Exchange, code: number): void {
    this.#end(exchange, new H2Error(`stream reset by the server (code ${code})`, true));
  }

  protected onStreamError(exchange: Exchange, error: H2Error): void {
    this.#end(exchange, error);
  }

  protected onHeaderListTooLarge(id: number, endStream: boolean): void {
    this.#status = 0;
    this.#contentType = "";
    const exchange = this.streams.get(id);
    if (!exchange || exchange.done) return;
    // Reset unless both sides have ended (the server's END_STREAM, our body all sent).
    if (!endStream || exchange.pending !== undefined) this.reset(id, Code.Cancel);
    this.#end(
      exchange,
      new H2Error(
        `response header list on stream ${id} over ${this.#maxHeaderListSize} bytes (decoded)`,
        false,
      ),
    );
  }

  protected onTerminate(reason: H2Error, failed: boolean): void {
    for (const e of this.#waiting.splice(0)) this.#settle(e, reason);
    for (const e of this.streams.values()) this.#settle(e, reason);
    this.#onClose?.(failed ? reason : undefined);
  }

  // --- exchanges -------------------------------------------------------------------------

  /** Starts waiting exchanges while stream slots are free. */
  #pump(): void {
    if (!this.socket || this.closed) return;
    while (this.#waiting.length > 0 && this.streams.size < this.#peerMaxStreams) {
      if (this.#nextId > MAX_WINDOW) {
        // No stream can open here again: fail the waiting (retryable elsewhere), then drain:
        // GOAWAY, and close once the open streams finish.
        for (const e of this.#waiting.splice(0)) {
          this.#settle(e, new H2Error("stream IDs exhausted", true));
        }
        this.beginDrain();
        break;
      }
      const exchange = this.#waiting.shift()!;
      exchange.id = this.#nextId;
      this.#nextId += 2;
      this.open(exchange);
      this.sendHeaders(exchange.id, exchange.head, exchange.pending === undefined);
      if (exchange.pending !== undefined) this.sendBody(exchange);
    }
  }

  #complete(exchange: Exchange): void {
    const body = this.takeBody(exchange);
    this.#answer(exchange, { status: exchange.status, contentType: exchange.contentType, body });
    this.forget(exchange);
  }

  /** Fails an open exchange and forgets it. */
  #end(exchange: Exchange, error: unknown): void {
    this.#settle(exchange, error);
    this.forget(exchange);
  }

  /** Resolves the exchange with a response. */
  #answer(exchange: Exchange, response: H2Response): void {
    if (exchange.done) return;
    exchange.done = true;
    unwatchAbort(exchange.signal, exchange.onAbort);
    exchange.resolve(response);
  }

  /** Rejects the exchange. */
  #settle(exchange: Exchange, error: unknown): void {
    if (exchange.done) return;
    exchange.done = true;
    unwatchAbort(exchange.signal, exchange.onAbort);
    exchange.reject(error);
  }

  /** For {@linkcode Exchange}: its signal aborted. @internal */
  abortExchange(exchange: Exchange): void {
    if (exchange.done) return;
    const reason = exchange.signal.reason;
    if (exchange.id === 0) {
      const i = this.#waiting.indexOf(exchange);
      if (i >= 0) this.#waiting.splice(i, 1);
      this.#settle(exchange, reason);
      return;
    }
    this.reset(exchange.id, Code.Cancel);
    this.#end(exchange, reason);
  }
}
