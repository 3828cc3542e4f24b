/**
 * HTTP/2 client connections per origin ({@linkcode H2ClientConnection}): opened lazily, shared
 * by every concurrent request, a new one opened only while the others have no free stream,
 * rotated after a number of requests and closed after idling.
 *
 * The edge supplies how to open a TLS connection with ALPN `h2` (`src/deno/h2_connector.ts`),
 * so bootstrap addresses, trusted CAs and certificate checks stay there.
 *
 * @module
 */
import { H2ClientConnection, type H2Response } from "./client.ts";
import type { H2Clock } from "./clock.ts";
import { H2Error } from "./error.ts";
import type { H2Socket } from "./socket.ts";

/** Where to connect for an origin. */
export interface H2Target {
  /** The URL's host name (or address, IPv6 without brackets). */
  readonly hostname: string;
  readonly port: number;
  /** Aborts the attempt (connect timeout, pool closed). */
  readonly signal: AbortSignal;
}

/** Opens an authenticated TLS connection that negotiated ALPN `h2`, or rejects saying why. */
export type H2Connector = (target: H2Target) => Promise<H2Socket>;

/** Options of {@linkcode H2ClientPool}. */
export interface H2PoolOptions {
  connect: H2Connector;
  /** Connections per origin at most; more open only while the others have no free stream. Default 2. */
  connectionsPerOrigin?: number;
  /** Time allowed to connect and complete TLS. Default 5 000 ms. */
  connectTimeoutMs?: number;
  /**
   * A connection with no request open for this long is closed by us, ahead of the server's own
   * idle timeout (dnsdist: 30 s, h2o: 10 s, nginx: 75 s or more). Default 25 000 ms.
   */
  idleTimeoutMs?: number;
  /** Requests on one connection before new ones move to a fresh one. Default 100 000. */
  maxRequestsPerConnection?: number;
  /** Told when a connection fails (not when it drains or is closed by us): debug logs. */
  onConnectionError?: (origin: string, error: Error) => void;
  /** The connections' time and timers (idle, read and write deadlines). Default the runtime's. */
  clock?: H2Clock;
}

/**
 * Connections by origin. Safe for concurrent use; {@linkcode close} ends them all.
 *
 * @example
 * ```ts
 * const pool = new H2ClientPool({ connect: denoH2Connector({}) });
 * const response = await pool.request(url, head, body, 65_535, AbortSignal.timeout(2_000));
 * ```
 */
export class H2ClientPool {
  readonly #options: H2PoolOptions;
  readonly #pools = new Map<string, H2ClientConnection[]>();
  readonly #perOrigin: number;
  readonly #maxRequests: number;
  readonly #closing = new AbortController();
  readonly #origins = new WeakMap<URL, string>();

  constructor(options: H2PoolOptions) {
    this.#options = options;
    this.#perOrigin = Math.max(1, options.connectionsPerOrigin ?? 2);
    this.#maxRequests = Math.max(1, options.maxRequestsPerConnection ?? 100_000);
  }

  /**
   * Sends one request to `url`'s origin (see {@linkcode H2ClientConnection.request}); `head` is
   * its complete HPACK header block.
   */
  request(
    url: URL,
    head: Uint8Array,
    body: Uint8Array | undefined,
    maxBody: number,
    signal: AbortSignal,
  ): Promise<H2Response> {
    if (this.#closing.signal.aborted) return Promise.reject(new H2Error("pool closed", false));
    return this.#connectionFor(url).request(head, body, maxBody, signal);
  }

  /** Drains every connection (open requests finish) and takes no more requests. */
  close(): void {
    this.#closing.abort(new H2Error("pool closed", false));
    for (const pool of this.#pools.values()) {
      for (const conn of [...pool]) conn.drain();
    }
    this.#pools.clear();
  }

  #open(url: URL, pool: H2ClientConnection[]): H2ClientConnection {
    const timeout = AbortSignal.timeout(this.#options.connectTimeoutMs ?? 5_000);
    const socket = this.#options.connect({
      hostname: url.hostname.replace(/^\[|\]$/g, ""),
      port: Number(url.port || (url.protocol === "https:" ? 443 : 80)),
      signal: AbortSignal.any([this.#closing.signal, timeout]),
    });
    const conn: H2ClientConnection = new H2ClientConnection(socket, {
      idleTimeoutMs: this.#options.idleTimeoutMs ?? 25_000,
      clock: this.#options.clock,
      onClose: (error) => {
        const i = pool.indexOf(conn);
        if (i >= 0) pool.splice(i, 1);
        if (error) this.#options.onConnectionError?.(url.origin, error);
      },
    });
    pool.push(conn);
    return conn;
  }

  #connectionFor(url: URL): H2ClientConnection {
    // An upstream passes the same URL object each time: its origin string (which `url.origin`
    // builds anew on every read) is looked up, not made, per request.
    let origin = this.#origins.get(url);
    if (origin === undefined) {
      origin = url.origin;
      this.#origins.set(url, origin);
    }
    let pool = this.#pools.get(origin);
    if (!pool) {
      pool = [];
      this.#pools.set(origin, pool);
    }
    let best: H2ClientConnection | undefined;
    let usable = 0;
    for (const conn of pool) {
      if (!conn.usable) continue;
      if (conn.requests >= this.#maxRequests) {
        conn.drain(); // rotate: its open requests finish, then it closes
        continue;
      }
      if (conn.hasRoom) return conn;
      usable++;
      if (!best || conn.load < best.load) best = conn;
    }
    if (!best || usable < this.#perOrigin) return this.#open(url, pool);
    return best;
  }
}
