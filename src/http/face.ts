/**
 * The DoH face's request handler, shared by the bridge's own HTTP/2 and HTTP/1.1 servers
 * (`src/h2/server.ts`, `src/h1/server.ts`): wire-format requests on the DoH path (queries and
 * their errors) go through the DoH request path (`doh_request.ts`, `doh_response.ts`) straight
 * to the processor, with no `Request` object built; everything else (the JSON API, the landing
 * page, `/health`, `/metrics`) goes to the hono app as a `Request`.
 *
 * Runtime-free: the edge passes each request with its socket peer's address, and whether that
 * peer is a trusted proxy whose header names the client (`--trusted-proxy-from`).
 *
 * @module
 */
import { MAX_MESSAGE_SIZE } from "../dns/constants.ts";
import type { Logger } from "../log/mod.ts";
import type { Processor } from "../resolver/processor.ts";
import type { DohBindings } from "./app.ts";
import {
  type DohRequestOptions,
  type DohRequestParts,
  parseDohRequest,
  tooLarge,
} from "./doh_request.ts";
import { answerDohQuery, errorReply, INTERNAL_ERROR, requestErrorReply } from "./doh_response.ts";
import {
  headerOf,
  joinedHeaderOf,
  type ServerReply,
  type ServerRequest,
} from "../serve/exchange.ts";
import { errorText } from "./redact.ts";
import type { QueryContext } from "../pipeline/types.ts";

/** The part of a hono app the face needs. */
export interface FetchApp {
  fetch(request: Request, env: DohBindings): Response | Promise<Response>;
}

/** What the face needs to answer wire-format DoH requests without the app. */
export interface DohFastPath {
  process: Processor;
  path: string;
  /** Must be the app's (default 65 535). */
  maxQuerySize?: number;
}

/** Options of {@linkcode dohFaceHandler}. */
export interface DohFaceOptions {
  app: FetchApp;
  fast: DohFastPath;
  /**
   * A request header set by a trusted reverse proxy that carries the client's address, e.g.
   * `x-forwarded-for` or `x-real-ip`; see {@linkcode addressFromHeader}. Read only on requests
   * whose peer the edge marks as a trusted proxy; from any other peer it is ignored.
   */
  trustedProxyHeader?: string;
  logger?: Logger;
}

/**
 * Answers one request from `peer` (the socket's address, or the PROXY protocol header's). With
 * `forwarder` true the peer is a trusted proxy, and the request's client is the one its
 * {@linkcode DohFaceOptions.trustedProxyHeader} names; otherwise the peer is the client.
 */
export type DohFaceHandler = (
  request: ServerRequest,
  peer: string,
  forwarder?: boolean,
) => Promise<ServerReply>;

/**
 * The request options of a fast path. A JSON API request is always recognised, and handed to the
 * app, which answers it or (with the JSON API off) says the `dns` parameter is missing.
 */
export function fastPathOptions(fast: DohFastPath): DohRequestOptions {
  return { path: fast.path, maxQuerySize: fast.maxQuerySize ?? MAX_MESSAGE_SIZE, jsonApi: true };
}

/** The reply the servers send for a body over the fast path's cap (before reading it). */
export function tooLargeReply(fast: DohFastPath): ServerReply {
  return requestErrorReply(tooLarge(fast.maxQuerySize ?? MAX_MESSAGE_SIZE));
}

/**
 * The client address a trusted proxy header names, given `value`, all its field lines joined
 * ({@linkcode joinedHeaderOf}): the last, right-most entry, the one the proxy next to us
 * appended, which a client cannot forge (a client's own `x-forwarded-for` lines come before the
 * proxy's, whether the proxy extends the last line or appends a line of its own as HAProxy's
 * `option forwardfor` does). A single-valued header (`x-real-ip`) is its one entry. `peer` when
 * the header is absent or its last entry empty.
 *
 * @example
 * ```ts
 * addressFromHeader("198.51.100.7, 192.0.2.1", "127.0.0.1"); // "192.0.2.1"
 * ```
 */
export function addressFromHeader(value: string | undefined, peer: string): string {
  if (value === undefined) return peer;
  return value.slice(value.lastIndexOf(",") + 1).trim() || peer;
}

const EMPTY = new Uint8Array(0);
/** The answer to an authority no URL can hold (the servers check its syntax; URLs want more). */
const BAD_AUTHORITY: ServerReply = errorReply(400, "malformed :authority or Host");

/**
 * A DoH query's context: the request's signal read through, so the server makes it only if the
 * resolver asks (a cache hit does not).
 */
class DohContext implements QueryContext {
  readonly face: "doh";
  readonly client: { readonly address: string };
  readonly tenant: string | undefined;
  readonly #request: ServerRequest;

  constructor(request: ServerRequest, address: string, tenant: string | undefined) {
    this.face = "doh";
    this.client = { address };
    this.tenant = tenant;
    this.#request = request;
  }

  get signal(): AbortSignal {
    return this.#request.signal;
  }
}

/**
 * A request as the DoH request path reads it; header fields are looked up only when asked for (a
 * GET with `?dns=` never asks). A class rather than an object literal with getters: cheaper to
 * make once per request.
 */
class RequestParts implements DohRequestParts {
  readonly method: string;
  readonly target: string;
  readonly body: Uint8Array | undefined;
  readonly #request: ServerRequest;

  constructor(request: ServerRequest) {
    this.method = request.method;
    this.target = request.path;
    this.body = request.body;
    this.#request = request;
  }

  get contentType(): string | undefined {
    return headerOf(this.#request, "content-type");
  }

  get accept(): string | undefined {
    return headerOf(this.#request, "accept");
  }
}

/**
 * Creates the handler.
 *
 * @example
 * ```ts
 * const handle = dohFaceHandler({ app, fast: { process, path: "/dns-query" } });
 * const reply = await handle(request, "192.0.2.1");
 * // Behind a trusted proxy at 127.0.0.1, with trustedProxyHeader: "x-forwarded-for":
 * const proxied = await handle(request, "127.0.0.1", true);
 * ```
 */
export function dohFaceHandler(options: DohFaceOptions): DohFaceHandler {
  const { app, fast, logger } = options;
  const proxyHeader = options.trustedProxyHeader?.toLowerCase();
  const requestOptions = fastPathOptions(fast);

  // Not an async function: the DoH fast path (every RFC 8484 query) makes no frame of its own.
  return (request, peer, forwarder = false) => {
    try {
      const address = proxyHeader && forwarder
        ? addressFromHeader(joinedHeaderOf(request, proxyHeader), peer)
        : peer;
      // The server read the body under its cap already, so this never waits.
      const parsed = parseDohRequest(new RequestParts(request), requestOptions);
      if (parsed.kind === "error") return Promise.resolve(requestErrorReply(parsed));
      if (parsed.kind === "query") {
        return answerDohQuery(
          fast.process,
          parsed,
          new DohContext(request, address, parsed.tenant),
          logger,
        );
      }
      return viaApp(request, address);
    } catch (error) {
      return Promise.reject(error);
    }
  };

  /** The JSON API and the other routes: the app's, as a Request. */
  async function viaApp(request: ServerRequest, address: string): Promise<ServerReply> {
    // The URL takes the authority: one it cannot parse (`xn--a`, `256.1.1.1`) is the client's fault, a 400.
    const origin = `https://${request.authority || "localhost"}`;
    if (!URL.canParse(origin)) return BAD_AUTHORITY;
    try {
      const response = await app.fetch(
        new Request(`${origin}${request.path}`, {
          method: request.method,
          headers: request.headers as [string, string][],
          body: request.body?.length ? request.body.slice() : undefined,
          signal: request.signal,
        }),
        { remoteAddr: address },
      );
      const body = request.method === "HEAD" ? EMPTY : new Uint8Array(await response.arrayBuffer());
      return { status: response.status, headers: [...response.headers], body };
    } catch (error) {
      if (request.signal.aborted) throw error;
      logger?.error("doh: request failed", { error: errorText(error) });
      return INTERNAL_ERROR;
    }
  }
}
