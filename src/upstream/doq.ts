/**
 * A DNS-over-QUIC upstream (RFC 9250): one pooled QUIC connection, one bidirectional stream per
 * query.
 *
 * @module
 */
import { abortable } from "../async/abortable.ts";
import { HEADER_LENGTH, MAX_MESSAGE_SIZE } from "../dns/constants.ts";
import { type Answer, answerWithId } from "../dns/answer.ts";
import type { Query } from "../dns/query.ts";
import { encodeFrames } from "../framing/codec.ts";
import { readDoqMessage } from "../framing/doq_stream.ts";
import type { Logger } from "../log/mod.ts";
import { DOT_DEFAULT_PORT, urlHost } from "./dot_url.ts";
import type { StreamTarget } from "./stream.ts";
import { messageOf } from "../errors/message_of.ts";
import { type Upstream, UpstreamError } from "./types.ts";
import { positiveInteger } from "./authority.ts";
import { checkedAnswer, upstreamFailure } from "./failure.ts";

/** The DoQ port (RFC 9250 §4.1.1): UDP 853. */
export const DOQ_DEFAULT_PORT = DOT_DEFAULT_PORT;

/** One QUIC bidirectional stream: what the client writes and what the server answers. */
export interface QuicStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
}

/**
 * An established, authenticated QUIC connection that negotiated ALPN `doq`. The shape is a
 * subset of Deno's `QuicConn`.
 *
 * - `createBidirectionalStream()` opens a stream; it throws (or rejects with) a `RangeError`
 *   while the peer's stream limit is reached, and the caller waits for credit.
 * - `closed` settles once the connection is gone, whichever side ended it.
 * - `close()` ends the connection and every stream on it; safe to call more than once.
 */
export interface QuicConnection {
  createBidirectionalStream(): Promise<QuicStream>;
  readonly closed: Promise<unknown>;
  close(): void;
}

/**
 * Opens a {@linkcode QuicConnection} to a target, authenticating `target.servername` (the
 * connector owns the trust policy), or rejects with an `Error` that says what failed, or with
 * `signal.reason` when the target's signal aborts first.
 */
export type QuicConnector = (target: StreamTarget) => Promise<QuicConnection>;

/** Options of {@linkcode DoqUpstream}. */
export interface DoqUpstreamOptions {
  /** Address or name to connect to (IPv6 without brackets). */
  hostname: string;
  /** Default 853. */
  port?: number;
  /** The name the certificate must be valid for. Default `hostname`. */
  servername?: string;
  /** Opens authenticated connections; see `createQuicConnector` in `src/deno/quic_connector.ts`. */
  connect: QuicConnector;
  /** For logs and errors. Default `quic://host:port` plus `#servername` when it differs. */
  name?: string;
  /** Time allowed to connect and complete the handshake. Default 3 000 ms. */
  connectTimeoutMs?: number;
  /** How long to wait before trying again for stream credit the peer has not given. Default 10 ms. */
  creditRetryMs?: number;
  /** Debug events: connections opened and lost. */
  logger?: Logger;
}

/** The pooled connection (or the attempt to open it). */
interface Pooled {
  readonly seq: number;
  readonly ready: Promise<QuicConnection>;
  readonly abort: AbortController;
  conn?: QuicConnection;
  dead: boolean;
  /** Settles when the connection is gone (or never came). */
  readonly gone: Promise<void>;
  /** Called when one of its streams is finished: stream credit may have come back. */
  readonly creditWaiters: Set<() => void>;
}

/** The connection died under a query: the query may be retried once elsewhere. */
class ConnectionLost extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectionLost";
  }
}

/**
 * Sends queries to one DoQ server.
 *
 * - One QUIC connection is opened on first use and shared by every query; each query gets its
 *   own bidirectional stream carrying the 2-byte length and the message with ID 0 (RFC 9250
 *   §4.2.1), then the client's FIN. The answer must be one length-prefixed message with ID 0 for
 *   the same question, and gets the client's ID back.
 * - At the peer's stream limit the query waits for credit (as long as its signal allows).
 * - When the connection is lost it is replaced on the next query; queries that were in flight
 *   on it are retried once on a new connection, then fail with `network`.
 * - A query whose signal aborts cancels its stream (the connection stays) and rejects with the
 *   signal's reason.
 *
 * Safe for concurrent use; never modifies `query.wire`. `close()` closes the connection.
 *
 * @example
 * ```ts
 * const u = parseDoqUrl("quic://dns.adguard-dns.com");
 * const upstream = new DoqUpstream({ ...u, name: u.display, connect: createQuicConnector() });
 * const answer = await upstream.exchange(query, AbortSignal.timeout(2000));
 * ```
 */
export class DoqUpstream implements Upstream {
  readonly name: string;
  readonly #hostname: string;
  readonly #port: number;
  readonly #servername: string;
  readonly #connect: QuicConnector;
  readonly #connectMs: number;
  readonly #creditRetryMs: number;
  readonly #logger?: Logger;
  #pooled: Pooled | undefined;
  #seq = 0;
  #opened = 0;
  #closed = false;

  constructor(options: DoqUpstreamOptions) {
    if (!options.hostname) throw new TypeError("DoQ upstream: hostname is required");
    const port = positiveInteger("DoQ upstream", options.port, DOQ_DEFAULT_PORT, "port", 65535);
    this.#hostname = options.hostname;
    this.#port = port;
    this.#servername = options.servername ?? options.hostname;
    const base = `quic://${urlHost(this.#hostname)}:${this.#port}`;
    this.name = options.name ??
      (this.#servername === this.#hostname ? base : `${base}#${this.#servername}`);
    this.#connect = options.connect;
    this.#connectMs = options.connectTimeoutMs ?? 3_000;
    this.#creditRetryMs = options.creditRetryMs ?? 10;
    this.#logger = options.logger;
  }

  /** Connections opened so far (the first one included). */
  get connectionsOpened(): number {
    return this.#opened;
  }

  async exchange(query: Query, signal: AbortSignal): Promise<Answer> {
    if (this.#closed) throw new UpstreamError(this.name, "unavailable", "closed");
    if (signal.aborted) throw signal.reason;
    const size = query.wire.length;
    if (size < HEADER_LENGTH || size > MAX_MESSAGE_SIZE) {
      throw new RangeError(`upstream ${this.name}: cannot send a query of ${size} bytes`);
    }
    const framed = encodeFrames([query.wire]);
    framed[2] = 0; // the message ID on the wire is 0 (RFC 9250 §4.2.1)
    framed[3] = 0;

    let body: Uint8Array;
    for (let attempt = 0;; attempt++) {
      try {
        body = await this.#ask(framed, signal);
        break;
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        if (this.#closed) throw new UpstreamError(this.name, "unavailable", "closed");
        if (error instanceof ConnectionLost && attempt === 0) continue; // once, on a new connection
        throw upstreamFailure(this.name, error);
      }
    }
    const info = checkedAnswer(this.name, query.info, body, 0);
    return answerWithId({ wire: body, info }, query.info.id);
  }

  /** One query on one stream of the pooled connection. */
  async #ask(framed: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
    const pooled = this.#pool();
    let conn: QuicConnection;
    try {
      conn = await abortable(pooled.ready, signal);
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw new UpstreamError(this.name, "network", `connect: ${messageOf(error)}`, {
        cause: error,
      });
    }
    const stream = await this.#openStream(pooled, conn, signal);
    const cancel = () => {
      stream.writable.abort(signal.reason).catch(() => {});
      stream.readable.cancel(signal.reason).catch(() => {});
    };
    signal.addEventListener("abort", cancel, { once: true });
    try {
      const writer = stream.writable.getWriter();
      const answer = readDoqMessage(stream.readable, { until: "message" });
      answer.catch(() => {}); // awaited below; a failed write must not leave it unhandled
      try {
        await writer.write(framed);
        await writer.close(); // the FIN after the query (RFC 9250 §4.2)
      } finally {
        writer.releaseLock();
      }
      return await abortable(answer, signal);
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      if (error instanceof RangeError) cancel(); // a malformed answer: nothing more to read
      if (await this.#lost(pooled)) {
        throw new ConnectionLost(`connection lost: ${messageOf(error)}`, { cause: error });
      }
      throw error;
    } finally {
      signal.removeEventListener("abort", cancel);
      for (const wake of pooled.creditWaiters) wake();
    }
  }

  /** Opens a stream, waiting for credit at the peer's limit. */
  async #openStream(
    pooled: Pooled,
    conn: QuicConnection,
    signal: AbortSignal,
  ): Promise<QuicStream> {
    for (;;) {
      try {
        return await conn.createBidirectionalStream();
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        if (!(error instanceof RangeError) || pooled.dead) {
          if (await this.#lost(pooled)) {
            throw new ConnectionLost(`connection lost: ${messageOf(error)}`, { cause: error });
          }
          throw error;
        }
      }
      // At the peer's limit: wait for one of our streams to finish, or a short while (the
      // peer's MAX_STREAMS may arrive after our stream is done), then try again.
      await abortable(
        new Promise<void>((resolve) => {
          const timer = setTimeout(done, this.#creditRetryMs);
          function done() {
            clearTimeout(timer);
            pooled.creditWaiters.delete(done);
            resolve();
          }
          pooled.creditWaiters.add(done);
          pooled.gone.then(done);
        }),
        signal,
      );
    }
  }

  /** Whether `pooled` died (waiting briefly: a stream error can arrive before `closed`). */
  async #lost(pooled: Pooled): Promise<boolean> {
    if (pooled.dead) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      pooled.gone,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, 100))),
    ]);
    clearTimeout(timer);
    return pooled.dead;
  }

  /** The live pooled connection, or a new one. */
  #pool(): Pooled {
    if (this.#pooled && !this.#pooled.dead) return this.#pooled;
    const seq = ++this.#seq;
    const abort = new AbortController();
    const timer = setTimeout(
      () => abort.abort(new DOMException("connect timed out", "TimeoutError")),
      this.#connectMs,
    );
    let markGone!: () => void;
    const gone = new Promise<void>((resolve) => (markGone = resolve));
    const ready = this.#connect({
      hostname: this.#hostname,
      port: this.#port,
      servername: this.#servername,
      signal: abort.signal,
    });
    const pooled: Pooled = {
      seq,
      ready,
      abort,
      dead: false,
      gone,
      creditWaiters: new Set(),
    };
    const die = (why: string) => {
      if (pooled.dead) return;
      pooled.dead = true;
      if (this.#pooled === pooled) this.#pooled = undefined;
      this.#logger?.debug("doq upstream connection closed", {
        upstream: this.name,
        connection: seq,
        reason: why,
      });
      markGone();
    };
    ready.then(
      (conn) => {
        clearTimeout(timer);
        pooled.conn = conn;
        this.#opened++;
        this.#logger?.debug("doq upstream connection open", {
          upstream: this.name,
          connection: seq,
        });
        if (this.#closed) conn.close();
        conn.closed.then(
          (info) => die(messageOf((info as { reason?: string })?.reason ?? "closed")),
          (error) => die(messageOf(error)),
        );
      },
      (error) => {
        clearTimeout(timer);
        die(`connect failed: ${messageOf(error)}`);
      },
    );
    this.#pooled = pooled;
    return pooled;
  }

  close(): Promise<void> {
    this.#closed = true;
    const pooled = this.#pooled;
    this.#pooled = undefined;
    if (pooled) {
      pooled.abort.abort(new UpstreamError(this.name, "unavailable", "closed"));
      try {
        pooled.conn?.close();
      } catch {
        // already closed
      }
    }
    return Promise.resolve();
  }
}
