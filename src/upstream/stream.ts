/**
 * The byte-stream connection a stream upstream (DoT) runs over, and the connector that opens it.
 *
 * The shape is Cloudflare's `cloudflare:sockets` `Socket` (`readable`, `writable`, `closed`,
 * `close()`), so the same core runs in Workers (`connect()` with `secureTransport: "on"`) and in
 * Deno or Node (a `node:tls` socket wrapped by `src/deno/tls_connector.ts`).
 *
 * @module
 */

/**
 * One established, authenticated, bidirectional byte stream (for DoT: a TLS connection).
 *
 * - `readable` yields bytes as they arrive; it closes when the peer ends the stream and errors
 *   when the connection fails.
 * - `writable` sends bytes. A writer hands each chunk to the transport as one write, so a
 *   caller that frames several messages into one chunk sends them in one TLS record/TCP segment
 *   where they fit (never write length and body apart: the Nagle lesson of
 *   docs/platform-notes.md#no-delay-nagle-and-delayed-ack).
 * - `closed` settles once the connection is gone (resolves on a clean close, may reject with
 *   the error that ended it).
 * - `close()` ends both directions; it is safe to call more than once.
 */
export interface ByteStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  readonly closed: Promise<void>;
  close(): Promise<void> | void;
}

/** Where a {@linkcode StreamConnector} should connect, and the name to authenticate. */
export interface StreamTarget {
  /** Address or name to connect to (an IPv6 address without brackets). */
  readonly hostname: string;
  readonly port: number;
  /**
   * The name (or address) the server's certificate must be valid for; also sent as SNI when it
   * is a name. Equal to `hostname` unless the URL said otherwise (`tls://1.1.1.1#one.one`).
   */
  readonly servername: string;
  /** Aborts the connection attempt (connect timeout, upstream closed). */
  readonly signal: AbortSignal;
}

/**
 * Opens a {@linkcode ByteStream} to a target. The connector owns the authentication policy
 * (trusted CAs, SPKI pins, opportunistic mode): it resolves only with a stream that passed it,
 * and rejects (with an `Error` that says what failed and where, never a credential) otherwise,
 * or with `signal.reason` when `signal` aborts first.
 *
 * @example
 * ```ts
 * const stream = await connect({ hostname: "1.1.1.1", port: 853, servername: "one.one.one.one", signal });
 * ```
 */
export type StreamConnector = (target: StreamTarget) => Promise<ByteStream>;
