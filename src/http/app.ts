/**
 * The DoH face (RFC 8484) as a hono app: a pure function of its dependencies, so the same app
 * runs in a Worker, behind the Deno DoH face's own servers (`face.ts`: every route but
 * wire-format DoH), and in tests through `app.request()`.
 *
 * Routes: `GET|POST <path>[/<tenant>]` (wire format through the shared DoH request path,
 * `doh_request.ts` and `doh_response.ts`, and the JSON API when enabled), `GET /health`
 * (liveness), `GET /ready` (readiness, when given), `GET /metrics` and `GET /status` (when
 * given), `GET /` (a short text page); anything else on `<path>` is 405, elsewhere 404.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import type { Answer } from "../dns/answer.ts";
import { MAX_MESSAGE_SIZE } from "../dns/constants.ts";
import type { Logger } from "../log/mod.ts";
import type { Processor } from "../resolver/processor.ts";
import type { QueryContext } from "../pipeline/types.ts";
import { readStreamCapped } from "../bytes/read_capped.ts";
import { DOH_PATH, parseDohRequest, targetOf } from "./doh_request.ts";
import {
  answerDohQuery,
  cacheControl,
  errorReply,
  INTERNAL_ERROR,
  requestErrorReply,
  toResponse,
} from "./doh_response.ts";
import { answerToJson, buildJsonQuery, DNS_JSON } from "./json.ts";
import { type LandingInfo, landingText } from "./landing.ts";
import { errorText } from "./redact.ts";
import { readyText, STATUS_PAGE_CSP } from "./status_page.ts";

/**
 * What the runtime edge passes as the app's env (`app.fetch(req, env)`): the Deno listener sets
 * `remoteAddr` to the client's address (the socket peer, or the trusted proxy header's value).
 */
export interface DohBindings {
  remoteAddr?: string;
}

/** The hono environment of the DoH app. */
export interface DohEnv {
  Bindings: DohBindings;
}

/** Dependencies of {@linkcode createDohApp}. */
export interface DohAppDeps {
  /** The face-side processor; called with `{ face: "doh", signal, client }`. */
  process: Processor;
  /** The DoH path. Default `/dns-query`. */
  path?: string;
  /** Largest query accepted, in bytes; larger gets 413. Default (and cap) 65535. */
  maxQuerySize?: number;
  /** Serve the JSON API (`application/dns-json`, `?name=&type=`) on the same path. Default true. */
  jsonApi?: boolean;
  /** The client's address for the query context. Default: `c.env.remoteAddr`. */
  clientAddress?: (c: Context<DohEnv>) => string | undefined;
  /**
   * What `GET /` tells visitors; a function is called per request. `dohUrl` and `dotHost`
   * default to the request's URL and host name.
   */
  landing?: LandingInfo | (() => LandingInfo);
  /** Extra fields for `GET /health`. */
  health?: () => Record<string, unknown>;
  /** Serves `GET /metrics` (Prometheus text) when given. */
  metrics?: () => string;
  /** Serves `GET /ready`: 200 while true, 503 while false. Unset: not served. */
  ready?: () => boolean;
  /** Serves `GET /status`, this HTML page (the status page), when given. */
  status?: string;
  /** Where unexpected failures are reported. */
  logger?: Logger;
}

const NOT_FOUND = errorReply(404, "not found");

function defaultClientAddress(c: Context<DohEnv>): string | undefined {
  const address = c.env?.remoteAddr;
  return typeof address === "string" && address !== "" ? address : undefined;
}

/**
 * Creates the DoH app.
 *
 * Status codes: 200 with the DNS answer (DNS-level errors such as FORMERR or SERVFAIL are
 * answers, RFC 8484 §4.2.1); 400 for a missing or undecodable `dns` parameter, an empty body,
 * bytes that are not a DNS message, or a bad JSON API name/type; 413 over `maxQuerySize`; 415 for
 * a POST that is not `application/dns-message`; 405 (with `Allow: GET, POST`) for other methods
 * on the path; 404 elsewhere; 500 if the processor throws. `Cache-Control: max-age` is the
 * answer's smallest TTL (RFC 8484 §5.1), 0 when it has none.
 *
 * @example
 * ```ts
 * const app = createDohApp({ process: createProcessor({ handler }) });
 * Deno.serve((req, info) => app.fetch(req, { remoteAddr: info.remoteAddr.hostname }));
 * ```
 */
export function createDohApp(deps: DohAppDeps): Hono<DohEnv> {
  const path = deps.path ?? DOH_PATH;
  const jsonApi = deps.jsonApi ?? true;
  const options = {
    path,
    maxQuerySize: Math.min(deps.maxQuerySize ?? MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE),
    jsonApi,
  };
  const clientAddress = deps.clientAddress ?? defaultClientAddress;
  const app = new Hono<DohEnv>();

  function queryContext(c: Context<DohEnv>, tenant: string | undefined): QueryContext {
    const address = clientAddress(c);
    return {
      face: "doh",
      signal: c.req.raw.signal,
      client: address === undefined ? undefined : { address },
      tenant,
    };
  }

  async function answerJson(c: Context<DohEnv>, tenant: string | undefined): Promise<Response> {
    const built = buildJsonQuery({
      name: c.req.query("name"),
      type: c.req.query("type"),
      do: c.req.query("do"),
      cd: c.req.query("cd"),
    });
    const headers = { "content-type": DNS_JSON };
    if (!built.ok) return c.body(JSON.stringify({ error: built.error }), 400, headers);
    let answer: Answer | null;
    let body: string;
    try {
      answer = await deps.process(built.wire, queryContext(c, tenant));
      if (answer === null) throw new Error("processor dropped a well-formed query");
      body = JSON.stringify(answerToJson(answer));
    } catch (e) {
      // A client that went away (its signal aborted) chose to: not an error.
      if (c.req.raw.signal.aborted) {
        deps.logger?.debug("doh: client went away", { error: errorText(e) });
      } else deps.logger?.error("doh: JSON query failed", { error: errorText(e) });
      return c.body(JSON.stringify({ error: "internal error" }), 500, headers);
    }
    return c.body(body, 200, { ...headers, "cache-control": cacheControl(answer) });
  }

  // HEAD is served as GET (hono runs the GET route and drops the body).
  const doh = async (c: Context<DohEnv>): Promise<Response> => {
    const raw = c.req.raw;
    const request = await parseDohRequest({
      method: raw.method,
      target: targetOf(raw.url),
      contentType: raw.headers.get("content-type"),
      contentLength: raw.headers.get("content-length"),
      accept: raw.headers.get("accept"),
      body: (limit) => readStreamCapped(raw.body, limit),
    }, options);
    switch (request.kind) {
      case "query":
        return toResponse(
          await answerDohQuery(deps.process, request, queryContext(c, request.tenant), deps.logger),
        );
      case "json":
        return await answerJson(c, request.tenant);
      case "error":
        return toResponse(requestErrorReply(request));
      case "elsewhere":
        return toResponse(NOT_FOUND);
    }
  };

  // `<path>/<tenant>` selects a tenant policy by id or name; the resolver's tenant router decides
  // (an unknown tenant, or one the client may not use, gets the same REFUSED).
  for (const route of [path, `${path}/:tenant{[A-Za-z0-9-]{1,63}}`]) app.all(route, doh);

  app.get("/health", (c) => c.json({ status: "ok", ...deps.health?.() }));

  if (deps.metrics) {
    const render = deps.metrics;
    app.get(
      "/metrics",
      (c) => c.body(render(), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }),
    );
  }

  if (deps.ready) {
    const ready = deps.ready;
    app.get("/ready", (c) => {
      const ok = ready();
      return c.text(readyText(ok), ok ? 200 : 503, {
        "cache-control": "no-store",
      });
    });
  }

  if (deps.status !== undefined) {
    const page = deps.status;
    app.get("/status", (c) =>
      c.body(page, 200, {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": STATUS_PAGE_CSP,
      }));
  }

  app.get("/", (c) => {
    const info = typeof deps.landing === "function" ? deps.landing() : deps.landing ?? {};
    const url = new URL(path, c.req.url);
    const dohUrl = info.dohUrl ?? url.href;
    const dotHost = info.dotHost ?? url.hostname.replace(/^\[(.*)\]$/, "$1");
    return c.text(landingText({ jsonApi, ...info, dohUrl, dotHost }));
  });

  app.notFound(() => toResponse(NOT_FOUND));
  app.onError((e, c) => {
    if (c.req.raw.signal.aborted) {
      deps.logger?.debug("doh: client went away", { error: errorText(e) });
    } else deps.logger?.error("doh: request failed", { error: errorText(e) });
    return toResponse(INTERNAL_ERROR);
  });
  return app;
}
