/**
 * One HTTP/2 client connection (RFC 9113) that does exactly what a DoH client needs: many
 * concurrent request/response exchanges with small bodies, and nothing else (no server push,
 * no priorities, no trailers read, no dynamic-table HPACK on the way out).
 *
 * Runtime-free: it runs over an {@linkcode H2Socket} the edge opens (TLS with ALPN `h2`).
 * Every frame queued in one turn of the event loop leaves in one socket write, and every frame
 * that arrives in one read is handled in one pass, so the per-request cost is a few small
 * allocations, not the streams and events of a general HTTP/2 stack.
 *
 * @module
 */
import { concatBytes } from "../../bytes/concat.ts";
import { TransportError } from "../doh_transport.ts";
import { Code, ConnectionError, Flag, FrameReader, FrameType, PREFACE, u32 } from "./frames.ts";
import { HpackDecoder, HpackError } from "./hpack.ts";
import { FrameOutbox } from "./outbox.ts";

/** The byte stream under a connection: an established TLS connection that negotiated `h2`. */
export interface H2Socket {
  /** Reads into `buffer`; resolves the byte count, or `null` at end of stream. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes all of `bytes`. */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes both directions now. Safe to call more than once. */
  close(): void;
}

/** What an exchange resolves with. */
export interface H2Response {
  readonly status: number;
  readonly contentType: string;
  /** Empty unless the status is 200. */
  readonly body: Uint8Array;
}

/** Options of {@linkcode H2Connection}. */
export interface H2ConnectionOptions {
  /** The connection closes itself after this long with no exchange open. Default 25 000 ms. */
  idleTimeoutMs?: number;
  /** Called once when the connection is gone (closed, failed, idled out). */
  onClose?: (error?: Error) => void;
}

/** Stream receive window we advertise: room for any DNS answer plus padding, never refilled. */
const STREAM_WINDOW = 256 * 1024;
/** Connection receive window we keep open. */
const CONNECTION_WINDOW = 16 * 1024 * 1024;
/** Highest stream ID (2^31 - 1). */
const MAX_STREAM_ID = 0x7fffffff;
/** Concurrent streams assumed until the server's SETTINGS say otherwise, and our own cap. */
const DEFAULT_STREAMS = 100;
const STREAM_CAP = 1_000;

/** One request/response on the connection. */
interface Exchange {
  id: number;
  readonly head: Uint8Array;
  /** Body bytes not yet sent (POST); `undefined` for a request without a body. */
  body: Uint8Array | undefined;
  readonly maxBody: number;
  readonly signal: AbortSignal;
  readonly resolve: (response: H2Response) => void;
  readonly reject: (error: unknown) => void;
  readonly onAbort: () => void;
  /** Our send window on this stream. */
  sendWindow: number;
  status: number;
  contentType: string;
  chunks: Uint8Array[];
  size: number;
  /** The server ended its side (END_STREAM) or we reset the stream. */
  done: boolean;
}

/**
 * An HTTP/2 client connection. Requests may be made at once: they are queued until the socket
 * is up and a stream slot is free.
 *
 * @example
 * ```ts
 * const conn = new H2Connection(connect(), {});
 * const res = await conn.request(head, query, 65_535, AbortSignal.timeout(2_000));
 * ```
 */
export class H2Connection {
  readonly #options: H2ConnectionOptions;
  #socket: H2Socket | undefined;
  readonly #decoder = new HpackDecoder();
  readonly #streams = new Map<number, Exchange>();
  /** Exchanges waiting for a stream slot (or for the socket). */
  #waiting: Exchange[] = [];
  /** Open exchanges whose body waits for send window. */
  #blocked: Exchange[] = [];
  #nextId = 1;
  #peerMaxStreams = DEFAULT_STREAMS;
  #peerInitialWindow = 65_535;
  #peerMaxFrame = 16_384;
  #sendWindow = 65_535;
  /** Connection-level bytes received since we last opened the window. */
  #received = 0;
  readonly #outbox = new FrameOutbox(
    (error) => this.#fail(error, true),
    () => {
      if (this.#draining) this.#closeIfDone();
    },
  );
  /** A header block being continued (CONTINUATION), and its stream. */
  #continuation: { id: number; endStream: boolean; parts: Uint8Array[] } | undefined;
  /** No new requests: GOAWAY received or sent, failed, or rotated. */
  #draining = false;
  #closed = false;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** Requests accepted so far (for rotation). */
  requests = 0;

  constructor(socket: Promise<H2Socket>, options: H2ConnectionOptions = {}) {
    this.#options = options;
    socket.then(
      (s) => {
        if (this.#closed) {
          s.close();
          return;
        }
        this.#socket = s;
        this.#outbox.attach(s);
        this.#start();
      },
      (error) => this.#fail(error instanceof Error ? error : new Error(String(error)), true),
    );
  }

  /** Takes new requests (not draining, not closed). */
  get usable(): boolean {
    return !this.#draining && !this.#closed;
  }

  /** Exchanges open or waiting on this connection. */
  get load(): number {
    return this.#streams.size + this.#waiting.length;
  }

  /** Whether a new request would start at once rather than wait for a stream slot. */
  get hasRoom(): boolean {
    return this.#streams.size + this.#waiting.length < this.#peerMaxStreams;
  }

  /**
   * Sends one request: `head` is a complete HPACK header block, `body` the request body (none
   * for GET). Resolves with the response (body read up to `maxBody` bytes, else a RangeError);
   * rejects with a {@linkcode TransportError} when the connection fails or the server refuses or
   * resets the stream, and with `signal.reason` on abort.
   */
  request(
    head: Uint8Array,
    body: Uint8Array | undefined,
    maxBody: number,
    signal: AbortSignal,
  ): Promise<H2Response> {
    if (!this.usable) return Promise.reject(new TransportError("connection is closing", true));
    if (signal.aborted) return Promise.reject(signal.reason);
    this.requests++;
    return new Promise<H2Response>((resolve, reject) => {
      const exchange: Exchange = {
        id: 0,
        head,
        body,
        maxBody,
        signal,
        resolve,
        reject,
        onAbort: () => this.#abort(exchange),
        sendWindow: 0,
        status: 0,
        contentType: "",
        chunks: [],
        size: 0,
        done: false,
      };
      signal.addEventListener("abort", exchange.onAbort, { once: true });
      this.#waiting.push(exchange);
      this.#pump();
    });
  }

  /** Stops taking requests; closes once the open exchanges finish. */
  drain(): void {
    if (this.#draining || this.#closed) return;
    this.#draining = true;
    if (this.#socket) this.#outbox.emit(FrameType.Goaway, 0, 0, this.#goawayPayload(Code.NoError));
    this.#closeIfDone();
  }

  /** Closes now; open exchanges fail with a retryable {@linkcode TransportError}. */
  close(): void {
    this.#fail(new Error("connection closed"), true);
  }

  // --- sending -------------------------------------------------------------------------

  #start(): void {
    const settings = new Uint8Array(12);
    const view = new DataView(settings.buffer);
    view.setUint16(0, 0x2); // ENABLE_PUSH
    view.setUint32(2, 0);
    view.setUint16(6, 0x4); // INITIAL_WINDOW_SIZE
    view.setUint32(8, STREAM_WINDOW);
    this.#outbox.raw(PREFACE);
    this.#outbox.emit(FrameType.Settings, 0, 0, settings);
    this.#outbox.emit(FrameType.WindowUpdate, 0, 0, u32(CONNECTION_WINDOW - 65_535));
    this.#read();
    this.#pump();
  }

  /** Starts waiting exchanges while stream slots are free. */
  #pump(): void {
    if (!this.#socket || this.#closed) return;
    while (this.#waiting.length > 0 && this.#streams.size < this.#peerMaxStreams) {
      if (this.#nextId > MAX_STREAM_ID) {
        this.#draining = true;
        for (const e of this.#waiting.splice(0)) {
          this.#settle(e, new TransportError("stream IDs exhausted", true));
        }
        break;
      }
      const exchange = this.#waiting.shift()!;
      exchange.id = this.#nextId;
      this.#nextId += 2;
      exchange.sendWindow = this.#peerInitialWindow;
      this.#streams.set(exchange.id, exchange);
      this.#sendHeaders(exchange);
      if (exchange.body !== undefined) this.#sendBody(exchange);
    }
    if (this.#idleTimer !== undefined && this.#streams.size > 0) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
    }
  }

  #sendHeaders(exchange: Exchange): void {
    const { head, id } = exchange;
    const endStream = exchange.body === undefined ? Flag.EndStream : 0;
    if (head.length <= this.#peerMaxFrame) {
      this.#outbox.emit(FrameType.Headers, Flag.EndHeaders | endStream, id, head);
      return;
    }
    for (let at = 0; at < head.length; at += this.#peerMaxFrame) {
      const part = head.subarray(at, at + this.#peerMaxFrame);
      const last = at + this.#peerMaxFrame >= head.length ? Flag.EndHeaders : 0;
      if (at === 0) this.#outbox.emit(FrameType.Headers, endStream | last, id, part);
      else this.#outbox.emit(FrameType.Continuation, last, id, part);
    }
  }

  /** Sends as much of the body as the windows allow; parks the rest in #blocked. */
  #sendBody(exchange: Exchange): void {
    let body = exchange.body!;
    for (;;) {
      // An empty body (or its end) needs no window: a zero-length DATA frame with END_STREAM.
      const room = Math.min(this.#peerMaxFrame, this.#sendWindow, exchange.sendWindow);
      if (body.length > 0 && room <= 0) {
        exchange.body = body;
        if (!this.#blocked.includes(exchange)) this.#blocked.push(exchange);
        return;
      }
      const n = Math.min(body.length, Math.max(0, room));
      const last = n === body.length;
      this.#outbox.emit(
        FrameType.Data,
        last ? Flag.EndStream : 0,
        exchange.id,
        body.subarray(0, n),
      );
      this.#sendWindow -= n;
      exchange.sendWindow -= n;
      body = body.subarray(n);
      if (last) break;
    }
    exchange.body = undefined;
  }

  #unblock(): void {
    if (this.#blocked.length === 0) return;
    const blocked = this.#blocked;
    this.#blocked = [];
    for (const exchange of blocked) {
      if (exchange.done || exchange.body === undefined) continue;
      this.#sendBody(exchange);
    }
  }

  #goawayPayload(code: number): Uint8Array {
    const payload = new Uint8Array(8);
    const view = new DataView(payload.buffer);
    view.setUint32(0, 0); // we accept no server-initiated streams
    view.setUint32(4, code);
    return payload;
  }

  #reset(id: number, code: number): void {
    this.#outbox.emit(FrameType.RstStream, 0, id, u32(code));
  }

  // --- receiving -----------------------------------------------------------------------

  async #read(): Promise<void> {
    const socket = this.#socket!;
    const buffer = new Uint8Array(64 * 1024);
    const reader = new FrameReader();
    const onFrame = (type: number, flags: number, id: number, payload: Uint8Array) => {
      this.#frame(type, flags, id, payload);
      return !this.#closed;
    };
    try {
      for (;;) {
        const n = await socket.read(buffer);
        if (n === null) {
          this.#fail(new Error("server closed the connection"), true);
          return;
        }
        if (this.#closed) return;
        reader.feed(buffer.subarray(0, n), onFrame);
        if (this.#closed) return;
        if (this.#draining) this.#closeIfDone();
      }
    } catch (error) {
      if (error instanceof ConnectionError) {
        this.#outbox.emit(FrameType.Goaway, 0, 0, this.#goawayPayload(error.code));
        this.#fail(new Error(`HTTP/2 protocol error from the server: ${error.message}`), false);
      } else {
        this.#fail(error instanceof Error ? error : new Error(String(error)), true);
      }
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
      case FrameType.Continuation: {
        const c = this.#continuation;
        if (!c || c.id !== id) {
          throw new ConnectionError(Code.ProtocolError, "unexpected CONTINUATION");
        }
        c.parts.push(payload.slice());
        if (flags & Flag.EndHeaders) {
          this.#continuation = undefined;
          const size = c.parts.reduce((s, p) => s + p.length, 0);
          this.#onHeaderBlock(id, concatBytes(c.parts, size), c.endStream);
        }
        return;
      }
      case FrameType.RstStream: {
        if (id === 0 || payload.length !== 4) {
          throw new ConnectionError(Code.ProtocolError, "bad RST_STREAM");
        }
        const exchange = this.#streams.get(id);
        if (!exchange) return;
        const code = new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0);
        this.#end(exchange, new TransportError(`stream reset by the server (code ${code})`, true));
        return;
      }
      case FrameType.Settings:
        return this.#onSettings(flags, id, payload);
      case FrameType.PushPromise:
        throw new ConnectionError(Code.ProtocolError, "PUSH_PROMISE although push is disabled");
      case FrameType.Ping:
        if (id !== 0 || payload.length !== 8) {
          throw new ConnectionError(Code.ProtocolError, "bad PING");
        }
        if (!(flags & Flag.Ack)) this.#outbox.emit(FrameType.Ping, Flag.Ack, 0, payload);
        return;
      case FrameType.Goaway:
        return this.#onGoaway(id, payload);
      case FrameType.WindowUpdate: {
        if (payload.length !== 4) {
          throw new ConnectionError(Code.FrameSizeError, "bad WINDOW_UPDATE");
        }
        const increment = new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0) &
          0x7fffffff;
        if (id === 0) {
          if (increment === 0) throw new ConnectionError(Code.ProtocolError, "WINDOW_UPDATE of 0");
          this.#sendWindow += increment;
          if (this.#sendWindow > MAX_STREAM_ID) {
            throw new ConnectionError(Code.FlowControlError, "window overflow");
          }
        } else {
          const exchange = this.#streams.get(id);
          if (!exchange) return;
          exchange.sendWindow += increment;
        }
        this.#unblock();
        return;
      }
      default:
        return; // PRIORITY and unknown frame types are ignored (RFC 9113 §4.1, §5.5)
    }
  }

  #onData(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) throw new ConnectionError(Code.ProtocolError, "DATA on stream 0");
    this.#received += payload.length;
    if (this.#received >= CONNECTION_WINDOW / 2) {
      this.#outbox.emit(FrameType.WindowUpdate, 0, 0, u32(this.#received));
      this.#received = 0;
    }
    const exchange = this.#streams.get(id);
    if (!exchange || exchange.done) return; // reset or abandoned by us: drop
    let data = payload;
    if (flags & Flag.Padded) {
      const pad = payload[0] ?? 0;
      if (payload.length < 1 + pad) throw new ConnectionError(Code.ProtocolError, "bad padding");
      data = payload.subarray(1, payload.length - pad);
    }
    if (exchange.status === 0) throw new ConnectionError(Code.ProtocolError, "DATA before HEADERS");
    exchange.size += data.length;
    if (exchange.size > exchange.maxBody) {
      this.#reset(id, Code.Cancel);
      this.#end(exchange, new RangeError(`body exceeds ${exchange.maxBody} bytes`));
      return;
    }
    if (data.length > 0) exchange.chunks.push(data.slice());
    if (flags & Flag.EndStream) this.#complete(exchange);
  }

  #onHeaders(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) throw new ConnectionError(Code.ProtocolError, "HEADERS on stream 0");
    let start = 0;
    let end = payload.length;
    if (flags & Flag.Padded) {
      const pad = payload[0] ?? 0;
      start = 1;
      end -= pad;
    }
    if (flags & Flag.Priority) start += 5;
    if (start > end) throw new ConnectionError(Code.ProtocolError, "bad HEADERS padding");
    const block = payload.subarray(start, end);
    const endStream = (flags & Flag.EndStream) !== 0;
    if (flags & Flag.EndHeaders) this.#onHeaderBlock(id, block, endStream);
    else this.#continuation = { id, endStream, parts: [block.slice()] };
  }

  #onHeaderBlock(id: number, block: Uint8Array, endStream: boolean): void {
    let head;
    try {
      head = this.#decoder.decode(block); // always: the table's state spans streams
    } catch (error) {
      if (error instanceof HpackError) {
        throw new ConnectionError(Code.CompressionError, error.message);
      }
      throw error;
    }
    const exchange = this.#streams.get(id);
    if (!exchange || exchange.done) return;
    if (exchange.status === 0) {
      if (head.status >= 100 && head.status < 200) return; // informational: wait for the final one
      if (head.status < 200) {
        this.#reset(id, Code.ProtocolError);
        this.#end(exchange, new TransportError(`response without a valid :status`, false));
        return;
      }
      exchange.status = head.status;
      exchange.contentType = head.contentType;
      if (head.status !== 200) {
        if (!endStream) this.#reset(id, Code.Cancel);
        this.#answer(exchange, {
          status: head.status,
          contentType: head.contentType,
          body: new Uint8Array(0),
        });
        this.#forget(exchange);
        return;
      }
    } // else: trailers, ignored
    if (endStream) this.#complete(exchange);
  }

  #onSettings(flags: number, id: number, payload: Uint8Array): void {
    if (id !== 0) throw new ConnectionError(Code.ProtocolError, "SETTINGS on a stream");
    if (flags & Flag.Ack) return;
    if (payload.length % 6 !== 0) throw new ConnectionError(Code.FrameSizeError, "bad SETTINGS");
    const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
    let sawMaxStreams = false;
    for (let at = 0; at < payload.length; at += 6) {
      const key = view.getUint16(at);
      const value = view.getUint32(at + 2);
      if (key === 0x3) {
        this.#peerMaxStreams = Math.min(value, STREAM_CAP);
        sawMaxStreams = true;
      } else if (key === 0x4) {
        if (value > MAX_STREAM_ID) {
          throw new ConnectionError(Code.FlowControlError, "initial window too large");
        }
        const delta = value - this.#peerInitialWindow;
        this.#peerInitialWindow = value;
        for (const e of this.#streams.values()) e.sendWindow += delta;
      } else if (key === 0x5) {
        if (value < 16_384 || value > 16_777_215) {
          throw new ConnectionError(Code.ProtocolError, "bad MAX_FRAME_SIZE");
        }
        this.#peerMaxFrame = value;
      }
    }
    // The first SETTINGS without a stream limit means "unlimited": use our own cap.
    if (!sawMaxStreams && this.#peerMaxStreams === DEFAULT_STREAMS && !this.#settingsSeen) {
      this.#peerMaxStreams = STREAM_CAP;
    }
    this.#settingsSeen = true;
    this.#outbox.emit(FrameType.Settings, Flag.Ack, 0);
    this.#unblock();
    this.#pump();
  }
  #settingsSeen = false;

  #onGoaway(id: number, payload: Uint8Array): void {
    if (id !== 0 || payload.length < 8) throw new ConnectionError(Code.ProtocolError, "bad GOAWAY");
    const view = new DataView(payload.buffer, payload.byteOffset, 8);
    const last = view.getUint32(0) & 0x7fffffff;
    const code = view.getUint32(4);
    this.#draining = true;
    // Streams above `last` were never processed: safe to send again elsewhere.
    for (const exchange of [...this.#streams.values()]) {
      if (exchange.id > last) {
        this.#end(exchange, new TransportError(`server sent GOAWAY (code ${code})`, true));
      }
    }
    for (const e of this.#waiting.splice(0)) {
      this.#settle(e, new TransportError(`server sent GOAWAY (code ${code})`, true));
    }
    this.#closeIfDone();
  }

  // --- ending ----------------------------------------------------------------------------

  #complete(exchange: Exchange): void {
    const body = exchange.chunks.length === 1
      ? exchange.chunks[0]
      : concatBytes(exchange.chunks, exchange.size);
    this.#answer(exchange, { status: exchange.status, contentType: exchange.contentType, body });
    this.#forget(exchange);
  }

  /** Fails an open exchange and forgets it. */
  #end(exchange: Exchange, error: unknown): void {
    this.#settle(exchange, error);
    this.#forget(exchange);
  }

  /** Resolves the exchange with a response. */
  #answer(exchange: Exchange, response: H2Response): void {
    if (exchange.done) return;
    exchange.done = true;
    exchange.signal.removeEventListener("abort", exchange.onAbort);
    exchange.resolve(response);
  }

  /** Rejects the exchange. */
  #settle(exchange: Exchange, error: unknown): void {
    if (exchange.done) return;
    exchange.done = true;
    exchange.signal.removeEventListener("abort", exchange.onAbort);
    exchange.reject(error);
  }

  #forget(exchange: Exchange): void {
    if (exchange.id !== 0 && this.#streams.get(exchange.id) === exchange) {
      this.#streams.delete(exchange.id);
      this.#pump();
      if (this.#streams.size === 0 && this.#waiting.length === 0) {
        if (this.#draining) this.#closeIfDone();
        else this.#armIdle();
      }
    }
  }

  #abort(exchange: Exchange): void {
    if (exchange.done) return;
    const reason = exchange.signal.reason;
    if (exchange.id === 0) {
      const i = this.#waiting.indexOf(exchange);
      if (i >= 0) this.#waiting.splice(i, 1);
      this.#settle(exchange, reason);
      return;
    }
    this.#reset(exchange.id, Code.Cancel);
    this.#end(exchange, reason);
  }

  #armIdle(): void {
    const ms = this.#options.idleTimeoutMs ?? 25_000;
    if (this.#idleTimer !== undefined || this.#closed) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#streams.size === 0 && this.#waiting.length === 0) this.drain();
    }, ms);
  }

  #closeIfDone(): void {
    if (this.#closed || this.#streams.size > 0 || this.#waiting.length > 0) return;
    if (this.#outbox.busy) return; // the outbox calls back when written
    this.#fail(new Error("connection drained"), true);
  }

  #fail(error: Error, retryable: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#draining = true;
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    const failure = new TransportError(error.message, retryable, { cause: error });
    for (const e of this.#waiting.splice(0)) this.#settle(e, failure);
    for (const e of [...this.#streams.values()]) this.#settle(e, failure);
    this.#streams.clear();
    this.#blocked = [];
    const socket = this.#socket;
    if (socket) {
      // Let a final GOAWAY out if one is queued, then close.
      this.#outbox.close(true, () => socket.close());
    }
    this.#options.onClose?.(error);
  }
}
