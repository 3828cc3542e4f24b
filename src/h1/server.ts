/**
 * The server side of one HTTP/1.1 connection, for clients of the DoH face that offer only
 * HTTP/1.1 and for plain HTTP behind a reverse proxy. Runtime-agnostic: the edge pushes the
 * socket's bytes in ({@linkcode H1ServerConnection.receive}) and supplies writes.
 *
 * What it does: keep-alive (HTTP/1.1 by default, HTTP/1.0 on request), pipelined requests
 * answered in order while their handlers run at once, `Expect: 100-continue`, chunked request
 * bodies, HEAD, and one socket write for all the replies that are ready together. What it
 * refuses, answering and then closing: malformed or ambiguous framing (400), unknown transfer
 * codings (501), heads over `maxHeaderBytes` (431), bodies over `maxBodyBytes` (413), and
 * requests that do not arrive whole within `requestTimeoutMs` of their first byte (408).
 *
 * Costs per connection: one timer, one AbortController (every request's signal: it aborts when
 * the connection goes), an input buffer only while a request is split across reads, and at
 * most `maxPipelined` requests held. Per request: the request object, its fields and the
 * handler's promise.
 *
 * @module
 */
import { isomorphicDecode } from "../bytes/isomorphic.ts";
import type { ServerHandler, ServerReply, ServerRequest } from "../serve/exchange.ts";
import { CHUNKED, type HeadError, isHeadError, parseHead, VALUE_CHAR } from "./head.ts";
import { CONTINUE, httpDate, replyHead, sendsBody } from "./reply.ts";

/** The socket under one connection, as the edge supplies it. */
export interface H1Socket {
  /** Writes all of `bytes` (which it may keep until it resolves). */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes both directions. Safe to call more than once. */
  close(): void;
  /** Stops delivering input (too many requests waiting for answers). */
  pause?(): void;
  /** Delivers input again. */
  resume?(): void;
}

/** Options of {@linkcode H1ServerConnection}. */
export interface H1ServerOptions {
  /** Largest request head (request line and fields); larger gets 431, then close. Default 8 KiB. */
  maxHeaderBytes?: number;
  /** Largest request body; larger gets `tooLargeReply`, then close. Default 65 535. */
  maxBodyBytes?: number;
  /** The reply to a body over `maxBodyBytes`. Default: 413 with an empty body. */
  tooLargeReply?: ServerReply;
  /**
   * A request (line, fields and body) must arrive whole within this long of its first byte,
   * else 408 and close. Default 10 000 ms.
   */
  requestTimeoutMs?: number;
  /** Closed after this long with nothing to read or answer; also a write's limit. Default 30 000 ms. */
  idleTimeoutMs?: number;
  /** Requests read but not yet answered; past it, input pauses. Default 16. */
  maxPipelined?: number;
  /** Send a Date field. Default true. */
  date?: boolean;
  /** The clock, in ms. Default `Date.now`. */
  now?: () => number;
  /** Called once when the connection is gone. */
  onClose?: (reason: string) => void;
}

// Parser states.
const HEAD: number = 0;
const BODY: number = 1;
const CHUNK_SIZE: number = 2;
const CHUNK_DATA: number = 3;
const CHUNK_END: number = 4;
const TRAILERS: number = 5;
/** Reading is over: an error is being answered, or the connection is closing. */
const STOPPED: number = 6;

/** Input kept while parsing is paused, over what a stuck request needs. */
const PAUSED_SLACK = 128 * 1024;
/** Longest chunk-size line. */
const MAX_CHUNK_LINE = 1024;

const EMPTY = new Uint8Array(0);
const INTERNAL_ERROR: ServerReply = { status: 500, headers: [], body: EMPTY };
const text = new TextEncoder();

const TIMEOUT: HeadError = { status: 408, why: "request not received in time" };
const TOO_LARGE_HEAD: HeadError = { status: 431, why: "request head too large" };
const BARE_LF: HeadError = { status: 400, why: "line ending without CR" };
const BAD_CHUNK: HeadError = { status: 400, why: "malformed chunked body" };

/** One request, from its head to its reply being written. It is what the handler receives. */
class Exchange implements ServerRequest {
  body: Uint8Array | undefined = undefined;
  /** Set when the handler settles (or at once, for a refusal). */
  reply: ServerReply | undefined = undefined;
  /** An interim 100 Continue is owed before the body is read. */
  sendContinue = false;
  constructor(
    readonly method: string,
    readonly path: string,
    readonly authority: string,
    readonly headers: readonly (readonly [string, string])[],
    readonly signal: AbortSignal,
    /** Close the connection after this reply. */
    public close: boolean,
    /** Say `connection: keep-alive` (HTTP/1.0). */
    readonly keepAlive: boolean,
  ) {}
}

/**
 * One server-side HTTP/1.1 connection. The edge creates it per accepted socket, calls
 * {@linkcode receive} with each chunk read and {@linkcode receiveEnd} when the peer closes or
 * the read fails; the connection writes replies and closes the socket itself.
 *
 * @example
 * ```ts
 * const connection = new H1ServerConnection(socket, async (request) => ({
 *   status: 200,
 *   headers: [["content-type", "text/plain"]],
 *   body: new TextEncoder().encode(request.path),
 * }));
 * nodeSocket.on("data", (bytes) => connection.receive(bytes));
 * nodeSocket.on("end", () => connection.receiveEnd());
 * ```
 */
export class H1ServerConnection {
  readonly #socket: H1Socket;
  readonly #handler: ServerHandler;
  readonly #maxHead: number;
  readonly #maxBody: number;
  readonly #tooLarge: ServerReply;
  readonly #requestMs: number;
  readonly #idleMs: number;
  readonly #maxPipelined: number;
  readonly #date: boolean;
  readonly #now: () => number;
  readonly #onClose?: (reason: string) => void;
  readonly #controller = new AbortController();

  // --- input
  #state = HEAD;
  /** Bytes of the current request have arrived (so its deadline runs). */
  #midRequest = false;
  #requestStart = 0;
  /** Input not yet parsed: `#pending[#pendingStart, #pendingEnd)`. */
  #pending: Uint8Array | undefined = undefined;
  #pendingStart = 0;
  #pendingEnd = 0;
  /** How far into the pending head the search for its end has looked. */
  #scanned = 0;
  /** Parsing waits for replies to go out (`maxPipelined`). */
  #paused = false;
  /** The peer sent its last byte. */
  #ended = false;
  /** The request whose body is being read. */
  #current: Exchange | undefined = undefined;
  #body: Uint8Array = EMPTY;
  #bodyAt = 0;
  #remaining = 0;
  /** Chunked framing bytes (size lines, CRLFs, trailers) of the current body. */
  #framing = 0;

  // --- output
  /** Requests in order, from the oldest unanswered to the one being read. */
  #queue: Exchange[] = [];
  /** Replies in the write in flight. */
  #inFlight = 0;
  #writing = false;
  #writeStart = 0;
  #flushScheduled = false;
  #closeAfterWrite: string | undefined = undefined;
  /** Shutdown or end of input: answer what was read, then close. */
  #closing: string | undefined = undefined;
  #idleSince: number;

  // --- life
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #resolveClosed!: () => void;
  readonly #closedPromise = new Promise<void>((resolve) => (this.#resolveClosed = resolve));
  readonly #flushTask = () => this.#flush();
  readonly #onWritten = () => this.#written();
  readonly #onWriteError = (error: unknown) =>
    this.#close(`write failed: ${error instanceof Error ? error.message : String(error)}`);
  readonly #onTimer = () => this.#tick();

  constructor(socket: H1Socket, handler: ServerHandler, options: H1ServerOptions = {}) {
    this.#socket = socket;
    this.#handler = handler;
    this.#maxHead = options.maxHeaderBytes ?? 8 * 1024;
    this.#maxBody = options.maxBodyBytes ?? 65_535;
    this.#tooLarge = options.tooLargeReply ?? { status: 413, headers: [], body: EMPTY };
    this.#requestMs = options.requestTimeoutMs ?? 10_000;
    this.#idleMs = options.idleTimeoutMs ?? 30_000;
    this.#maxPipelined = Math.max(1, options.maxPipelined ?? 16);
    this.#date = options.date ?? true;
    this.#now = options.now ?? Date.now;
    this.#onClose = options.onClose;
    this.#idleSince = this.#now();
    this.#arm(this.#idleSince, this.#idleSince + this.#period());
  }

  /** Requests read and not yet answered (written). */
  get activeRequests(): number {
    return this.#queue.length + this.#inFlight - (this.#current ? 1 : 0);
  }

  /** Whether the connection is gone. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Takes bytes from the socket; `data` is only read during the call. */
  receive(data: Uint8Array): void {
    if (this.#closed || this.#ended || this.#state === STOPPED || data.length === 0) return;
    if (this.#paused || this.#pendingEnd > this.#pendingStart) {
      if (!this.#keep(data)) return;
      if (!this.#paused) this.#parsePending();
    } else {
      const at = this.#parse(data, 0);
      if (at < data.length && this.#state !== STOPPED && !this.#closed) {
        this.#keep(data.subarray(at));
      }
    }
    this.#afterInput();
  }

  /** The peer closed (or, with `error`, the read failed): answer what was read, then close. */
  receiveEnd(error?: Error): void {
    if (this.#closed) return;
    if (error) return this.#close(`read failed: ${error.message}`);
    this.#ended = true;
    if (!this.#paused) this.#endInput("peer closed");
  }

  /**
   * Graceful close: no new request is begun (one partly received is finished), the last reply
   * says `connection: close`, and the connection closes once the replies are written (or after
   * `graceMs`).
   */
  shutdown(graceMs: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closing ??= "shutdown";
    if (!this.#midRequest) this.#stopReading();
    this.#scheduleFlush();
    this.#finishIfDone();
    const timer = setTimeout(() => this.#close("shutdown"), graceMs);
    return this.#closedPromise.finally(() => clearTimeout(timer));
  }

  /** Closes now, aborting the requests being answered. */
  destroy(): void {
    this.#close("destroyed");
  }

  // --- input -------------------------------------------------------------------------------

  /** Parses what is pending. */
  #parsePending(): void {
    const pending = this.#pending!.subarray(0, this.#pendingEnd);
    const at = this.#parse(pending, this.#pendingStart);
    if (this.#pending === undefined) return; // dropped while parsing
    this.#pendingStart = at;
    if (at === this.#pendingEnd) {
      this.#pendingStart = this.#pendingEnd = 0;
      // An idle connection keeps no large buffer.
      if (this.#pending.length > 4096) this.#pending = undefined;
    }
  }

  /**
   * Appends to the pending input; false (and the connection closed) if parsing is paused and
   * the client has sent more than a stuck request could need.
   */
  #keep(data: Uint8Array): boolean {
    const kept = this.#pendingEnd - this.#pendingStart;
    const need = kept + data.length;
    if (this.#paused && need > this.#maxHead + PAUSED_SLACK) {
      this.#close("too much input while requests wait for answers");
      return false;
    }
    let buffer = this.#pending;
    if (buffer === undefined || need > buffer.length) {
      const grown = new Uint8Array(
        Math.max(need, Math.min(2 * (buffer?.length ?? 0), 1 << 20), 1024),
      );
      if (buffer) grown.set(buffer.subarray(this.#pendingStart, this.#pendingEnd));
      buffer = this.#pending = grown;
      this.#pendingStart = 0;
      this.#pendingEnd = kept;
    } else if (this.#pendingEnd + data.length > buffer.length) {
      buffer.copyWithin(0, this.#pendingStart, this.#pendingEnd);
      this.#pendingStart = 0;
      this.#pendingEnd = kept;
    }
    buffer.set(data, this.#pendingEnd);
    this.#pendingEnd += data.length;
    return true;
  }

  /** Reading stops for good: pending input is dropped. */
  #stopReading(): void {
    this.#state = STOPPED;
    this.#midRequest = false;
    this.#pending = undefined;
    this.#pendingStart = this.#pendingEnd = 0;
    if (this.#paused) {
      this.#paused = false;
      this.#socket.resume?.();
    }
  }

  /** Runs after input was taken: end of input, output and pausing. */
  #afterInput(): void {
    if (this.#closed) return;
    if (this.#ended && !this.#paused) this.#endInput("peer closed");
    if (this.#queue.length > 0) this.#scheduleFlush();
  }

  /** No more input will come: what was read whole is answered, then the connection closes. */
  #endInput(reason: string): void {
    if (this.#midRequest || this.#state !== STOPPED) {
      // A request cut short can never complete.
      if (this.#current) this.#queue.pop();
      this.#current = undefined;
      this.#stopReading();
    }
    this.#closing ??= reason;
    this.#scheduleFlush();
    this.#finishIfDone();
  }

  /**
   * Parses requests from `bytes[at..]` and dispatches each complete one; returns where it
   * stopped (the start of what it could not use yet).
   */
  #parse(bytes: Uint8Array, at: number): number {
    const end = bytes.length;
    while (at < end) {
      switch (this.#state) {
        case HEAD: {
          if (!this.#midRequest) {
            // Empty lines before a request are ignored (RFC 9112 §2.2).
            while (at < end && bytes[at] === 0x0d && (at + 1 === end || bytes[at + 1] === 0x0a)) {
              if (at + 1 === end) return at;
              at += 2;
            }
            if (at === end) return at;
            if (this.#closing) {
              this.#stopReading();
              return end;
            }
            this.#midRequest = true;
            this.#requestStart = this.#now();
          }
          const next = this.#head(bytes, at);
          if (next < 0) return this.#state === STOPPED ? end : at;
          at = next;
          break;
        }
        case BODY: {
          const n = Math.min(this.#remaining, end - at);
          this.#body.set(bytes.subarray(at, at + n), this.#bodyAt);
          this.#bodyAt += n;
          this.#remaining -= n;
          at += n;
          if (this.#remaining === 0) this.#complete(this.#body);
          break;
        }
        case CHUNK_SIZE: {
          const lf = lineEnd(bytes, at, MAX_CHUNK_LINE);
          if (lf === -1) return at;
          if (lf < 0) return this.#fail(BAD_CHUNK, end);
          this.#framing += lf + 1 - at;
          const size = chunkSize(bytes, at, lf - 1);
          if (size < 0 || this.#framing > this.#maxHead) return this.#fail(BAD_CHUNK, end);
          at = lf + 1;
          if (size === 0) {
            this.#state = TRAILERS;
          } else if (this.#bodyAt + size > this.#maxBody) {
            return this.#refuseBody(end);
          } else {
            if (this.#bodyAt + size > this.#body.length) {
              const grown = new Uint8Array(
                Math.min(this.#maxBody, Math.max(this.#bodyAt + size, 2 * this.#body.length)),
              );
              grown.set(this.#body.subarray(0, this.#bodyAt));
              this.#body = grown;
            }
            this.#remaining = size;
            this.#state = CHUNK_DATA;
          }
          break;
        }
        case CHUNK_DATA: {
          const n = Math.min(this.#remaining, end - at);
          this.#body.set(bytes.subarray(at, at + n), this.#bodyAt);
          this.#bodyAt += n;
          this.#remaining -= n;
          at += n;
          if (this.#remaining === 0) this.#state = CHUNK_END;
          break;
        }
        case CHUNK_END: {
          if (end - at < 2) return at;
          if (bytes[at] !== 0x0d || bytes[at + 1] !== 0x0a) return this.#fail(BAD_CHUNK, end);
          this.#framing += 2;
          at += 2;
          this.#state = CHUNK_SIZE;
          break;
        }
        case TRAILERS: {
          // Trailer fields are read and dropped.
          const lf = lineEnd(bytes, at, this.#maxHead);
          if (lf === -1) return at;
          if (lf < 0) return this.#fail(BAD_CHUNK, end);
          this.#framing += lf + 1 - at;
          if (this.#framing > this.#maxHead) return this.#fail(TOO_LARGE_HEAD, end);
          for (let i = at; i < lf - 1; i++) {
            if (VALUE_CHAR[bytes[i]] !== 1) return this.#fail(BAD_CHUNK, end);
          }
          const last = lf === at + 1;
          at = lf + 1;
          if (last) {
            const body = this.#body.length === this.#bodyAt
              ? this.#body
              : this.#body.slice(0, this.#bodyAt);
            this.#complete(body);
          }
          break;
        }
        default: // STOPPED
          return end;
      }
      if (this.#paused || this.#closed) return at;
    }
    return at;
  }

  /**
   * Reads a request head at `at`: returns the offset after it, or -1 if it is not all here (or
   * was refused: then the state is STOPPED).
   */
  #head(bytes: Uint8Array, at: number): number {
    const end = bytes.length;
    let i = at + Math.max(0, this.#scanned - 3);
    let headEnd = -1;
    for (;;) {
      const lf = bytes.indexOf(0x0a, i);
      if (lf < 0) break;
      if (lf - at >= this.#maxHead) return this.#fail(TOO_LARGE_HEAD, -1);
      if (lf === at || bytes[lf - 1] !== 0x0d) return this.#fail(BARE_LF, -1);
      if (lf - at >= 3 && bytes[lf - 2] === 0x0a && bytes[lf - 3] === 0x0d) {
        headEnd = lf + 1;
        break;
      }
      i = lf + 1;
    }
    if (headEnd < 0) {
      if (end - at > this.#maxHead) return this.#fail(TOO_LARGE_HEAD, -1);
      this.#scanned = end - at;
      return -1;
    }
    this.#scanned = 0;
    if (headEnd - at > this.#maxHead) return this.#fail(TOO_LARGE_HEAD, -1);
    const head = parseHead(isomorphicDecode(bytes.subarray(at, headEnd - 2)));
    if (isHeadError(head)) return this.#fail(head, -1);
    const close = head.close || this.#closing !== undefined;
    const exchange = new Exchange(
      head.method,
      head.path,
      head.authority,
      head.headers,
      this.#controller.signal,
      close,
      !head.http11 && !close,
    );
    this.#queue.push(exchange);
    if (head.bodyLength === 0) {
      this.#complete(EMPTY, exchange);
      return headEnd;
    }
    this.#current = exchange;
    if (head.bodyLength > this.#maxBody) return this.#refuseBody(-1);
    if (head.bodyLength === CHUNKED) {
      this.#body = new Uint8Array(Math.min(this.#maxBody, 1024));
      this.#framing = 0;
      this.#state = CHUNK_SIZE;
    } else {
      this.#body = new Uint8Array(head.bodyLength);
      this.#remaining = head.bodyLength;
      this.#state = BODY;
    }
    this.#bodyAt = 0;
    // The client waits for a go-ahead; none is needed once body bytes are here.
    if (head.expectContinue && headEnd === end) exchange.sendContinue = true;
    return headEnd;
  }

  /** A request is whole: hand it to the handler. */
  #complete(body: Uint8Array, exchange: Exchange = this.#current!): void {
    this.#current = undefined;
    this.#body = EMPTY;
    this.#midRequest = false;
    this.#state = exchange.close ? STOPPED : HEAD;
    if (exchange.close) this.#stopReading();
    exchange.sendContinue = false;
    exchange.body = exchange.method === "GET" || exchange.method === "HEAD" ? undefined : body;
    let promise: Promise<ServerReply>;
    try {
      promise = this.#handler(exchange);
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then(
      (reply) => this.#settle(exchange, reply),
      () => this.#settle(exchange, INTERNAL_ERROR),
    );
    if (this.#queue.length + this.#inFlight >= this.#maxPipelined && this.#state !== STOPPED) {
      this.#paused = true;
      this.#socket.pause?.();
    }
  }

  /** The body is over the cap: the too-large reply, then close. Returns `result`. */
  #refuseBody(result: number): number {
    const exchange = this.#current!;
    this.#current = undefined;
    this.#body = EMPTY;
    exchange.sendContinue = false;
    exchange.close = true;
    exchange.reply = this.#tooLarge;
    this.#stopReading();
    return result;
  }

  /** Refuses the request being read: `error`'s status, then close. Returns `result`. */
  #fail(error: HeadError, result: number): number {
    if (this.#current) this.#queue.pop();
    this.#current = undefined;
    this.#body = EMPTY;
    const refusal = new Exchange("", "", "", [], this.#controller.signal, true, false);
    refusal.reply = {
      status: error.status,
      headers: [["content-type", "text/plain; charset=utf-8"]],
      body: text.encode(`${error.why}\n`),
    };
    this.#queue.push(refusal);
    this.#stopReading();
    this.#scheduleFlush();
    return result;
  }

  // --- output ------------------------------------------------------------------------------

  #settle(exchange: Exchange, reply: ServerReply): void {
    if (this.#closed || exchange.reply !== undefined) return;
    exchange.reply = typeof reply === "object" && reply !== null ? reply : INTERNAL_ERROR;
    if (exchange === this.#queue[0]) this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#writing || this.#closed) return;
    this.#flushScheduled = true;
    queueMicrotask(this.#flushTask);
  }

  /** Writes every reply ready at the front of the queue, in one write. */
  #flush(): void {
    this.#flushScheduled = false;
    if (this.#closed || this.#writing) return;
    const queue = this.#queue;
    const heads: string[] = [];
    const bodies: (Uint8Array | undefined)[] = [];
    let total = 0;
    let date: string | undefined;
    while (queue.length > 0) {
      const exchange = queue[0];
      if (exchange.sendContinue) {
        exchange.sendContinue = false;
        heads.push(CONTINUE);
        bodies.push(undefined);
        total += CONTINUE.length;
      }
      if (exchange.reply === undefined) break;
      queue.shift();
      this.#inFlight++;
      const last = queue.length === 0;
      const close = exchange.close || (this.#closing !== undefined && last && !this.#midRequest);
      if (this.#date && date === undefined) date = httpDate(this.#now());
      const isHead = exchange.method === "HEAD";
      let reply = exchange.reply;
      let head: string | undefined;
      try {
        head = replyHead(reply, { head: isHead, close, keepAlive: exchange.keepAlive, date });
      } catch {
        head = undefined; // not a reply at all
      }
      if (head === undefined) {
        reply = INTERNAL_ERROR;
        head = replyHead(reply, { head: isHead, close, keepAlive: exchange.keepAlive, date })!;
      }
      const body = sendsBody(reply.status, isHead) ? reply.body : undefined;
      heads.push(head);
      bodies.push(body);
      total += head.length + (body?.length ?? 0);
      if (close) {
        this.#closeAfterWrite = exchange.close ? "closed after the reply" : this.#closing;
        for (const rest of queue.splice(0)) rest.sendContinue = false;
        break;
      }
    }
    if (heads.length === 0) return this.#finishIfDone();
    const out = new Uint8Array(total);
    let at = 0;
    for (let i = 0; i < heads.length; i++) {
      const head = heads[i];
      // Heads are ASCII but for obs-text in a value, which takes one octet, not UTF-8's two.
      const { read, written } = text.encodeInto(head, out.subarray(at));
      if (read === head.length && written === head.length) at += written;
      else for (let j = 0; j < head.length; j++) out[at++] = head.charCodeAt(j);
      const body = bodies[i];
      if (body !== undefined) {
        out.set(body, at);
        at += body.length;
      }
    }
    this.#writing = true;
    this.#writeStart = this.#now();
    let written: Promise<void>;
    try {
      written = this.#socket.write(out);
    } catch (error) {
      written = Promise.reject(error);
    }
    written.then(this.#onWritten, this.#onWriteError);
  }

  #written(): void {
    this.#writing = false;
    this.#inFlight = 0;
    if (this.#closed) return;
    if (this.#closeAfterWrite !== undefined) return this.#close(this.#closeAfterWrite);
    if (this.#paused && this.#queue.length < this.#maxPipelined) {
      this.#paused = false;
      this.#socket.resume?.();
      if (this.#pendingEnd > this.#pendingStart) this.#parsePending();
      this.#afterInput();
      if (this.#closed) return;
    }
    if (this.#queue.length === 0 && !this.#midRequest) this.#idleSince = this.#now();
    const first = this.#queue[0];
    if (first?.reply !== undefined || first?.sendContinue) this.#scheduleFlush();
    this.#finishIfDone();
  }

  /** Closes a closing connection once nothing is left to answer. */
  #finishIfDone(): void {
    if (
      this.#closing !== undefined && !this.#closed && !this.#writing && !this.#flushScheduled &&
      this.#queue.length === 0 && !this.#midRequest
    ) {
      this.#close(this.#closing);
    }
  }

  // --- time --------------------------------------------------------------------------------

  /**
   * The timer's longest wait. Every deadline starts at least this far ahead, so a timer armed
   * earlier never needs to be moved forward: one timer per connection, none per request.
   */
  #period(): number {
    return Math.max(1, Math.min(this.#requestMs, this.#idleMs));
  }

  #arm(now: number, at: number): void {
    this.#timer = setTimeout(this.#onTimer, Math.max(0, at - now));
  }

  #tick(): void {
    this.#timer = undefined;
    if (this.#closed) return;
    const now = this.#now();
    let next = now + this.#period();
    if (this.#midRequest && this.#state !== STOPPED && !this.#paused && !this.#ended) {
      const due = this.#requestStart + this.#requestMs;
      if (now >= due) {
        this.#fail(TIMEOUT, 0);
        this.#scheduleFlush();
      } else next = Math.min(next, due);
    }
    if (this.#writing) {
      const due = this.#writeStart + this.#idleMs;
      if (now >= due) return this.#close("write timed out");
      next = Math.min(next, due);
    } else if (this.#queue.length === 0 && !this.#midRequest) {
      const due = this.#idleSince + this.#idleMs;
      if (now >= due) return this.#close("idle");
      next = Math.min(next, due);
    }
    this.#arm(now, next);
  }

  #close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#state = STOPPED;
    this.#pending = undefined;
    this.#queue = [];
    this.#current = undefined;
    this.#body = EMPTY;
    this.#controller.abort(new Error(`connection closed: ${reason}`));
    try {
      this.#socket.close();
    } catch {
      // already closed
    }
    this.#resolveClosed();
    this.#onClose?.(reason);
  }
}

/**
 * The LF ending the CRLF-terminated line at `at`: -1 if not here yet (and the line is within
 * `max`), -2 if the line is too long or ends in a bare LF.
 */
function lineEnd(bytes: Uint8Array, at: number, max: number): number {
  const lf = bytes.indexOf(0x0a, at);
  if (lf < 0) return bytes.length - at > max ? -2 : -1;
  if (lf - at > max || lf === at || bytes[lf - 1] !== 0x0d) return -2;
  return lf;
}

/**
 * The size in a chunk-size line `bytes[at, end)` (RFC 9112 §7.1: hex digits, then optional
 * extensions, which are ignored); -1 if malformed or over 2^28.
 */
function chunkSize(bytes: Uint8Array, at: number, end: number): number {
  let size = 0;
  let i = at;
  for (; i < end; i++) {
    const c = bytes[i];
    const digit = c >= 0x30 && c <= 0x39
      ? c - 0x30
      : c >= 0x61 && c <= 0x66
      ? c - 0x57
      : c >= 0x41 && c <= 0x46
      ? c - 0x37
      : -1;
    if (digit < 0) break;
    size = size * 16 + digit;
    if (size > 0x10000000) return -1;
  }
  if (i === at) return -1;
  while (i < end && (bytes[i] === 0x20 || bytes[i] === 0x09)) i++;
  if (i < end && bytes[i] !== 0x3b /* ; */) return -1;
  for (; i < end; i++) if (VALUE_CHAR[bytes[i]] !== 1) return -1;
  return size;
}
