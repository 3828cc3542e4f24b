/**
 * A DNS-over-TLS upstream (RFC 7858): pooled, persistent, pipelined connections with
 * out-of-order answers matched by message ID (RFC 7766 §6.2.1.1).
 *
 * @module
 */
import { HEADER_LENGTH, MAX_MESSAGE_SIZE } from "../dns/constants.ts";
import { type Answer, answerWithId } from "../dns/answer.ts";
import { getId } from "../dns/message.ts";
import type { Query } from "../dns/query.ts";
import { encodeFrames, FrameDecoder } from "../framing/codec.ts";
import type { Logger } from "../log/mod.ts";
import { DOT_DEFAULT_PORT, urlHost } from "./dot_url.ts";
import type { ByteStream, StreamConnector } from "./stream.ts";
import { messageOf } from "../errors/message_of.ts";
import { type Upstream, UpstreamError } from "./types.ts";
import { positiveInteger } from "./authority.ts";
import { checkedAnswer } from "./failure.ts";

/** Options of {@linkcode DotUpstream}. */
export interface DotUpstreamOptions {
  /** Address or name to connect to (IPv6 without brackets). */
  hostname: string;
  /** Default 853. */
  port?: number;
  /** The name the certificate must be valid for (RFC 8310 authentication name). Default `hostname`. */
  servername?: string;
  /** Opens authenticated connections; see `createTlsConnector` in `src/deno/tls_connector.ts`. */
  connect: StreamConnector;
  /** For logs and errors. Default `tls://host:port` plus `#servername` when it differs. */
  name?: string;
  /** Connections opened at most at once. Default 2. */
  maxConnections?: number;
  /** Unanswered queries per connection before another connection is used. Default 100, at most 4096. */
  maxInFlightPerConnection?: number;
  /** A connection with nothing in flight is closed after this long. Default 30 000 ms. */
  idleTimeoutMs?: number;
  /** Time allowed to connect and complete the TLS handshake. Default 3 000 ms. */
  connectTimeoutMs?: number;
  /** Debug events: connections opened and closed, answers dropped. */
  logger?: Logger;
  /** Source of upstream message IDs, in [0, 1). Default `Math.random`. */
  random?: () => number;
}

/** A query waiting for, or on, a connection. */
interface Pending {
  readonly query: Query;
  readonly signal: AbortSignal;
  readonly resolve: (answer: Answer) => void;
  readonly reject: (error: unknown) => void;
  readonly onAbort: () => void;
  /** The connection it is assigned to, and its message ID there. */
  conn: Connection | undefined;
  id: number;
  /** Whether it went out on `conn` (is in a write handed to the stream). */
  sent: boolean;
  /** Connections it was sent on that died before answering. */
  lost: number;
  done: boolean;
}

/** One pooled connection. */
interface Connection {
  readonly seq: number;
  state: "connecting" | "open" | "dead";
  /** No new queries; closed once nothing is in flight. */
  retiring: boolean;
  readonly connectAbort: AbortController;
  stream?: ByteStream;
  writer?: WritableStreamDefaultWriter<Uint8Array>;
  /** Queries assigned here and not answered, by upstream message ID. */
  readonly inFlight: Map<number, Pending>;
  /** IDs of queries abandoned after they were sent: kept out of use until answered. */
  readonly abandoned: Set<number>;
  /** Assigned queries not yet written. */
  outbox: Pending[];
  flushScheduled: boolean;
  writing: boolean;
  idleTimer?: ReturnType<typeof setTimeout>;
}

/** Sent-then-abandoned IDs a connection may hold before it is retired. */
const MAX_ABANDONED = 4096;
const MAX_IN_FLIGHT_LIMIT = 4096;
const LABEL = "DoT upstream";

/**
 * Sends queries to one DoT server over a small pool of persistent connections.
 *
 * - Queries share a connection up to `maxInFlightPerConnection` unanswered ones; then another
 *   connection is opened, up to `maxConnections`; then queries wait for a free slot (for as long
 *   as their signal allows).
 * - Each query goes out as a copy with a connection-unique random ID; answers may come in any
 *   order and are matched by ID, checked with `validateAnswer` (a known ID with a bad answer
 *   fails that query with `bad-answer`; an unknown ID is dropped), and get the client's ID back.
 * - Queries that complete in the same tick go out in one write (one frame batch).
 * - A connection that dies with queries in flight (closed or reset by the server) has them
 *   retried once on another connection; a second loss is a `network` error. A failed connect
 *   fails the queries waiting on it. Idle connections are closed after `idleTimeoutMs`.
 * - A query whose signal aborts is dropped from its connection (the connection stays) and
 *   rejects with the signal's reason; its ID is not reused until its answer arrives.
 *
 * Safe for concurrent use; never modifies `query.wire`. `close()` closes every connection and
 * rejects queries still pending.
 *
 * @example
 * ```ts
 * const u = parseDotUrl("tls://1.1.1.1#cloudflare-dns.com");
 * const upstream = new DotUpstream({ ...u, name: u.display, connect: createTlsConnector({ pins: u.pins }) });
 * const answer = await upstream.exchange(query, AbortSignal.timeout(2000));
 * ```
 */
export class DotUpstream implements Upstream {
  readonly name: string;
  readonly #hostname: string;
  readonly #port: number;
  readonly #servername: string;
  readonly #connect: StreamConnector;
  readonly #maxConnections: number;
  readonly #maxInFlight: number;
  readonly #idleMs: number;
  readonly #connectMs: number;
  readonly #logger?: Logger;
  readonly #random: () => number;

  readonly #conns = new Set<Connection>();
  #waiting: Pending[] = [];
  readonly #closing = new Set<Promise<unknown>>();
  #seq = 0;
  #closed = false;

  constructor(options: DotUpstreamOptions) {
    if (!options.hostname) throw new TypeError("DoT upstream: hostname is required");
    this.#hostname = options.hostname;
    this.#port = positiveInteger(LABEL, options.port, DOT_DEFAULT_PORT, "port", 65535);
    this.#servername = options.servername ?? options.hostname;
    const base = `tls://${urlHost(this.#hostname)}:${this.#port}`;
    this.name = options.name ??
      (this.#servername === this.#hostname ? base : `${base}#${this.#servername}`);
    this.#connect = options.connect;
    this.#maxConnections = positiveInteger(LABEL, options.maxConnections, 2, "maxConnections");
    this.#maxInFlight = positiveInteger(
      LABEL,
      options.maxInFlightPerConnection,
      100,
      "maxInFlightPerConnection",
      MAX_IN_FLIGHT_LIMIT,
    );
    this.#idleMs = positiveInteger(LABEL, options.idleTimeoutMs, 30_000, "idleTimeoutMs");
    this.#connectMs = positiveInteger(LABEL, options.connectTimeoutMs, 3_000, "connectTimeoutMs");
    this.#logger = options.logger;
    this.#random = options.random ?? Math.random;
  }

  /** Connections currently open or being opened. */
  get connections(): number {
    return this.#conns.size;
  }

  exchange(query: Query, signal: AbortSignal): Promise<Answer> {
    if (this.#closed) {
      return Promise.reject(new UpstreamError(this.name, "unavailable", "closed"));
    }
    if (signal.aborted) return Promise.reject(signal.reason);
    const size = query.wire.length;
    if (size < HEADER_LENGTH || size > MAX_MESSAGE_SIZE) {
      return Promise.reject(
        new RangeError(`upstream ${this.name}: cannot send a query of ${size} bytes`),
      );
    }
    return new Promise<Answer>((resolve, reject) => {
      const pending: Pending = {
        query,
        signal,
        resolve,
        reject,
        onAbort: () => this.#abandon(pending),
        conn: undefined,
        id: -1,
        sent: false,
        lost: 0,
        done: false,
      };
      signal.addEventListener("abort", pending.onAbort, { once: true });
      this.#waiting.push(pending);
      this.#pump();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const closedError = new UpstreamError(this.name, "unavailable", "closed");
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const p of waiting) this.#settle(p, closedError);
    for (const conn of [...this.#conns]) this.#kill(conn, closedError);
    while (this.#closing.size > 0) await Promise.all([...this.#closing]);
  }

  // -------------------------------------------------------------------------------------------
  // Queries

  #settle(p: Pending, error: unknown, answer?: Answer): void {
    if (p.done) return;
    p.done = true;
    p.signal.removeEventListener("abort", p.onAbort);
    if (answer) p.resolve(answer);
    else p.reject(error);
  }

  /** The query's signal aborted: forget it, keep the connection. */
  #abandon(p: Pending): void {
    if (p.done) return;
    const conn = p.conn;
    if (conn) {
      conn.inFlight.delete(p.id);
      if (p.sent && conn.state === "open") {
        conn.abandoned.add(p.id);
        if (conn.abandoned.size >= MAX_ABANDONED) conn.retiring = true;
      }
    } else {
      const at = this.#waiting.indexOf(p);
      if (at >= 0) this.#waiting.splice(at, 1);
    }
    this.#settle(p, p.signal.reason);
    if (conn) this.#released(conn);
  }

  /** Hands waiting queries to connections with room, opening connections as allowed. */
  #pump(): void {
    while (this.#waiting.length > 0 && !this.#closed) {
      const conn = this.#pick();
      if (!conn) return;
      this.#assign(conn, this.#waiting.shift()!);
    }
  }

  #pick(): Connection | undefined {
    for (const conn of this.#conns) {
      if (!conn.retiring && conn.inFlight.size < this.#maxInFlight) return conn;
    }
    if (this.#conns.size < this.#maxConnections) return this.#open();
    return undefined;
  }

  #assign(conn: Connection, p: Pending): void {
    const id = this.#newId(conn);
    p.conn = conn;
    p.id = id;
    p.sent = false;
    conn.inFlight.set(id, p);
    if (conn.idleTimer !== undefined) {
      clearTimeout(conn.idleTimer);
      conn.idleTimer = undefined;
    }
    conn.outbox.push(p);
    if (conn.state === "open" && !conn.flushScheduled) {
      conn.flushScheduled = true;
      queueMicrotask(() => this.#flush(conn));
    }
  }

  /** A random ID not in flight and not abandoned on this connection. */
  #newId(conn: Connection): number {
    const free = (id: number) => !conn.inFlight.has(id) && !conn.abandoned.has(id);
    for (let i = 0; i < 8; i++) {
      const id = Math.floor(this.#random() * 0x10000) & 0xffff;
      if (free(id)) return id;
    }
    const start = Math.floor(this.#random() * 0x10000) & 0xffff;
    for (let k = 0; k < 0x10000; k++) {
      const id = (start + k) & 0xffff;
      if (free(id)) return id;
    }
    throw new Error(`upstream ${this.name}: no free message ID`); // unreachable: IDs are capped
  }

  /** Writes every assigned, unsent query of `conn` in one frame batch. */
  #flush(conn: Connection): void {
    conn.flushScheduled = false;
    if (conn.state !== "open" || conn.writing) return;
    const batch = conn.outbox.filter((p) => !p.done && p.conn === conn);
    conn.outbox = [];
    if (batch.length === 0) return;
    const bytes = encodeFrames(batch.map((p) => p.query.wire));
    let pos = 0;
    for (const p of batch) {
      bytes[pos + 2] = p.id >> 8; // the copy in the frame gets the upstream ID
      bytes[pos + 3] = p.id & 0xff;
      pos += 2 + p.query.wire.length;
      p.sent = true;
    }
    conn.writing = true;
    conn.writer!.write(bytes).then(
      () => {
        conn.writing = false;
        if (conn.outbox.length > 0) this.#flush(conn);
      },
      (error) => this.#kill(conn, error),
    );
  }

  #onMessage(conn: Connection, message: Uint8Array): void {
    if (message.length < HEADER_LENGTH) {
      this.#logger?.debug("dot answer dropped", { upstream: this.name, reason: "short" });
      return;
    }
    const id = getId(message);
    const p = conn.inFlight.get(id);
    if (!p) {
      const late = conn.abandoned.delete(id);
      this.#logger?.debug("dot answer dropped", {
        upstream: this.name,
        reason: late ? "query abandoned" : "unknown id",
      });
      if (late) this.#released(conn);
      return;
    }
    conn.inFlight.delete(id);
    try {
      const info = checkedAnswer(this.name, p.query.info, message, id);
      this.#settle(p, undefined, answerWithId({ wire: message, info }, p.query.info.id));
    } catch (error) {
      if (!(error instanceof UpstreamError)) throw error;
      this.#logger?.debug("dot answer rejected", {
        upstream: this.name,
        error: messageOf(error.cause),
      });
      this.#settle(p, error);
    }
    this.#released(conn);
  }

  /** A slot on `conn` freed up: give it to a waiting query, or start the idle clock. */
  #released(conn: Connection): void {
    this.#pump();
    if (conn.state !== "open" || conn.inFlight.size > 0) return;
    if (conn.retiring) {
      this.#kill(conn, new Error("retired"));
      return;
    }
    if (conn.idleTimer === undefined) {
      conn.idleTimer = setTimeout(() => {
        conn.idleTimer = undefined;
        if (conn.inFlight.size === 0) this.#kill(conn, new Error("idle"));
      }, this.#idleMs);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Connections

  #open(): Connection {
    const conn: Connection = {
      seq: ++this.#seq,
      state: "connecting",
      retiring: false,
      connectAbort: new AbortController(),
      inFlight: new Map(),
      abandoned: new Set(),
      outbox: [],
      flushScheduled: false,
      writing: false,
    };
    this.#conns.add(conn);
    const timer = setTimeout(() => {
      conn.connectAbort.abort(
        new UpstreamError(this.name, "timeout", `connect timed out after ${this.#connectMs} ms`),
      );
    }, this.#connectMs);
    let connecting: Promise<ByteStream>;
    try {
      connecting = this.#connect({
        hostname: this.#hostname,
        port: this.#port,
        servername: this.#servername,
        signal: conn.connectAbort.signal,
      });
    } catch (error) {
      connecting = Promise.reject(error);
    }
    const settled = connecting.then(
      (stream) => {
        clearTimeout(timer);
        if (conn.state === "dead") return this.#closeStream(stream);
        this.#opened(conn, stream);
      },
      (error) => {
        clearTimeout(timer);
        const signal = conn.connectAbort.signal;
        const reason = signal.aborted ? signal.reason : error;
        this.#kill(
          conn,
          reason instanceof UpstreamError ? reason : new UpstreamError(
            this.name,
            "network",
            `connect failed: ${messageOf(reason)}`,
            { cause: reason },
          ),
        );
      },
    );
    this.#track(settled);
    return conn;
  }

  #opened(conn: Connection, stream: ByteStream): void {
    conn.stream = stream;
    conn.state = "open";
    stream.closed.catch(() => {}); // the reader reports how the connection ended
    const writer = stream.writable.getWriter();
    writer.closed.catch(() => {});
    conn.writer = writer;
    this.#logger?.debug("dot connection open", { upstream: this.name, conn: conn.seq });
    this.#track(this.#read(conn, stream));
    this.#flush(conn);
    this.#released(conn);
  }

  async #read(conn: Connection, stream: ByteStream): Promise<void> {
    const decoder = new FrameDecoder();
    let reader: ReadableStreamDefaultReader<Uint8Array>;
    try {
      reader = stream.readable.getReader();
    } catch (error) {
      return this.#kill(conn, error);
    }
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || conn.state === "dead") break;
        for (const message of decoder.push(value)) this.#onMessage(conn, message);
      }
      this.#kill(conn, new Error("connection closed by the server"));
    } catch (error) {
      this.#kill(conn, error);
    } finally {
      try {
        reader.releaseLock();
      } catch { /* already released */ }
    }
  }

  /**
   * Takes `conn` out of the pool and closes it. Its queries are retried on another connection
   * (once per query), or fail: with `error` when the connect failed or the upstream is closing.
   */
  #kill(conn: Connection, error: unknown): void {
    if (conn.state === "dead") return;
    const wasOpen = conn.state === "open";
    conn.state = "dead";
    this.#conns.delete(conn);
    if (conn.idleTimer !== undefined) clearTimeout(conn.idleTimer);
    conn.idleTimer = undefined;
    if (!wasOpen) conn.connectAbort.abort(error);
    if (conn.stream) this.#closeStream(conn.stream);
    const affected = [...conn.inFlight.values()];
    conn.inFlight.clear();
    conn.abandoned.clear();
    conn.outbox = [];
    this.#logger?.debug("dot connection closed", {
      upstream: this.name,
      conn: conn.seq,
      reason: messageOf(error),
      inFlight: affected.length,
    });
    const retry: Pending[] = [];
    for (const p of affected) {
      if (p.done) continue;
      p.conn = undefined;
      if (this.#closed || !wasOpen) {
        this.#settle(p, error);
      } else if (!p.sent || p.lost === 0) {
        if (p.sent) p.lost++;
        retry.push(p);
      } else {
        this.#settle(
          p,
          new UpstreamError(
            this.name,
            "network",
            `connection lost before the answer, twice: ${messageOf(error)}`,
            { cause: error },
          ),
        );
      }
    }
    if (retry.length > 0) this.#waiting.unshift(...retry);
    this.#pump();
  }

  #closeStream(stream: ByteStream): void {
    let closing: Promise<unknown>;
    try {
      closing = Promise.resolve(stream.close());
    } catch (error) {
      closing = Promise.reject(error);
    }
    this.#track(closing.catch(() => {}));
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise.catch(() => {}).finally(() => this.#closing.delete(tracked));
    this.#closing.add(tracked);
  }
}
