/**
 * The DoH face on Deno: the hono app behind `node:http2` (HTTPS: HTTP/2 and HTTP/1.1 by ALPN)
 * or `node:http` (plain HTTP/1.1, behind a reverse proxy that terminates TLS).
 *
 * Why not `Deno.serve`: measured here, `kdig +https` waited 43–87 ms per query on `Deno.serve`
 * (a small-write / delayed-ACK stall) against 3 ms on `node:http2` with no-delay sockets, at
 * about 80% of `Deno.serve`'s request rate under h2load. Low-load latency is what users feel.
 * `node:http2` also gives `setSecureContext()` (certificate reload without dropping connections)
 * and the client's SNI, like the DoT listener.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import type { DohBindings } from "../http/app.ts";
import type { Logger } from "../log/mod.ts";

/** The part of a hono app the listener needs. */
export interface FetchApp {
  fetch(request: Request, env: DohBindings): Response | Promise<Response>;
}

/** Options of {@linkcode listenDoh}. */
export interface DohListenerOptions {
  hostname: string;
  port: number;
  /** PEM certificate chain and key; both set: HTTPS, both unset: plain HTTP. */
  cert?: string;
  key?: string;
  app: FetchApp;
  /**
   * A request header set by a trusted reverse proxy that carries the client's address, e.g.
   * `x-forwarded-for` or `x-real-ip`. For `x-forwarded-for` the last (right-most) entry is
   * used: the one the proxy next to us appended, which a client cannot forge; for any other
   * header, the whole trimmed value. Requests without the header fall back to the socket peer.
   * Only set this when nothing but the proxy can reach the listener.
   */
  trustedProxyHeader?: string;
  /** Request bodies over this many bytes get 413 without being read further. Default 65535. */
  maxBodySize?: number;
  /** Connections open at once; more are refused. Default 10 000. */
  maxConnections?: number;
  /** TLS handshake deadline. Default 5 000 ms. */
  handshakeTimeoutMs?: number;
  /** Close connections idle this long. Default 60 000 ms. */
  idleTimeoutMs?: number;
  /** Refuses connections from addresses this returns false for (ACL). */
  accept?: (address: string) => boolean;
  /** Connections one peer address may hold; 0 or unset: no limit. */
  maxConnectionsPerIp?: number;
  /** Share the port with other listeners (SO_REUSEPORT): one per thread, the kernel balances. */
  reusePort?: boolean;
  /** Told about refused connections and failed handshakes, for metrics. */
  onEvent?: (event: string) => void;
  logger?: Logger;
}

/** A running DoH listener. */
export interface DohListener {
  /** The bound address (the real port when 0 was asked for). */
  readonly addr: { hostname: string; port: number };
  /** True when serving HTTPS. */
  readonly tls: boolean;
  /** Connections open now. */
  readonly connections: number;
  /** New connections use this certificate; established ones keep theirs (HTTPS only). */
  setCertificate(cert: string, key: string): void;
  /**
   * Stops accepting, lets in-flight requests finish (at most `graceMs`, default 5 000 ms), then
   * closes every connection.
   */
  shutdown(graceMs?: number): Promise<void>;
}

/**
 * The client address for a request: the trusted proxy header's value if configured and present
 * (last entry of `x-forwarded-for`), else the socket peer's address.
 */
export function clientAddressOf(
  request: Request,
  peer: string,
  trustedProxyHeader?: string,
): string {
  if (!trustedProxyHeader) return peer;
  const value = request.headers.get(trustedProxyHeader);
  if (value === null) return peer;
  const entry = trustedProxyHeader.toLowerCase() === "x-forwarded-for"
    ? value.split(",").at(-1)!
    : value;
  return entry.trim() || peer;
}

type NodeRequest = IncomingMessage | http2.Http2ServerRequest;
/** The part of `ServerResponse` / `Http2ServerResponse` the adapter uses. */
interface NodeResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(data?: Uint8Array | string): unknown;
  once(event: "close", listener: () => void): unknown;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  readonly headersSent: boolean;
}

/** Reads a request body, or returns undefined once it exceeds `limit`. */
function readBody(req: NodeRequest, limit: number): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    let done = false;
    req.on("data", (chunk: Uint8Array) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (done) return;
      done = true;
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    });
    req.on("error", (error: Error) => {
      if (!done) reject(error);
      done = true;
    });
  });
}

/**
 * Starts the DoH listener.
 *
 * @throws if the address cannot be bound, or the certificate and key do not load
 *
 * @example
 * ```ts
 * const doh = await listenDoh({ hostname: "127.0.0.1", port: 8443, cert, key, app });
 * ```
 */
export async function listenDoh(options: DohListenerOptions): Promise<DohListener> {
  const { app, logger, trustedProxyHeader } = options;
  const tls = options.cert !== undefined && options.key !== undefined;
  const scheme = tls ? "https" : "http";
  const maxBody = options.maxBodySize ?? 65535;
  const maxConnections = options.maxConnections ?? 10_000;
  const idleMs = options.idleTimeoutMs ?? 60_000;
  const sockets = new Set<Socket>();
  const perIp = new Map<string, number>();
  const maxPerIp = options.maxConnectionsPerIp ?? 0;
  const sessions = new Set<http2.ServerHttp2Session>();
  let inFlight = 0;
  let closing = false;

  async function handle(req: NodeRequest, res: NodeResponse): Promise<void> {
    // Counted until the response is flushed and closed, not merely queued: shutdown waits on it.
    inFlight++;
    res.once("close", () => inFlight--);
    try {
      const method = req.method ?? "GET";
      const authority = (req.headers[":authority"] ?? req.headers.host ?? "localhost") as string;
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (name.startsWith(":") || value === undefined) continue;
        headers.set(name, Array.isArray(value) ? value.join(", ") : value);
      }
      let body: Uint8Array<ArrayBuffer> | undefined;
      if (method !== "GET" && method !== "HEAD") {
        const read = await readBody(req, maxBody);
        if (read === undefined) {
          res.writeHead(413, { "content-type": "text/plain; charset=utf-8" });
          res.end("DNS message too large\n");
          return;
        }
        body = new Uint8Array(read);
      }
      const abort = new AbortController();
      res.once("close", () => abort.abort());
      const request = new Request(`${scheme}://${authority}${req.url ?? "/"}`, {
        method,
        headers,
        body,
        signal: abort.signal,
      });
      const peer = req.socket?.remoteAddress ?? "";
      const response = await app.fetch(request, {
        remoteAddr: clientAddressOf(request, peer, trustedProxyHeader),
      });
      const out = new Uint8Array(await response.arrayBuffer());
      const outHeaders: Record<string, string> = {};
      response.headers.forEach((value, name) => (outHeaders[name] = value));
      if (method !== "HEAD") outHeaders["content-length"] = String(out.length);
      if (res.destroyed || res.writableEnded) return;
      res.writeHead(response.status, outHeaders);
      res.end(method === "HEAD" ? undefined : out);
    } catch (error) {
      logger?.error("doh: request failed", { error: (error as Error)?.message });
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
        res.end("internal error\n");
      }
    }
  }

  const onRequest = (req: NodeRequest, res: ServerResponse | http2.Http2ServerResponse) =>
    void handle(req, res as unknown as NodeResponse);
  const server = tls
    ? http2.createSecureServer({
      cert: options.cert,
      key: options.key,
      allowHTTP1: true,
      ALPNProtocols: ["h2", "http/1.1"],
      minVersion: "TLSv1.2",
      handshakeTimeout: options.handshakeTimeoutMs ?? 5_000,
    }, onRequest)
    : http.createServer(onRequest);

  server.on("connection", (socket: Socket) => {
    const address = socket.remoteAddress ?? "";
    const held = perIp.get(address) ?? 0;
    if (
      closing || sockets.size >= maxConnections || (maxPerIp > 0 && held >= maxPerIp) ||
      (options.accept && !options.accept(address))
    ) {
      options.onEvent?.("refused");
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    sockets.add(socket);
    perIp.set(address, held + 1);
    socket.once("close", () => {
      sockets.delete(socket);
      const n = (perIp.get(address) ?? 1) - 1;
      if (n > 0) perIp.set(address, n);
      else perIp.delete(address);
    });
  });
  server.on("tlsClientError", (error: Error, socket: Socket) => {
    logger?.debug("doh: tls handshake failed", { error: error.message });
    options.onEvent?.("tls-handshake-failed");
    socket.destroy();
  });
  server.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.setTimeout(idleMs, () => session.close());
    session.once("close", () => sessions.delete(session));
    session.on(
      "error",
      (error: Error) => logger?.debug("doh: session error", { error: error.message }),
    );
  });
  if (!tls) (server as http.Server).keepAliveTimeout = Math.min(idleMs, 60_000);

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    const listen = { port: options.port, host: options.hostname, reusePort: options.reusePort };
    server.listen(listen, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on(
    "error",
    (error: Error) => logger?.error("doh: listener error", { error: error.message }),
  );
  const bound = server.address() as AddressInfo;

  return {
    addr: { hostname: bound.address, port: bound.port },
    tls,
    get connections() {
      return sockets.size;
    },
    setCertificate(cert: string, key: string) {
      if (tls) (server as http2.Http2SecureServer).setSecureContext({ cert, key });
    },
    async shutdown(graceMs = 5_000) {
      closing = true;
      server.close();
      for (const session of sessions) session.close(); // GOAWAY; open streams finish
      const deadline = Date.now() + graceMs;
      while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      for (const socket of sockets) socket.destroy();
    },
  };
}
