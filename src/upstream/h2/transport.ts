/**
 * A {@linkcode DohTransport} over the bridge's own HTTP/2 client ({@linkcode H2Connection}):
 * connections per upstream origin, opened lazily, shared by every concurrent request, rotated
 * after a number of requests and closed after idling.
 *
 * The edge supplies how to open a TLS connection with ALPN `h2` (`src/deno/h2_connector.ts`),
 * so bootstrap addresses, trusted CAs and certificate checks stay there.
 *
 * @module
 */
import {
  type DohRequest,
  type DohResponse,
  type DohTransport,
  TransportError,
} from "../doh_transport.ts";
import { H2Connection, type H2Socket } from "./connection.ts";
import { encodeRequestHead, withContentLength } from "./hpack.ts";

/** Where to connect for an origin. */
export interface H2Target {
  /** The URL's host name (or address, IPv6 without brackets). */
  readonly hostname: string;
  readonly port: number;
  /** Aborts the attempt (connect timeout, transport closed). */
  readonly signal: AbortSignal;
}

/** Opens an authenticated TLS connection that negotiated ALPN `h2`, or rejects saying why. */
export type H2Connector = (target: H2Target) => Promise<H2Socket>;

/** Options of {@linkcode createH2ClientTransport}. */
export interface H2ClientOptions {
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
  /** Told when a connection ends with an error (debug logs). */
  onConnectionError?: (origin: string, error: Error) => void;
}

/** A transport with a `close` that ends every connection. */
export interface H2ClientTransport {
  readonly transport: DohTransport;
  close(): void;
}

const MEDIA_TYPE = "application/dns-message";
/** POST header blocks kept, by URL (upstream URLs are few) and by body length. */
const HEAD_CACHE_SIZE = 64;

/**
 * Creates the transport.
 *
 * @example
 * ```ts
 * const { transport, close } = createH2ClientTransport({ connect: denoH2Connector({}) });
 * const upstream = new DohUpstream({ url: "https://dns.example/dns-query", transport });
 * ```
 */
export function createH2ClientTransport(options: H2ClientOptions): H2ClientTransport {
  const pools = new Map<string, H2Connection[]>();
  const heads = new Map<string, { base: Uint8Array; byLength: Map<number, Uint8Array> }>();
  const perOrigin = Math.max(1, options.connectionsPerOrigin ?? 2);
  const connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 25_000;
  const maxRequests = Math.max(1, options.maxRequestsPerConnection ?? 100_000);
  const closing = new AbortController();
  let closed = false;

  function open(url: URL, pool: H2Connection[]): H2Connection {
    const signal = AbortSignal.any([closing.signal, AbortSignal.timeout(connectTimeoutMs)]);
    const socket = options.connect({
      hostname: url.hostname.replace(/^\[|\]$/g, ""),
      port: Number(url.port || (url.protocol === "https:" ? 443 : 80)),
      signal,
    });
    const conn: H2Connection = new H2Connection(socket, {
      idleTimeoutMs,
      onClose: (error) => {
        const i = pool.indexOf(conn);
        if (i >= 0) pool.splice(i, 1);
        if (error && !/drained|connection closed$/.test(error.message)) {
          options.onConnectionError?.(url.origin, error);
        }
      },
    });
    pool.push(conn);
    return conn;
  }

  function connectionFor(url: URL): H2Connection {
    let pool = pools.get(url.origin);
    if (!pool) {
      pool = [];
      pools.set(url.origin, pool);
    }
    let best: H2Connection | undefined;
    let usable = 0;
    for (const conn of pool) {
      if (!conn.usable) continue;
      if (conn.requests >= maxRequests) {
        conn.drain(); // rotate: its open requests finish, then it closes
        continue;
      }
      if (conn.hasRoom) return conn;
      usable++;
      if (!best || conn.load < best.load) best = conn;
    }
    if (!best || usable < perOrigin) return open(url, pool);
    return best;
  }

  function headFor(request: DohRequest): Uint8Array {
    const { url } = request;
    const scheme = url.protocol === "https:" ? "https" : "http";
    const path = url.pathname + url.search;
    if (request.method === "GET") {
      return encodeRequestHead({
        method: "GET",
        scheme,
        authority: url.host,
        path,
        accept: MEDIA_TYPE,
      });
    }
    let cached = heads.get(url.href);
    if (!cached) {
      if (heads.size >= HEAD_CACHE_SIZE) heads.clear();
      cached = {
        base: encodeRequestHead({
          method: "POST",
          scheme,
          authority: url.host,
          path,
          accept: MEDIA_TYPE,
          contentType: MEDIA_TYPE,
        }),
        byLength: new Map(),
      };
      heads.set(url.href, cached);
    }
    // Padded queries (RFC 8467: blocks of 128) come in a handful of lengths: keep whole heads.
    const length = request.body?.length ?? 0;
    let head = cached.byLength.get(length);
    if (!head) {
      if (cached.byLength.size >= HEAD_CACHE_SIZE) cached.byLength.clear();
      head = withContentLength(cached.base, length);
      cached.byLength.set(length, head);
    }
    return head;
  }

  const transport: DohTransport = async (request: DohRequest): Promise<DohResponse> => {
    if (closed) throw new TransportError("transport closed", false);
    const head = headFor(request);
    const body = request.method === "POST" ? (request.body ?? new Uint8Array(0)) : undefined;
    return await connectionFor(request.url).request(
      head,
      body,
      request.maxBodySize,
      request.signal,
    );
  };

  return {
    transport,
    close() {
      closed = true;
      closing.abort(new TransportError("transport closed", false));
      for (const pool of pools.values()) {
        for (const conn of [...pool]) conn.drain();
      }
      pools.clear();
    },
  };
}
