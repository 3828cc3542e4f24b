/**
 * The DoH face on Deno: `Deno.serve` in front of the hono app. With a certificate it serves
 * HTTPS, HTTP/2 and HTTP/1.1 by ALPN; without, plain HTTP (and h2c with prior knowledge) for use
 * behind a reverse proxy that terminates TLS.
 *
 * @module
 */
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
  logger?: Logger;
}

/** A running DoH listener. */
export interface DohListener {
  /** The bound address (the real port when 0 was asked for). */
  readonly addr: { hostname: string; port: number };
  /** True when serving HTTPS. */
  readonly tls: boolean;
  /**
   * Stops accepting and waits for in-flight requests (at most `graceMs`, default: until they
   * finish).
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

/**
 * Starts the DoH listener.
 *
 * @throws if the address cannot be bound, or the certificate and key do not load
 *
 * @example
 * ```ts
 * const doh = listenDoh({ hostname: "127.0.0.1", port: 8443, cert, key, app });
 * ```
 */
export function listenDoh(options: DohListenerOptions): DohListener {
  const { app, logger, trustedProxyHeader } = options;
  const tls = options.cert !== undefined && options.key !== undefined;
  const handler = (request: Request, info: Deno.ServeHandlerInfo<Deno.Addr>) => {
    const peer = info.remoteAddr.transport === "tcp" ? info.remoteAddr.hostname : "";
    return app.fetch(request, { remoteAddr: clientAddressOf(request, peer, trustedProxyHeader) });
  };
  const onError = (error: unknown) => {
    logger?.error("doh: request failed", { error: (error as Error)?.message });
    return new Response("internal error", { status: 500 });
  };
  const common = { hostname: options.hostname, port: options.port, onListen: () => {}, onError };
  const server = tls
    ? Deno.serve({ ...common, cert: options.cert!, key: options.key! }, handler)
    : Deno.serve(common, handler);
  const bound = server.addr as Deno.NetAddr;

  return {
    addr: { hostname: bound.hostname, port: bound.port },
    tls,
    async shutdown(graceMs?: number) {
      const done = server.shutdown();
      if (graceMs === undefined) return await done;
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([done, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
