/**
 * The DoH transport the Deno edge uses for `https://` upstreams: the bridge's own HTTP/2 client
 * (`src/h2/`) over Deno's TLS ({@linkcode denoH2Connector}).
 *
 * It replaced a transport over `node:http2`, for two measured reasons: Deno 2.9's `node:http2`
 * can abort the whole process on a server's GOAWAY (its binding destroys the session inside
 * nghttp2's frame callback, Deno issue #36788), and its streams-and-events layer cost more CPU
 * per request than the DNS work around it (see
 * docs/benchmarks.md#how-the-bridging-and-cached-figures-got-here).
 *
 * @module
 */
import type { Logger } from "../log/mod.ts";
import { createH2ClientTransport, type H2ClientTransport } from "../upstream/h2_transport.ts";
import { denoH2Connector } from "./h2_connector.ts";

/** Options of {@linkcode createH2Transport}. */
export interface H2TransportOptions {
  /** CA certificates (PEM) trusted in addition to the system roots. */
  caCerts?: string[];
  /** Host name → address to dial instead of resolving it (bootstrap). */
  bootstrap?: Readonly<Record<string, string>>;
  /** HTTP/2 connections per upstream origin at most. Default 2. */
  connectionsPerOrigin?: number;
  /** TLS connect deadline. Default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * A connection without traffic for this long is closed by us, ahead of the server's own idle
   * timeout (dnsdist: 30 s, h2o: 10 s, nginx: 75 s or more), so that a request rarely races the
   * server's GOAWAY. Default 25 000 ms.
   */
  idleTimeoutMs?: number;
  /**
   * Requests sent on one connection before new requests move to a fresh one (the old one closes
   * once its streams finish). Keeps clear of HTTP/2 stream-ID exhaustion (2^30 requests) and of
   * servers' per-connection request limits. Default 100 000.
   */
  maxRequestsPerConnection?: number;
  logger?: Logger;
}

/**
 * Creates the transport. Connections open lazily, are shared by every concurrent request, take
 * no new request after GOAWAY, an error or close, are closed after `idleTimeoutMs` without
 * traffic and rotated after `maxRequestsPerConnection` requests.
 *
 * @example
 * ```ts
 * const { transport, close } = createH2Transport({ bootstrap: { "dns.example": "192.0.2.53" } });
 * const upstream = new DohUpstream({ url: "https://dns.example/dns-query", transport });
 * ```
 */
export function createH2Transport(options: H2TransportOptions = {}): H2ClientTransport {
  return createH2ClientTransport({
    connect: denoH2Connector({ caCerts: options.caCerts, bootstrap: options.bootstrap }),
    connectionsPerOrigin: options.connectionsPerOrigin,
    connectTimeoutMs: options.connectTimeoutMs,
    idleTimeoutMs: options.idleTimeoutMs,
    maxRequestsPerConnection: options.maxRequestsPerConnection,
    onConnectionError: (origin, error) =>
      options.logger?.debug("http2 connection error", { origin, error: error.message }),
  });
}
