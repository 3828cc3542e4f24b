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
 * Beside it: the request head (`head.ts`), chunked bodies (`chunked.ts`), the input not yet
 * parsed (`pending.ts`), the request object (`exchange.ts`), reply heads (`reply.ts`).
 *
 * @module
 */
import { isomorphicDecode } from "../bytes/isomorphic.ts";
import type { ServerHandler, ServerReply } from "../serve/exchange.ts";
import { Chunked, ChunkedDecoder } from "./chunked.ts";
import { Exchange } from "./exchange.ts";
import { CHUNKED, type HeadError, isHeadError, parseHead } from "./head.ts";
import { PendingInput } from "./pending.ts";
import { CONTINUE, httpDate, joinReplies, replyHead, sendsBody } from "./reply.ts";
import type { H1Socket } from "./socket.ts";

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
/** A body of a declared length. */
const BODY: number = 1;
/** A chunked body (`chunked.ts`). */
const CHUNKED_BODY: number = 2;
/** Reading is over: an error is being answered, or the connection is closing. */
const STOPPED: number = 3;

/** Input kept while parsing is paused, over what a stuck request needs. */
const PAUSED_SLACK = 128 * 1024;

const EMPTY = new Uint8Array(0);
const INTERNAL_ERROR: ServerReply = { status: 500, headers: [], body: EMPTY };
const text = new TextEncoder();

const TIMEOUT: HeadError = { status: 408, why: "request not received in time" };
const TOO_LARGE_HEAD: HeadError = { status: 431, why: "request head too large" };
const BARE_LF: HeadError = { status: 400, why: "line ending without CR" };
const BAD_CHUNK: HeadError = { status: 400, why: "malformed chunked body" };

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
  /** Input not yet parsed. */
  readonly #pending = new PendingInput();
  /** How far into the pending head the search for its end has looked. */
  #scanned = 0;
  /** Parsing waits for replies to go out (`maxPipelined`). */
  #paused = false;
  /** The peer sent its last byte. */
  #ended = false;
  /** The request whose body is being read. */
  #current: Exchange | undefined = undefined;
  /** The body of a declared length being read, and how far. */
  #body: Uint8Array = EMPTY;
  #bodyAt = 0;
  #remaining = 0;
  /** The decoder of chunked bodies, made for the first one. */
  #chunked: ChunkedDecoder | undefined = undefined;

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
    if (this.#paused || this.#pending.size > 0) {
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
    const pending = this.#pending;
    pending.consumed(this.#parse(pending.bytes, pending.start)); // a no-op if dropped meanwhile
  }

  /**
   * Appends to the pending input; false (and the connection closed) if parsing is paused and
   * the client has sent more than a stuck request could need.
   */
  #keep(data: Uint8Array): boolean {
    if (this.#paused && this.#pending.size + data.length > this.#maxHead + PAUSED_SLACK) {
      this.#close("too much input while requests wait for answers");
      return false;
    }
    this.#pending.keep(data);
    return true;
  }

  /** Reading stops for good: pending input is dropped. */
  #stopReading(): void {
    this.#state = STOPPED;
    this.#midRequest = false;
    this.#pending.drop();
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
        case CHUNKED_BODY: {
          const chunked = this.#chunked!;
          at = chunked.read(bytes, at);
          const outcome = chunked.outcome;
          if (outcome === Chunked.More) return at;
          if (outcome === Chunked.Done) this.#complete(chunked.take());
          else if (outcome === Chunked.BodyTooLarge) return this.#refuseBody(end);
          else {
            return this.#fail(outcome === Chunked.Malformed ? BAD_CHUNK : TOO_LARGE_HEAD, end);
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
      (this.#chunked ??= new ChunkedDecoder(this.#maxBody, this.#maxHead)).begin();
      this.#state = CHUNKED_BODY;
    } else {
      this.#body = new Uint8Array(head.bodyLength);
      this.#bodyAt = 0;
      this.#remaining = head.bodyLength;
      this.#state = BODY;
    }
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

  /** Lets go of the body being read, if any. */
  #dropBody(): void {
    this.#body = EMPTY;
    this.#chunked?.clear();
  }

  /** The body is over the cap: the too-large reply, then close. Returns `result`. */
  #refuseBody(result: number): number {
    const exchange = this.#current!;
    this.#current = undefined;
    this.#dropBody();
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
    this.#dropBody();
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
    const out = joinReplies(heads, bodies, total);
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
      if (this.#pending.size > 0) this.#parsePending();
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
    this.#pending.drop();
    this.#queue = [];
    this.#current = undefined;
    this.#dropBody();
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
