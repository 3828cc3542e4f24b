/**
 * The runtime side of a DoQ upstream: a {@linkcode QuicConnector} over `Deno.connectQuic`
 * (unstable `net`), ALPN `doq` (RFC 9250 §4.1.1).
 *
 * The server's certificate must chain to the default roots or `caCerts` and be valid for the
 * target's `servername` (rustls checks the name; an IP address as the name must be in the
 * certificate's IP SANs). SPKI pins cannot be checked: Deno's `QuicConn` does not expose the
 * peer certificate, so `quic://` URLs refuse `?pin=` at configuration time.
 *
 * @module
 */
import { abortable } from "../async/abortable.ts";
import type { QuicConnection, QuicConnector } from "../upstream/doq.ts";
import type { StreamTarget } from "../upstream/stream.ts";
import { messageOf } from "../errors/message_of.ts";

/** Options of {@linkcode createQuicConnector}. */
export interface QuicConnectorOptions {
  /** Extra trusted CA certificates (PEM), in addition to the default roots. */
  caCerts?: string[];
  /** The connection closes after this long without traffic. Default 30 000 ms. */
  maxIdleTimeoutMs?: number;
}

function describe(target: StreamTarget): string {
  const host = target.hostname.includes(":") ? `[${target.hostname}]` : target.hostname;
  const name = target.servername === target.hostname ? "" : ` as "${target.servername}"`;
  return `QUIC to ${host}:${target.port}${name}`;
}

/**
 * A connector opening one authenticated QUIC connection per call, each on its own ephemeral UDP
 * endpoint (closed with the connection).
 *
 * @example
 * ```ts
 * const connect = createQuicConnector({ caCerts: [caPem] });
 * const conn = await connect({ hostname: "127.0.0.1", port: 853, servername: "localhost", signal });
 * ```
 */
export function createQuicConnector(options: QuicConnectorOptions = {}): QuicConnector {
  const caCerts = options.caCerts;
  const maxIdleTimeout = options.maxIdleTimeoutMs ?? 30_000;
  return async (target) => {
    if (target.signal.aborted) throw target.signal.reason;
    const attempt: Promise<Deno.QuicConn> = Deno.connectQuic({
      hostname: target.hostname,
      port: target.port,
      serverName: target.servername,
      caCerts,
      alpnProtocols: ["doq"],
      maxIdleTimeout,
      zeroRtt: false, // replayable early data: never for DNS queries
    });
    let conn: Deno.QuicConn;
    try {
      conn = await abortable(attempt, target.signal);
      await conn.handshake;
    } catch (error) {
      attempt.then((late) => close(late), () => {});
      if (target.signal.aborted) throw target.signal.reason;
      throw new Error(`${describe(target)}: ${messageOf(error)}`, {
        cause: error,
      });
    }
    if (conn.protocol !== "doq") {
      close(conn);
      throw new Error(`${describe(target)}: the server did not agree to ALPN "doq"`);
    }
    const closed = conn.closed.finally(() => {
      try {
        conn.endpoint.close();
      } catch {
        // already closed
      }
    });
    closed.catch(() => {});
    const connection: QuicConnection = {
      createBidirectionalStream: () => conn.createBidirectionalStream(),
      closed,
      close: () => {
        try {
          conn.close({ closeCode: 0, reason: "" }); // DOQ_NO_ERROR (RFC 9250 §4.3)
        } catch {
          // already closed
        }
      },
    };
    return connection;
  };
}

function close(conn: Deno.QuicConn): void {
  try {
    conn.close({ closeCode: 0, reason: "" }); // DOQ_NO_ERROR (RFC 9250 §4.3)
  } catch {
    // already closed
  }
  try {
    conn.endpoint.close();
  } catch {
    // already closed
  }
}
