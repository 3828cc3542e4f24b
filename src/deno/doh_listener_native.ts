/**
 * The DoH face on the bridge's own HTTP/2 server (`src/h2/server.ts`) over
 * `Deno.listenTls`, chosen with `--doh-server native`. Against `Deno.serve` it trades breadth
 * for speed and control:
 *
 * - **HTTP/2 only** (ALPN `h2`; RFC 8484 names HTTP/2 as the minimum). Clients that offer only
 *   HTTP/1.1 fail the TLS handshake (no common ALPN protocol). kdig, dig, curl, browsers, Android
 *   and systemd-resolved's DoH peers all speak h2.
 * - **Connection limits apply**, as on the DoT face: `--max-connections`, per-IP caps, the
 *   handshake timeout, the idle timeout, and the ACL refusing at accept.
 * - Wire-format queries on the DoH path are answered by the processor directly; everything else
 *   (JSON API, landing page, health, metrics, errors) goes to the same hono app as a `Request`.
 * - TLS only, no SNI (Deno's TLS server does not expose it); certificate reload binds a second
 *   listener on the port (SO_REUSEPORT) and closes the old one, as the native DoT listener does.
 *
 * @module
 */
import { cacheControl } from "../http/app.ts";
import { wireRequest } from "../http/fast_path.ts";
import { H2ServerConnection, type H2ServerReply, type H2ServerRequest } from "../h2/server.ts";
import { addressFromHeader, type DohListener, type DohListenerOptions } from "./doh_listener.ts";
import { wrapTlsConn } from "./h2_connector.ts";
import { acceptTls } from "./tls_acceptor.ts";

/** Options of {@linkcode listenDohNative}: the Deno.serve listener's, plus connection limits. */
export interface NativeDohListenerOptions extends DohListenerOptions {
  cert: string;
  key: string;
  maxConnections?: number;
  maxConnectionsPerIp?: number;
  handshakeTimeoutMs?: number;
  idleTimeoutMs?: number;
}

const MEDIA_TYPE = "application/dns-message";
const EMPTY = new Uint8Array(0);

/** The client address: the trusted proxy header's value when configured and present. */
function addressOf(request: H2ServerRequest, peer: string, header?: string): string {
  if (!header) return peer;
  const name = header.toLowerCase();
  return addressFromHeader(request.headers.find(([n]) => n === name)?.[1], peer, header);
}

/**
 * Starts the listener.
 *
 * @throws if the address cannot be bound or the certificate and key do not load
 */
export function listenDohNative(options: NativeDohListenerOptions): DohListener {
  const { app, logger } = options;
  const connections = new Set<H2ServerConnection>();
  let closing = false;

  async function handle(request: H2ServerRequest, peer: string): Promise<H2ServerReply> {
    const address = addressOf(request, peer, options.trustedProxyHeader);
    const fast = options.fast;
    if (fast && (request.method === "GET" || request.method === "POST")) {
      const type = request.headers.find(([n]) => n === "content-type")?.[1];
      const hit = wireRequest(
        request.method,
        request.path,
        type?.split(";")[0].trim(),
        request.body,
        fast.path,
      );
      if (hit) {
        const answer = await fast.process(hit.wire, {
          face: "doh",
          signal: request.signal,
          client: { address },
          tenant: hit.tenant,
        });
        if (answer === null) {
          return { status: 400, headers: [["content-type", "text/plain"]], body: EMPTY };
        }
        return {
          status: 200,
          headers: [["content-type", MEDIA_TYPE], ["cache-control", cacheControl(answer)]],
          body: answer,
        };
      }
    }
    const response = await app.fetch(
      new Request(`https://${request.authority || "localhost"}${request.path}`, {
        method: request.method,
        headers: request.headers as [string, string][],
        body: request.body?.length ? request.body.slice() : undefined,
        signal: request.signal,
      }),
      { remoteAddr: address },
    );
    const body = request.method === "HEAD" ? EMPTY : new Uint8Array(await response.arrayBuffer());
    return { status: response.status, headers: [...response.headers], body };
  }

  const acceptor = acceptTls({
    hostname: options.hostname,
    port: options.port,
    cert: options.cert,
    key: options.key,
    alpnProtocols: ["h2"],
    requireAlpn: "h2",
    reusePort: options.reusePort,
    maxConnections: options.maxConnections,
    maxConnectionsPerIp: options.maxConnectionsPerIp,
    handshakeTimeoutMs: options.handshakeTimeoutMs,
    accept: options.accept,
    logger,
    onRefused: () => options.onEvent?.("refused"),
    onConnection: (conn, peer, release) => {
      const h2: H2ServerConnection = new H2ServerConnection(
        wrapTlsConn(conn),
        (request) => handle(request, peer.hostname),
        {
          idleTimeoutMs: options.idleTimeoutMs,
          onClose: (reason) => {
            connections.delete(h2);
            release();
            logger?.debug("doh: connection closed", { reason });
          },
        },
      );
      connections.add(h2);
    },
  });

  return {
    addr: { hostname: acceptor.addr.hostname, port: acceptor.addr.port },
    tls: true,
    get connections() {
      return acceptor.connections;
    },
    setCertificate(cert: string, key: string) {
      if (!closing) acceptor.setCertificate(cert, key); // throws for a bad pair
      return Promise.resolve();
    },
    async shutdown(graceMs = 5_000) {
      closing = true;
      acceptor.stop();
      await Promise.all([...connections].map((c) => c.shutdown(graceMs)));
    },
  };
}
