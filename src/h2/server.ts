/**
 * The server side of one HTTP/2 connection, on the connection core (`connection.ts`), cut to
 * what a DoH face needs: requests with small bodies, answered by a handler, with the limits a
 * public service needs: concurrent streams (REFUSED_STREAM, and an offence once the client has
 * acknowledged the limit), the compressed header block and the decoded header list (431 for
 * that stream; offences), malformed fields and `:authority` (400, RFC 9113 §8.2.1), body sizes
 * (413), a request read deadline (a stream or header block the client leaves unfinished is
 * reset, a connection left with nothing else is closed), replies that wait for the client's
 * flow-control window (capped in bytes, and reset after the same deadline without progress),
 * request bodies held in one buffer per stream (capped in bytes and in DATA frames for the
 * connection), reset and SETTINGS floods over a time window, a bounded outbox with a write
 * deadline, idle connections. A client's third offence ends its connection with
 * GOAWAY(ENHANCE_YOUR_CALM).
 *
 * Requests that complete while a read is handled start once all of that read's frames are:
 * a stream the client resets in the same read (rapid reset) never reaches the handler. A reset
 * later aborts the handler's signal.
 *
 * The hot path (a GET whose HEADERS carry END_STREAM, answered at once) arms no timer and
 * allocates nothing for these bounds.
 *
 * The Deno edge (`src/deno/doh_listener.ts`) accepts connections and supplies the
 * handler. Responses are encoded with static-table references and literals only, so the
 * client's decoder needs no table state from us.
 *
 * @module
 */
import type { H2Clock } from "./clock.ts";
import { H2Core } from "./connection.ts";
import { H2Error } from "./error.ts";
import type { H2Stream } from "./side.ts";
import type { H2Socket } from "./socket.ts";
import { validAuthority, validFieldName, validFieldValue } from "./fields.ts";
import { Code, ConnectionError, Setting } from "./frames.ts";
import { encodeResponseHead, ResponseHeadWriter } from "./hpack_encode.ts";
import type { ServerHandler, ServerReply, ServerRequest } from "../serve/exchange.ts";
import { LazyAbort } from "../async/lazy_abort.ts";

/** Options of {@linkcode H2ServerConnection}. */
export interface H2ServerOptions {
  /** Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). Default 128. */
  maxStreams?: number;
  /** Largest request body; larger gets 413. Default 65 535 (the largest DNS message). */
  maxBodyBytes?: number;
  /** The reply to a body over `maxBodyBytes`. Default: 413 with an empty body. */
  tooLargeReply?: ServerReply;
  /** Largest compressed request header block (HEADERS plus CONTINUATION). Default 16 KiB. */
  maxHeaderBytes?: number;
  /**
   * Largest decoded request header list (RFC 9113 §6.5.2: name and value octets plus 32 per
   * field), advertised as SETTINGS_MAX_HEADER_LIST_SIZE and counted while decoding; a request
   * over it gets 431 and never reaches the handler, and counts as an offence. Default 16 KiB.
   */
  maxHeaderListSize?: number;
  /**
   * The request read deadline: the client's preface and SETTINGS, each header block, and each
   * request body must be complete this long after they begin, and a reply waiting for the
   * client's flow-control window must make progress within it; an unfinished stream or a
   * stalled reply is reset (RST_STREAM CANCEL), an unfinished preface or header block ends the
   * connection. At most {@linkcode MAX_REQUEST_TIMEOUT_MS} (larger values are cut to it).
   * Default 10 000 ms.
   */
  requestTimeoutMs?: number;
  /** A socket write unfinished after this long ends the connection. Default 30 000 ms. */
  writeTimeoutMs?: number;
  /** Bytes queued for the socket above which the connection stops reading. Default 256 KiB. */
  writeHighWaterMark?: number;
  /**
   * Reply bytes waiting for the client's flow-control window, all streams together; a reply
   * that would take them over is reset (CANCEL) instead. Default 1 MiB.
   */
  maxParkedBytes?: number;
  /**
   * Bytes of the buffers holding request bodies still arriving, all streams together; past it
   * GOAWAY(ENHANCE_YOUR_CALM). Default 1 MiB.
   */
  maxBufferedBodyBytes?: number;
  /**
   * DATA frames received on the streams open now, together; past it GOAWAY(ENHANCE_YOUR_CALM).
   * Default 1 024 (a 64 KiB body takes 4).
   */
  maxDataFrames?: number;
  /** Closed after this long with no stream open. Default 30 000 ms. */
  idleTimeoutMs?: number;
  /** The time and timers (deadlines, idle, writes, the shutdown's grace). Default the runtime's. */
  clock?: H2Clock;
  /** Called once when the connection is gone. */
  onClose?: (reason: string) => void;
}

/** The largest request read deadline a server connection takes. */
export const MAX_REQUEST_TIMEOUT_MS = 15_000;
/**
 * Streams a client may reset at once (rapid reset, CVE-2023-44487), counting the streams reset
 * for its flow-control faults; {@linkcode RESET_RATE} more come back each second. Past them:
 * GOAWAY(ENHANCE_YOUR_CALM). nghttp2 allows 1 000 and 33 a second by default.
 */
export const RESET_BURST = 400;
/** See {@linkcode RESET_BURST}. */
export const RESET_RATE = 40;

/** The answer to a request whose header list is over the cap: 431, no body. */
const HEADERS_TOO_LARGE = encodeResponseHead(431, [["content-length", "0"]]);
/** The answer to a malformed request (RFC 9113 §8.2.1): 400, no body. */
const BAD_REQUEST = encodeResponseHead(400, [["content-length", "0"]]);
/** The one buffer response heads are built in: each is copied into its outbox at once. */
const HEAD = new ResponseHeadWriter();

/** Fields that must not appear in HTTP/2 (RFC 9113 §8.2.2). */
const CONNECTION_FIELDS = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

interface Stream extends H2Stream {
  readonly id: number;
  method: string;
  path: string;
  authority: string;
  headers: [string, string][];
  /** The declared content-length, up to the body cap (0 when none): the body buffer's size. */
  declared: number;
  /** The client ended its side. */
  ended: boolean;
  /** We answered or reset it. */
  done: boolean;
  /**
   * What the handler gets, made with the stream; its abort is the stream's (the signal made only
   * if the handler reads it: a cache hit does not).
   */
  readonly request: StreamRequest;
}

/** A stream's request as the handler sees it, and the stream's abort: one object per stream. */
class StreamRequest extends LazyAbort implements ServerRequest {
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly headers: readonly (readonly [string, string])[];
  /** Set when the request is handed over (none for GET and HEAD). */
  body: Uint8Array | undefined;

  constructor(
    method: string,
    path: string,
    authority: string,
    headers: readonly (readonly [string, string])[],
  ) {
    super();
    this.method = method;
    this.path = path;
    this.authority = authority;
    this.headers = headers;
    this.body = undefined;
  }
}

/**
 * One server-side HTTP/2 connection. Create it once the TLS handshake agreed on `h2`; it reads
 * until the client leaves, an error ends it, or {@linkcode shutdown} finishes.
 *
 * @example
 * ```ts
 * new H2ServerConnection(socket, async (request) => ({
 *   status: 200,
 *   headers: [["content-type", "text/plain"]],
 *   body: new TextEncoder().encode(request.path),
 * }));
 * ```
 */
export class H2ServerConnection extends H2Core<Stream> {
  readonly #handler: ServerHandler;
  readonly #maxStreams: number;
  readonly #maxBody: number;
  readonly #tooLarge: ServerReply;
  readonly #onClose?: (reason: string) => void;
  /** The fields of the header block being decoded. */
  #fields: [string, string][] = [];
  /** Requests complete in the read being handled, started once all its frames are. */
  readonly #ready: Stream[] = [];
  #resolveClosed!: () => void;
  readonly #closedPromise = new Promise<void>((resolve) => (this.#resolveClosed = resolve));

  constructor(socket: H2Socket, handler: ServerHandler, options: H2ServerOptions = {}) {
    const maxStreams = options.maxStreams ?? 128;
    const maxHeaderListSize = options.maxHeaderListSize ?? 16 * 1024;
    const requestTimeoutMs = Math.min(
      Math.max(options.requestTimeoutMs ?? 10_000, 1),
      MAX_REQUEST_TIMEOUT_MS,
    );
    super({
      side: "server",
      settings: [
        [Setting.MaxConcurrentStreams, maxStreams],
        [Setting.MaxHeaderListSize, maxHeaderListSize],
      ],
      maxHeaderBytes: options.maxHeaderBytes ?? 16 * 1024,
      maxHeaderListSize,
      idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
      readTimeoutMs: requestTimeoutMs,
      writeTimeoutMs: options.writeTimeoutMs ?? 30_000,
      writeHighWaterMark: options.writeHighWaterMark ?? 256 * 1024,
      maxParkedBytes: options.maxParkedBytes ?? 1024 * 1024,
      maxBufferedBytes: options.maxBufferedBodyBytes ?? 1024 * 1024,
      maxDataFrames: options.maxDataFrames ?? 1_024,
      resetBudget: [RESET_BURST, RESET_RATE],
      // Small while the client is quiet (an idle connection pins its pending read's buffer).
      readBuffer: [4 * 1024, 32 * 1024],
      clock: options.clock,
    });
    this.#handler = handler;
    this.#maxStreams = maxStreams;
    this.#maxBody = options.maxBodyBytes ?? 65_535;
    this.#tooLarge = options.tooLargeReply ?? { status: 413, headers: [], body: new Uint8Array(0) };
    this.#onClose = options.onClose;
    this.start(socket);
  }

  /** Streams being answered. */
  get activeStreams(): number {
    return this.streams.size;
  }

  /**
   * Graceful close: GOAWAY with the last stream taken, no new streams, and the connection
   * closes once the open ones are answered (or after `graceMs`).
   */
  shutdown(graceMs: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.beginDrain();
    this.closeIfDone();
    const timer = this.clock.setTimeout(() => this.#close("shutdown"), graceMs);
    return this.#closedPromise.finally(() => this.clock.clearTimeout(timer));
  }

  /** Closes now. */
  destroy(): void {
    this.#close("destroyed");
  }

  #close(reason: string): void {
    this.terminate(new H2Error(reason, false), false);
  }

  // --- core hooks ------------------------------------------------------------------------

  protected onHeaderField(name: string, value: string): void {
    this.#fields.push([name, value]);
  }

  protected onHeaderBlock(id: number, endStream: boolean): void {
    const fields = this.#fields;
    this.#fields = [];
    const existing = this.#trailersOrNew(id, endStream);
    if (existing) {
      existing.ended = true;
      this.restArrived(existing);
      this.#ready.push(existing);
      return;
    }
    if (this.draining) return this.#reset(id, Code.RefusedStream);
    if (this.streams.size >= this.#maxStreams) {
      this.#reset(id, Code.RefusedStream);
      // Before the client has our SETTINGS it may not know the limit; after, it is abuse.
      if (this.settingsAcked) this.offend("streams over SETTINGS_MAX_CONCURRENT_STREAMS");
      return;
    }
    let method = "";
    let path = "";
    let authority = "";
    let malformed = false;
    const headers: [string, string][] = [];
    for (const [name, value] of fields) {
      if (!validFieldName(name) || !validFieldValue(value)) malformed = true;
      if (name === ":method") method = value;
      else if (name === ":path") path = value;
      else if (name === ":authority") authority = value;
      else if (name === ":scheme" || name === ":protocol") continue;
      else if (name.startsWith(":") || CONNECTION_FIELDS.has(name)) {
        return this.#reset(id, Code.ProtocolError);
      } else headers.push([name, value]);
    }
    if (!authority) authority = headers.find(([n]) => n === "host")?.[1] ?? "";
    if (malformed || !validAuthority(authority)) {
      // RFC 9113 §8.2.1: a 400, without a stream slot (as the 431 above); RST_STREAM(NO_ERROR)
      // asks the client not to send a body.
      this.sendHeaders(id, BAD_REQUEST, true);
      if (!endStream) this.reset(id, Code.NoError);
      return;
    }
    if (!method || !path.startsWith("/")) return this.#reset(id, Code.ProtocolError);
    const stream: Stream = {
      id,
      method,
      path,
      authority,
      headers,
      declared: 0,
      ended: endStream,
      done: false,
      request: new StreamRequest(method, path, authority, headers),
      sendWindow: 0,
      pending: undefined,
      received: 0,
      readBy: 0,
      stalledSince: 0,
      dataFrames: 0,
      buffer: undefined,
      buffered: 0,
    };
    this.open(stream);
    if (endStream) {
      this.#ready.push(stream);
      return;
    }
    // A declared body over the cap is refused now: it could not arrive anyway, since no stream
    // WINDOW_UPDATE is sent and the client would wait for window until the idle timeout.
    const length = headers.find(([n]) => n === "content-length")?.[1];
    const declared = length === undefined ? 0 : Number(length);
    if (declared > this.#maxBody) return this.#refuseBody(stream);
    if (declared > 0) stream.declared = Math.floor(declared); // the body buffer's size
    this.awaitRest(stream); // the body must follow within the read deadline
  }

  protected onHeaderListTooLarge(id: number, endStream: boolean): void {
    this.#fields = [];
    const existing = this.#trailersOrNew(id, endStream);
    if (existing) { // trailers: the request cannot be whole, but it can still be answered
      existing.ended = true;
      this.takeBody(existing);
      this.restArrived(existing);
      this.#reply(existing, { status: 431, headers: [], body: new Uint8Array(0) });
    } else if (this.draining) this.#reset(id, Code.RefusedStream);
    else {
      // Answered at once, without a stream slot: 431 ends our side; RST_STREAM(NO_ERROR) asks
      // the client to stop sending a body (RFC 9113 §8.1).
      this.sendHeaders(id, HEADERS_TOO_LARGE, true);
      if (!endStream) this.reset(id, Code.NoError);
    }
    this.offend("request header list over SETTINGS_MAX_HEADER_LIST_SIZE");
  }

  /**
   * The open stream a header block's trailers end, or undefined for a block that opens stream
   * `id` (recorded as the last one taken). Throws for a block that may do neither.
   */
  #trailersOrNew(id: number, endStream: boolean): Stream | undefined {
    if (id % 2 === 0) throw new ConnectionError(Code.ProtocolError, "bad stream ID");
    const existing = this.streams.get(id);
    if (existing) {
      // Trailers: only valid to end the stream.
      if (!endStream || existing.ended) {
        throw new ConnectionError(Code.ProtocolError, "HEADERS mid-stream");
      }
      return existing;
    }
    if (id <= this.lastPeerId) throw new ConnectionError(Code.ProtocolError, "stream ID reused");
    this.lastPeerId = id;
    return undefined;
  }

  protected onData(
    id: number,
    stream: Stream | undefined,
    data: Uint8Array,
    endStream: boolean,
  ): void {
    if (!stream || stream.ended) {
      if (id > this.lastPeerId) {
        throw new ConnectionError(Code.ProtocolError, "DATA on an idle stream");
      }
      if (stream?.ended) this.#reset(id, Code.StreamClosed);
      return;
    }
    if (stream.buffered + data.length > this.#maxBody) return this.#refuseBody(stream);
    // No stream WINDOW_UPDATE: the default window (65 535) holds the largest body accepted.
    if (data.length > 0) this.appendBody(stream, data, this.#maxBody, stream.declared);
    if (endStream) {
      stream.ended = true;
      this.restArrived(stream);
      this.#ready.push(stream);
    }
  }

  /** Answers a body over the cap with the 413 reply and stops the client sending the rest. */
  #refuseBody(stream: Stream): void {
    stream.ended = true;
    this.takeBody(stream);
    this.restArrived(stream);
    this.#reply(stream, this.#tooLarge);
    this.reset(stream.id, Code.NoError);
  }

  protected onStreamReset(stream: Stream): void {
    this.#abandon(stream, "the client reset the stream");
  }

  protected onStreamError(stream: Stream, error: H2Error): void {
    this.#abandon(stream, error.message);
  }

  protected override onBodySent(stream: Stream): void {
    this.forget(stream);
  }

  protected override onFramesRead(): void {
    const ready = this.#ready;
    if (ready.length === 0) return;
    // Handlers answer later (a promise): none of them can add to the list while it is walked.
    for (let i = 0; i < ready.length && !this.closed; i++) {
      if (!ready[i].done) this.#dispatch(ready[i]);
    }
    ready.length = 0;
  }

  protected onTerminate(reason: H2Error): void {
    this.#ready.length = 0;
    for (const stream of this.streams.values()) {
      stream.request.abort(new Error(`connection closed: ${reason.message}`));
    }
    this.#resolveClosed();
    this.#onClose?.(reason.message);
  }

  // --- answering -------------------------------------------------------------------------

  #dispatch(stream: Stream): void {
    const body = this.takeBody(stream);
    let promise: Promise<ServerReply>;
    try {
      const request = stream.request;
      if (stream.method !== "GET" && stream.method !== "HEAD") request.body = body;
      promise = this.#handler(request);
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then(
      (reply) => this.#reply(stream, reply),
      () => this.#reply(stream, { status: 500, headers: [], body: new Uint8Array(0) }),
    );
  }

  #reply(stream: Stream, reply: ServerReply): void {
    if (stream.done || this.closed) return;
    stream.done = true;
    const head = HEAD;
    head.begin(reply.status);
    for (const [name, value] of reply.headers) {
      const lower = name.toLowerCase();
      if (lower !== "content-length" && !CONNECTION_FIELDS.has(lower)) head.field(lower, value);
    }
    head.contentLength(reply.body.length);
    const empty = reply.body.length === 0 || stream.method === "HEAD";
    this.sendHeaders(stream.id, head.finish(), empty); // copied into the outbox at once
    if (empty) return this.forget(stream);
    stream.pending = reply.body;
    this.sendBody(stream);
  }

  /** Resets a stream and, if it is open, abandons it. */
  #reset(id: number, code: number): void {
    this.reset(id, code);
    const stream = this.streams.get(id);
    if (stream) this.#abandon(stream, "stream reset");
  }

  /** Gives up an open stream unanswered: aborts its handler and forgets it. */
  #abandon(stream: Stream, why: string): void {
    stream.done = true;
    stream.request.abort(new Error(why));
    this.forget(stream);
  }
}
