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
 * - Wire-format requests on the DoH path (queries and their errors) take the same request path
 *   as the app (`src/http/doh_request.ts`, `doh_response.ts`) without building a `Request`;
 *   everything else (JSON API, landing page, health, metrics) goes to the same hono app as a
 *   `Request`.
 * - TLS only, no SNI (Deno's TLS server does not expose it); certificate reload binds a second
 *   listener on the port (SO_REUSEPORT) and closes the old one, as the native DoT listener does.
 *
 * @module
 */
import { MAX_MESSAGE_SIZE } from "../dns/constants.ts";
import { parseDohRequest, tooLarge } from "../http/doh_request.ts";
import { answerDohQuery, requestErrorReply } from "../http/doh_response.ts";
import { H2ServerConnection, type H2ServerReply, type H2ServerRequest } from "../h2/server.ts";
import {
  addressFromHeader,
  type DohListener,
  type DohListenerOptions,
  fastPathOptions,
} from "./doh_listener.ts";
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

const EMPTY = new Uint8Array(0);

function header(request: H2ServerRequest, name: string): string | undefined {
  return request.headers.find(([n]) => n === name)?.[1];
}

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
  const fastOptions = options.fast && fastPathOptions(options.fast);
  // A body over the cap never reaches the handler: the server answers it with the same 413.
  const maxBodyBytes = fastOptions?.maxQuerySize ?? MAX_MESSAGE_SIZE;
  const tooLargeReply = requestErrorReply(tooLarge(maxBodyBytes));

  async function handle(request: H2ServerRequest, peer: string): Promise<H2ServerReply> {
    const address = addressOf(request, peer, options.trustedProxyHeader);
    const fast = options.fast;
    if (fast) {
      // The body is already read (the server caps it), so this never waits.
      const parsed = parseDohRequest({
        method: request.method,
        target: request.path,
        get contentType() {
          return header(request, "content-type");
        },
        get accept() {
          return header(request, "accept");
        },
        body: request.body,
      }, fastOptions!);
      if (parsed.kind === "error") return requestErrorReply(parsed);
      if (parsed.kind === "query") {
        // A DohReply is an H2ServerReply as it is.
        return answerDohQuery(fast.process, parsed, {
          face: "doh",
          signal: request.signal,
          client: { address },
          tenant: parsed.tenant,
        }, logger);
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
          maxBodyBytes,
          tooLargeReply,
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
