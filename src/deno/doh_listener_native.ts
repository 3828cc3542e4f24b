/**
 * The DoH face on the bridge's own HTTP/2 server (`src/http/h2_server.ts`) over
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
import { H2ServerConnection, type H2ServerReply, type H2ServerRequest } from "../http/h2_server.ts";
import type { DohListener, DohListenerOptions } from "./doh_listener.ts";
import { refusalOf } from "./dot_listener.ts";
import { wrapTlsConn } from "./h2_connector.ts";

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
  const value = request.headers.find(([n]) => n === name)?.[1];
  if (value === undefined) return peer;
  const entry = name === "x-forwarded-for" ? value.split(",").at(-1)! : value;
  return entry.trim() || peer;
}

/**
 * Starts the listener.
 *
 * @throws if the address cannot be bound or the certificate and key do not load
 */
export function listenDohNative(options: NativeDohListenerOptions): DohListener {
  const { app, logger } = options;
  const maxConnections = options.maxConnections ?? 10_000;
  const maxPerIp = options.maxConnectionsPerIp ?? 0;
  const handshakeMs = options.handshakeTimeoutMs ?? 5_000;
  const perIp = new Map<string, number>();
  const connections = new Set<H2ServerConnection>();
  const handshaking = new Set<Deno.TlsConn>();
  const live = new Set<Deno.TlsListener>();
  let open = 0;
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

  async function admit(conn: Deno.TlsConn): Promise<void> {
    const peer = (conn.remoteAddr as Deno.NetAddr).hostname;
    const held = perIp.get(peer) ?? 0;
    const refusal = refusalOf({
      closing,
      open,
      maxConnections,
      held,
      maxPerIp,
      address: peer,
      accept: options.accept,
    });
    if (refusal) {
      options.onEvent?.("refused");
      logger?.debug("doh: connection refused", { reason: refusal });
      try {
        conn.close();
      } catch { /* closed */ }
      return;
    }
    open++;
    perIp.set(peer, held + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      open--;
      const n = (perIp.get(peer) ?? 1) - 1;
      if (n > 0) perIp.set(peer, n);
      else perIp.delete(peer);
    };
    handshaking.add(conn);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const handshake = conn.handshake();
      handshake.catch(() => {});
      const info = await Promise.race([
        handshake,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("TLS handshake timeout")), handshakeMs);
        }),
      ]);
      if (info.alpnProtocol !== "h2") throw new Error("the client did not agree to HTTP/2");
    } catch (error) {
      logger?.debug("doh: handshake failed", { error: (error as Error)?.message });
      try {
        conn.close();
      } catch { /* closed */ }
      release();
      return;
    } finally {
      clearTimeout(timer);
      handshaking.delete(conn);
    }
    if (closing) {
      conn.close();
      return release();
    }
    const h2: H2ServerConnection = new H2ServerConnection(
      wrapTlsConn(conn),
      (request) => handle(request, peer),
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
  }

  const bind = (port: number, cert: string, key: string) =>
    Deno.listenTls({
      hostname: options.hostname,
      port,
      cert,
      key,
      alpnProtocols: ["h2"],
      reusePort: true, // setCertificate() binds the new pair next to the old listener
    });

  async function acceptLoop(listener: Deno.TlsListener): Promise<void> {
    for (;;) {
      let conn: Deno.TlsConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (!live.has(listener) || error instanceof Deno.errors.BadResource) return;
        logger?.warn("doh: accept failed", { error: (error as Error)?.message });
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      admit(conn).catch((error) =>
        logger?.error("doh: connection setup failed", { error: (error as Error)?.message })
      );
    }
  }

  const start = (listener: Deno.TlsListener) => {
    live.add(listener);
    void acceptLoop(listener);
  };
  const stop = (listener: Deno.TlsListener) => {
    live.delete(listener);
    try {
      listener.close();
    } catch { /* closed */ }
  };

  if (!options.reusePort && options.port !== 0) {
    // Keep "address in use" an error: SO_REUSEPORT alone would share the port silently.
    Deno.listen({ hostname: options.hostname, port: options.port }).close();
  }
  let current = bind(options.port, options.cert, options.key);
  const bound = current.addr as Deno.NetAddr;
  start(current);

  return {
    addr: { hostname: bound.hostname, port: bound.port },
    tls: true,
    get connections() {
      return open;
    },
    setCertificate(cert: string, key: string) {
      if (closing) return Promise.resolve();
      const next = bind(bound.port, cert, key); // throws for a bad pair: the old one stays
      const old = current;
      current = next;
      start(next);
      stop(old);
      return Promise.resolve();
    },
    async shutdown(graceMs = 5_000) {
      closing = true;
      for (const listener of [...live]) stop(listener);
      for (const conn of handshaking) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      await Promise.all([...connections].map((c) => c.shutdown(graceMs)));
    },
  };
}
