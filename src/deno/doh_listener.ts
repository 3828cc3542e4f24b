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
import { MAX_MESSAGE_SIZE } from "../dns/constants.ts";
import type { DohBindings } from "../http/app.ts";
import { type DohRequestOptions, parseDohRequest, targetOf } from "../http/doh_request.ts";
import {
  answerDohQuery,
  errorReply,
  INTERNAL_ERROR,
  requestErrorReply,
  toResponse,
} from "../http/doh_response.ts";
import type { Logger } from "../log/mod.ts";
import type { Processor } from "../resolver/processor.ts";
import { readStreamCapped } from "../bytes/read_capped.ts";

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
   * Answers wire-format requests on `path` (queries and their errors) with `process` directly,
   * through the same request path as the app but without its router (the same answers, less
   * work per query). The JSON API and other routes go to the app. `maxQuerySize` must be the
   * app's (default 65535).
   */
  fast?: DohFastPath;
  /** Told about refused requests, for metrics. */
  onEvent?: (event: string) => void;
  logger?: Logger;
}

/** What a listener needs to answer wire-format DoH requests without the app. */
export interface DohFastPath {
  process: Processor;
  path: string;
  maxQuerySize?: number;
}

/**
 * The request options of a fast path. A JSON API request is always recognised, and handed to the
 * app, which answers it or (with the JSON API off) says the `dns` parameter is missing.
 */
export function fastPathOptions(fast: DohFastPath): DohRequestOptions {
  return { path: fast.path, maxQuerySize: fast.maxQuerySize ?? MAX_MESSAGE_SIZE, jsonApi: true };
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

  const fast = options.fast;
  const fastOptions = fast && fastPathOptions(fast);

  async function fastAnswer(request: Request, address: string): Promise<Response | undefined> {
    // Getters: a GET with ?dns= never reads a header, and Deno builds `request.headers` only
    // when it is first touched.
    const parsed = await parseDohRequest({
      method: request.method,
      target: targetOf(request.url),
      get contentType() {
        return request.headers.get("content-type");
      },
      get contentLength() {
        return request.headers.get("content-length");
      },
      get accept() {
        return request.headers.get("accept");
      },
      body: (limit) => readStreamCapped(request.body, limit),
    }, fastOptions!);
    if (parsed.kind === "error") {
      return toResponse(requestErrorReply(parsed), request.method === "HEAD");
    }
    if (parsed.kind !== "query") return undefined; // the JSON API and other routes: the app's
    const reply = await answerDohQuery(fast!.process, parsed, {
      face: "doh",
      signal: request.signal,
      client: { address },
      tenant: parsed.tenant,
    }, logger);
    return toResponse(reply, request.method === "HEAD");
  }

  const handler = async (request: Request, info: Deno.ServeHandlerInfo<Deno.Addr>) => {
    inFlight++;
    try {
      const peer = info.remoteAddr.transport === "tcp" ? info.remoteAddr.hostname : "";
      const address = clientAddressOf(request, peer, trustedProxyHeader);
      if (options.accept && !options.accept(peer)) {
        options.onEvent?.("refused");
        return toResponse(errorReply(403, "forbidden"));
      }
      if (fast) {
        const answered = await fastAnswer(request, address);
        if (answered) return answered;
      }
      return await app.fetch(request, { remoteAddr: address });
    } finally {
      inFlight--;
    }
  };
  const onError = (error: unknown) => {
    logger?.error("doh: request failed", { error: (error as Error)?.message });
    return toResponse(INTERNAL_ERROR);
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
