/**
 * The Deno side of the bridge's HTTP/2 client: TLS connections with ALPN `h2` on Deno's own
 * TLS (`Deno.connect` then `Deno.startTls`), so the bytes of every upstream request pass through
 * no `node:` compatibility layer.
 *
 * `Deno.startTls` takes the name to verify separately from the address dialled, which is what a
 * bootstrap address needs: dial `192.0.2.53`, verify `dns.example`.
 *
 * @module
 */
import { abortable } from "../async/abortable.ts";
import type { H2Socket } from "../h2/socket.ts";
import type { H2Connector } from "../h2/pool.ts";
import { messageOf } from "../errors/message_of.ts";

/** Options of {@linkcode denoH2Connector}. */
export interface DenoH2ConnectorOptions {
  /** Trusted CA certificates (PEM), added to the system roots. */
  caCerts?: string[];
  /** Host name → address to dial instead of resolving it. */
  bootstrap?: Readonly<Record<string, string>>;
}

/** A Deno TLS connection as an {@linkcode H2Socket} (reads after close resolve `null`). */
export function wrapTlsConn(conn: Deno.TlsConn): H2Socket {
  let closed = false;
  return {
    async read(buffer) {
      if (closed) return null;
      try {
        return await conn.read(buffer);
      } catch (error) {
        if (closed) return null;
        throw error;
      }
    },
    async write(bytes) {
      let at = 0;
      while (at < bytes.length) at += await conn.write(bytes.subarray(at));
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch { /* already closed */ }
    },
  };
}

/**
 * Creates the connector: TCP with no-delay, TLS 1.2+ verified against the URL's host name (the
 * system roots plus `caCerts`), ALPN `h2` required.
 *
 * @example
 * ```ts
 * const connect = denoH2Connector({ bootstrap: { "dns.example": "192.0.2.53" } });
 * ```
 */
export function denoH2Connector(options: DenoH2ConnectorOptions = {}): H2Connector {
  const caCerts = options.caCerts?.length ? options.caCerts : undefined;
  return async ({ hostname, port, signal }) => {
    const dial = options.bootstrap?.[hostname.toLowerCase()] ?? hostname;
    const where = `TLS to ${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}` +
      (dial === hostname ? "" : ` (dialled ${dial})`);
    let tcp: Deno.TcpConn;
    try {
      tcp = await abortable(Deno.connect({ hostname: dial, port }), signal, (c) => c.close());
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw new Error(`${where}: ${messageOf(error)}`, { cause: error });
    }
    tcp.setNoDelay(true);
    let tls: Deno.TlsConn | undefined;
    try {
      tls = await Deno.startTls(tcp, { hostname, caCerts, alpnProtocols: ["h2"] });
      const info = await abortable(tls.handshake(), signal);
      if (info.alpnProtocol !== "h2") {
        throw new Error(`the server did not agree to HTTP/2 (ALPN ${info.alpnProtocol ?? "none"})`);
      }
      return wrapTlsConn(tls);
    } catch (error) {
      try {
        (tls ?? tcp).close();
      } catch { /* closed */ }
      if (signal.aborted) throw signal.reason;
      throw new Error(`${where}: ${messageOf(error)}`, { cause: error });
    }
  };
}
