/**
 * The DoH face on Deno: `Deno.serve` in front of the hono app. With a certificate it serves
 * HTTPS, HTTP/2 and HTTP/1.1 by ALPN; without, plain HTTP (and h2c with prior knowledge) for use
 * behind a reverse proxy that terminates TLS.
 *
 * Why `Deno.serve` and not `node:http2` (which the DoT face's `node:tls` would suggest): under
 * Deno 2.9.6 a `node:http2` server aborted the whole process inside nghttp2
 * (`find_stream_on_goaway_func: Assertion 'stream->closed_next == NULL' failed`, Deno issue
 * #36788) in about one in five h2load runs here; `Deno.serve` (hyper) never did, and answered
 * about 1.25× the request rate. What `node:http2` did better: `kdig +https` sees 40–90 ms per
 * query on `Deno.serve` at low load (its small writes meet the client's delayed ACK) against
 * ~6 ms; curl and browsers are not affected the same way. A process that stays up wins.
 *
 * Certificate reload starts a second server on the same port (SO_REUSEPORT) with the new pair
 * and then drains the old one, so new connections get the new certificate and requests in
 * flight finish. Connection-level limits (`--max-connections`, per-IP caps, handshake timeout)
 * are not available through `Deno.serve`; the ACL answers 403 per request instead.
 *
 * @module
 */
import { cacheControl, type DohBindings } from "../http/app.ts";
import { wireRequest } from "../http/fast_path.ts";
import type { Logger } from "../log/mod.ts";
import type { Processor } from "../resolver/processor.ts";

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
  /** Requests from peers this rejects get 403 (ACL on the socket's address). */
  accept?: (address: string) => boolean;
  /** Share the port (SO_REUSEPORT): several threads, and certificate reload. */
  reusePort?: boolean;
  /**
   * Answers well-formed wire-format queries on `path` with `process` directly, without running
   * the app's router (the same answers, less work per query). Everything else goes to the app.
   */
  fast?: { process: Processor; path: string };
  /** Told about refused requests, for metrics. */
  onEvent?: (event: string) => void;
  logger?: Logger;
}

/** A running DoH listener. */
export interface DohListener {
  /** The bound address (the real port when 0 was asked for). */
  readonly addr: { hostname: string; port: number };
  /** True when serving HTTPS. */
  readonly tls: boolean;
  /** Requests being answered now. */
  readonly connections: number;
  /** New connections use this certificate; requests in flight finish on the old server. */
  setCertificate(cert: string, key: string): Promise<void>;
  /** Stops accepting and waits for requests in flight (at most `graceMs`, default 5 000 ms). */
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
  return addressFromHeader(request.headers.get(trustedProxyHeader), peer, trustedProxyHeader);
}

/**
 * The client address a trusted proxy header's `value` names (the last entry of
 * `x-forwarded-for`), or `peer` when the header is absent or empty. Both DoH listeners use it.
 */
export function addressFromHeader(
  value: string | null | undefined,
  peer: string,
  header: string,
): string {
  if (value === null || value === undefined) return peer;
  const entry = header.toLowerCase() === "x-forwarded-for" ? value.split(",").at(-1)! : value;
  return entry.trim() || peer;
}

const MEDIA_TYPE = "application/dns-message";

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
  let inFlight = 0;

  async function fastAnswer(request: Request, address: string): Promise<Response | undefined> {
    const fast = options.fast!;
    const url = request.url;
    const target = url.slice(url.indexOf("/", url.indexOf("//") + 2));
    let body: Uint8Array | undefined;
    if (request.method === "POST") {
      const type = (request.headers.get("content-type") ?? "").split(";")[0].trim();
      if (type.toLowerCase() !== MEDIA_TYPE) return undefined;
      const length = Number(request.headers.get("content-length") ?? NaN);
      if (!(length > 0 && length <= 65535)) return undefined; // chunked or odd: the app checks it
      body = new Uint8Array(await request.arrayBuffer());
      if (body.length !== length) return undefined;
    }
    const hit = wireRequest(request.method, target, MEDIA_TYPE, body, fast.path);
    if (!hit) {
      if (!body) return undefined;
      // The body was read: hand the app a request that still has it.
      const again = new Request(request.url, {
        method: request.method,
        headers: request.headers,
        body: body.slice(),
        signal: request.signal,
      });
      return await app.fetch(again, { remoteAddr: address });
    }
    const answer = await fast.process(hit.wire, {
      face: "doh",
      signal: request.signal,
      client: { address },
      tenant: hit.tenant,
    });
    if (answer === null) return new Response("not a DNS message", { status: 400 });
    return new Response(answer.slice(), {
      headers: { "content-type": MEDIA_TYPE, "cache-control": cacheControl(answer) },
    });
  }

  const handler = async (request: Request, info: Deno.ServeHandlerInfo<Deno.Addr>) => {
    inFlight++;
    try {
      const peer = info.remoteAddr.transport === "tcp" ? info.remoteAddr.hostname : "";
      const address = clientAddressOf(request, peer, trustedProxyHeader);
      if (options.accept && !options.accept(peer)) {
        options.onEvent?.("refused");
        return new Response("forbidden", { status: 403 });
      }
      if (options.fast && (request.method === "GET" || request.method === "POST")) {
        const fast = await fastAnswer(request, address);
        if (fast) return fast;
      }
      return await app.fetch(request, { remoteAddr: address });
    } finally {
      inFlight--;
    }
  };
  const onError = (error: unknown) => {
    logger?.error("doh: request failed", { error: (error as Error)?.message });
    return new Response("internal error", { status: 500 });
  };

  let reusePort = options.reusePort ?? false;
  const start = (port: number, cert?: string, key?: string): Deno.HttpServer<Deno.NetAddr> => {
    const serve = () => {
      const common = { hostname: options.hostname, port, onListen: () => {}, onError, reusePort };
      return tls
        ? Deno.serve({ ...common, cert: cert!, key: key! }, handler)
        : Deno.serve(common, handler);
    };
    try {
      return serve();
    } catch (error) {
      // SO_REUSEPORT needs Deno's --unstable-net (deno.json turns it on); without it, serve
      // anyway and say what is lost.
      if (!reusePort || !/unstable-net/.test((error as Error).message)) throw error;
      logger?.warn("doh: no SO_REUSEPORT without --unstable-net; certificate reload disabled");
      reusePort = false;
      return serve();
    }
  };

  let server = start(options.port, options.cert, options.key);
  const bound = server.addr;

  async function drain(s: Deno.HttpServer<Deno.NetAddr>, graceMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([s.shutdown(), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    addr: { hostname: bound.hostname, port: bound.port },
    tls,
    get connections() {
      return inFlight;
    },
    async setCertificate(cert: string, key: string) {
      if (!tls) return;
      if (!reusePort) {
        throw new Error("doh: certificate reload needs the port shared (--unstable-net)");
      }
      const old = server;
      server = start(bound.port, cert, key);
      await drain(old, 5_000);
    },
    async shutdown(graceMs = 5_000) {
      await drain(server, graceMs);
    },
  };
}
