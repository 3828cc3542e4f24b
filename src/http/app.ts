/**
 * The DoH face (RFC 8484) as a hono app: a pure function of its dependencies, so the same app
 * runs under `Deno.serve`, in a Worker, and in tests through `app.request()`.
 *
 * Routes: `GET|POST <path>` (wire format, and the JSON API when enabled), `GET /health`,
 * `GET /` (a short text page); anything else on `<path>` is 405, elsewhere 404.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { MAX_MESSAGE_SIZE } from "../dns/constants.ts";
import { minAnswerTtl } from "../dns/ttl.ts";
import type { Logger } from "../log/mod.ts";
import type { Processor } from "../resolver/processor.ts";
import type { QueryContext } from "../resolver/types.ts";
import { answerToJson, buildJsonQuery, DNS_JSON } from "./json.ts";
import { type LandingInfo, landingText } from "./landing.ts";
import { readStreamCapped } from "../bytes/read_capped.ts";

/** The media type of RFC 8484 bodies. */
export const DNS_MESSAGE = "application/dns-message";

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
  /** Where unexpected failures are reported. */
  logger?: Logger;
}

const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

function defaultClientAddress(c: Context<DohEnv>): string | undefined {
  const address = c.env?.remoteAddr;
  return typeof address === "string" && address !== "" ? address : undefined;
}

function mediaType(header: string | undefined): string {
  return (header ?? "").split(";")[0].trim().toLowerCase();
}

function asBody(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer
    ? bytes as Uint8Array<ArrayBuffer>
    : new Uint8Array(bytes);
}

/** RFC 8484 §5.1: `max-age` is the smallest TTL in the answer (0 when there is none). */
export function cacheControl(answer: Uint8Array): string {
  return `max-age=${minAnswerTtl(answer) ?? 0}`;
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
  const path = deps.path ?? "/dns-query";
  const maxQuerySize = Math.min(deps.maxQuerySize ?? MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE);
  const maxEncoded = Math.ceil(maxQuerySize / 3) * 4;
  const jsonApi = deps.jsonApi ?? true;
  const clientAddress = deps.clientAddress ?? defaultClientAddress;
  const app = new Hono<DohEnv>();

  function queryContext(c: Context<DohEnv>): QueryContext {
    const address = clientAddress(c);
    const tenant = c.req.param("tenant")?.toLowerCase();
    return {
      face: "doh",
      signal: c.req.raw.signal,
      client: address === undefined ? undefined : { address },
      tenant: tenant || undefined,
    };
  }

  async function answerWire(c: Context<DohEnv>, query: Uint8Array): Promise<Response> {
    if (query.length === 0) return c.text("empty DNS query", 400);
    if (query.length > maxQuerySize) {
      return c.text(`DNS query over ${maxQuerySize} bytes`, 413);
    }
    let answer: Uint8Array | null;
    try {
      answer = await deps.process(query, queryContext(c));
    } catch (e) {
      deps.logger?.error("doh: processing failed", { error: (e as Error)?.message });
      return c.text("internal error", 500);
    }
    if (answer === null) return c.text("not a DNS message", 400);
    return c.body(asBody(answer), 200, {
      "content-type": DNS_MESSAGE,
      "cache-control": cacheControl(answer),
    });
  }

  async function answerJson(c: Context<DohEnv>): Promise<Response> {
    const built = buildJsonQuery({
      name: c.req.query("name"),
      type: c.req.query("type"),
      do: c.req.query("do"),
      cd: c.req.query("cd"),
    });
    const headers = { "content-type": DNS_JSON };
    if (!built.ok) return c.body(JSON.stringify({ error: built.error }), 400, headers);
    let answer: Uint8Array | null;
    let body: string;
    try {
      answer = await deps.process(built.wire, queryContext(c));
      if (answer === null) throw new Error("processor dropped a well-formed query");
      body = JSON.stringify(answerToJson(answer));
    } catch (e) {
      deps.logger?.error("doh: JSON query failed", { error: (e as Error)?.message });
      return c.body(JSON.stringify({ error: "internal error" }), 500, headers);
    }
    return c.body(body, 200, { ...headers, "cache-control": cacheControl(answer) });
  }

  // HEAD is served by the GET routes (hono runs GET and drops the body).
  const getQuery = (c: Context<DohEnv>) => {
    const dns = c.req.query("dns");
    if (dns === undefined) {
      const wantsJson = c.req.query("name") !== undefined ||
        (c.req.header("accept") ?? "").toLowerCase().includes(DNS_JSON);
      if (jsonApi && wantsJson) return answerJson(c);
      return c.text("missing dns parameter", 400);
    }
    if (dns.length > maxEncoded + 2) return c.text(`DNS query over ${maxQuerySize} bytes`, 413);
    if (!BASE64URL.test(dns)) return c.text("dns parameter is not base64url", 400);
    let query: Uint8Array;
    try {
      query = Uint8Array.fromBase64(dns, { alphabet: "base64url" });
    } catch {
      return c.text("dns parameter is not base64url", 400);
    }
    return answerWire(c, query);
  };

  const postQuery = async (c: Context<DohEnv>) => {
    if (mediaType(c.req.header("content-type")) !== DNS_MESSAGE) {
      return c.text(`content type must be ${DNS_MESSAGE}`, 415);
    }
    const declared = c.req.header("content-length");
    if (declared !== undefined && Number(declared) > maxQuerySize) {
      return c.text(`DNS query over ${maxQuerySize} bytes`, 413);
    }
    const body = await readStreamCapped(c.req.raw.body, maxQuerySize);
    if (body === undefined) return c.text(`DNS query over ${maxQuerySize} bytes`, 413);
    return answerWire(c, body);
  };

  // `<path>/<tenant>` selects a tenant policy (unknown tenants get REFUSED from the resolver).
  for (const route of [path, `${path}/:tenant{[A-Za-z0-9-]{1,63}}`]) {
    app.get(route, getQuery);
    app.post(route, postQuery);
    app.all(route, (c) => c.text("method not allowed", 405, { allow: "GET, POST" }));
  }

  app.get("/health", (c) => c.json({ status: "ok", ...deps.health?.() }));

  if (deps.metrics) {
    const render = deps.metrics;
    app.get(
      "/metrics",
      (c) => c.body(render(), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }),
    );
  }

  app.get("/", (c) => {
    const info = typeof deps.landing === "function" ? deps.landing() : deps.landing ?? {};
    const url = new URL(path, c.req.url);
    const dohUrl = info.dohUrl ?? url.href;
    const dotHost = info.dotHost ?? url.hostname.replace(/^\[(.*)\]$/, "$1");
    return c.text(landingText({ jsonApi, ...info, dohUrl, dotHost }));
  });

  app.notFound((c) => c.text("not found", 404));
  app.onError((e, c) => {
    deps.logger?.error("doh: request failed", { error: e.message });
    return c.text("internal error", 500);
  });
  return app;
}
