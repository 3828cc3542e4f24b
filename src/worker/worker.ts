/**
 * The Worker's fetch handler: the Deno edge's DoH app (`createDohApp`) over the same resolver
 * pipeline, configured from the Worker's env, built once per isolate and rebuilt only when the
 * env object changes. A bad configuration never throws: every request gets a 500 whose one-line
 * body names the key, and the problem is logged once.
 *
 * @module
 */
import type { Hono } from "hono";
import { createDohApp, type DohEnv } from "../http/app.ts";
import { createLogger } from "../log/mod.ts";
import { createHandler } from "../resolver/engine.ts";
import { createProcessor } from "../resolver/processor.ts";
import { parseWorkerConfig } from "./config.ts";
import { workerLandingText } from "./landing.ts";
import { buildWorkerUpstream, type WorkerUpstreamDeps } from "./upstreams.ts";

/** The Worker's env: `[vars]`, secrets and other bindings. Only `DOTBRIDGE_*` entries are read. */
export type WorkerEnv = Readonly<Record<string, unknown>>;

/** The part of the Workers `ExecutionContext` this handler accepts (and does not need). */
export interface WorkerContext {
  waitUntil(promise: Promise<unknown>): void;
}

/** Runtime pieces of {@linkcode createWorker}; the defaults are the Worker's own. */
export interface WorkerDeps extends WorkerUpstreamDeps {
  /** Where log lines go. Default `console.error` (workerd's log, `wrangler tail`). */
  log?: (line: string) => void;
}

/** A Worker module's default export. */
export interface DotbridgeWorker {
  fetch(request: Request, env: WorkerEnv, ctx?: WorkerContext): Promise<Response>;
}

type State =
  | { readonly ok: true; readonly app: Hono<DohEnv>; readonly jsonApi: boolean }
  | { readonly ok: false; readonly message: string };

const DOH_PATH = "/dns-query";

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

function build(env: WorkerEnv, deps: WorkerDeps, log: (line: string) => void): State {
  try {
    const config = parseWorkerConfig(env);
    const logger = createLogger({ level: config.logLevel, format: config.logFormat, sink: log });
    if (config.ignored.length > 0) {
      logger.warn("worker: ignoring keys that have no meaning in a Worker", {
        keys: config.ignored.join(","),
      });
    }
    if (config.unknown.length > 0) {
      logger.warn("worker: ignoring unknown keys", { keys: config.unknown.join(",") });
    }
    const upstream = buildWorkerUpstream(config, deps, logger);
    const handler = createHandler({
      upstream,
      queryTimeoutMs: config.queryTimeoutMs,
      logger,
      privacy: { keepClientSubnet: config.keepClientSubnet },
    });
    const process = createProcessor({ handler, logger, logQueries: config.logQueries });
    const app = createDohApp({
      process,
      path: DOH_PATH,
      jsonApi: config.jsonApi,
      logger,
      health: () => ({ edge: "cloudflare-workers" }),
    });
    logger.info("worker configured", {
      upstreams: config.upstreams.length,
      strategy: config.upstreamStrategy,
      jsonApi: config.jsonApi,
    });
    return { ok: true, app, jsonApi: config.jsonApi };
  } catch (e) {
    const message = `configuration error: ${oneLine((e as Error)?.message ?? String(e))}`;
    log(`dotbridge: ${message}`);
    return { ok: false, message };
  }
}

/**
 * Creates the Worker. `src/worker/index.ts` exports `createWorker()` as the module's default;
 * tests call it with their own `fetch`, `connect` and log sink.
 *
 * Routes are the DoH app's (`/dns-query` GET and POST, the JSON API when on, `/health`), plus a
 * Worker landing page at `/`. The client address for the pipeline is `CF-Connecting-IP`.
 *
 * @example
 * ```ts
 * export default createWorker();
 * // or, in a test:
 * const worker = createWorker({ fetch: localFetch, log: (l) => lines.push(l) });
 * const res = await worker.fetch(new Request("http://w/health"), { DOTBRIDGE_UPSTREAM: url });
 * ```
 */
export function createWorker(deps: WorkerDeps = {}): DotbridgeWorker {
  const log = deps.log ?? ((line: string) => console.error(line));
  // Per isolate. The previous state is dropped, not closed, when the env changes: requests still
  // running on it keep their upstream, and it holds no connections between requests.
  let cached: { env: WorkerEnv; state: State } | undefined;

  function stateFor(env: WorkerEnv): State {
    if (cached?.env !== env) cached = { env, state: build(env, deps, log) };
    return cached.state;
  }

  return {
    fetch(request, env) {
      const state = stateFor(env ?? {});
      if (!state.ok) {
        return Promise.resolve(
          new Response(state.message + "\n", {
            status: 500,
            headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
          }),
        );
      }
      const url = new URL(request.url);
      if (url.pathname === "/" && (request.method === "GET" || request.method === "HEAD")) {
        const text = workerLandingText(new URL(DOH_PATH, url).href, state.jsonApi);
        const body = request.method === "HEAD" ? null : text;
        return Promise.resolve(
          new Response(body, { headers: { "content-type": "text/plain; charset=UTF-8" } }),
        );
      }
      const remoteAddr = request.headers.get("cf-connecting-ip") ?? undefined;
      return Promise.resolve(state.app.fetch(request, { remoteAddr }));
    },
  };
}
