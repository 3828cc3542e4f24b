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
import { createLogger, type Logger, type LogLevel } from "../log/mod.ts";
import { Acl, aclMiddleware } from "../resolver/acl.ts";
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

/** Where a log line goes, with its level. */
export type WorkerLogSink = (level: LogLevel, line: string) => void;

/** Runtime pieces of {@linkcode createWorker}; the defaults are the Worker's own. */
export interface WorkerDeps extends WorkerUpstreamDeps {
  /**
   * Where log lines go. Default: the console method of the line's level (`console.debug`, `log`,
   * `warn`, `error`), so Workers Logs and `wrangler tail` show the right level.
   */
  log?: WorkerLogSink;
}

/** A Worker module's default export. */
export interface DotbridgeWorker {
  fetch(request: Request, env: WorkerEnv, ctx?: WorkerContext): Promise<Response>;
}

type State =
  | {
    readonly ok: true;
    readonly app: Hono<DohEnv>;
    readonly jsonApi: boolean;
    /** An allow or deny list is set: requests without a client address are refused. */
    readonly acl: boolean;
  }
  | { readonly ok: false; readonly message: string };

const DOH_PATH = "/dns-query";

const consoleSink: WorkerLogSink = (level, line) => {
  if (level === "debug") console.debug(line);
  else if (level === "info") console.log(line);
  else if (level === "warn") console.warn(line);
  else console.error(line);
};

/** A logger whose lines go to `sink` with their level. */
function levelLogger(
  options: { level: LogLevel; format: "logfmt" | "json" },
  sink: WorkerLogSink,
): Logger {
  const at = (level: LogLevel) =>
    createLogger({ ...options, sink: (line) => sink(level, line) })[level];
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

function build(env: WorkerEnv, deps: WorkerDeps, log: WorkerLogSink): State {
  try {
    const config = parseWorkerConfig(env);
    const logger = levelLogger({ level: config.log.logLevel, format: config.log.logFormat }, log);
    if (config.ignored.length > 0) {
      logger.warn("worker: ignoring keys a Worker does not use", {
        keys: config.ignored.join(","),
      });
    }
    if (config.unknown.length > 0) {
      logger.warn("worker: ignoring unknown keys", { keys: config.unknown.join(",") });
    }
    const upstream = buildWorkerUpstream(config.upstream, deps, logger);
    const acl = new Acl({ allow: config.resolver.allow, deny: config.resolver.deny });
    const handler = createHandler({
      upstream,
      queryTimeoutMs: config.resolver.queryTimeoutMs,
      logger,
      privacy: { keepClientSubnet: config.resolver.keepClientSubnet },
      middlewares: [aclMiddleware(acl)],
    });
    const process = createProcessor({ handler, logger, logQueries: config.log.logQueries });
    const app = createDohApp({
      process,
      path: DOH_PATH,
      jsonApi: config.doh.jsonApi,
      logger,
      health: () => ({ edge: "cloudflare-workers" }),
    });
    logger.info("worker configured", {
      upstreams: config.upstream.upstreams.length,
      strategy: config.upstream.upstreamStrategy,
      jsonApi: config.doh.jsonApi,
    });
    return { ok: true, app, jsonApi: config.doh.jsonApi, acl: !acl.open };
  } catch (e) {
    const message = `configuration error: ${oneLine((e as Error)?.message ?? String(e))}`;
    log("error", `dotbridge: ${message}`);
    return { ok: false, message };
  }
}

/**
 * Creates the Worker. `src/worker/index.ts` exports `createWorker()` as the module's default;
 * tests call it with their own `fetch`, `connect` and log sink.
 *
 * Routes are the DoH app's (`/dns-query` GET and POST, the JSON API when on, `/health`), plus a
 * Worker landing page at `/`. The client address for the pipeline (ACL, query log) is
 * `CF-Connecting-IP`; with `DOTBRIDGE_ALLOW`/`DOTBRIDGE_DENY` set, a DoH request without it is 403.
 *
 * @example
 * ```ts
 * export default createWorker();
 * // or, in a test:
 * const worker = createWorker({ fetch: localFetch, log: (_level, l) => lines.push(l) });
 * const res = await worker.fetch(new Request("http://w/health"), { DOTBRIDGE_UPSTREAM: url });
 * ```
 */
export function createWorker(deps: WorkerDeps = {}): DotbridgeWorker {
  const log = deps.log ?? consoleSink;
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
      if (state.acl && !remoteAddr && url.pathname === DOH_PATH) {
        // Cloudflare always sets it; without it the ACL could not tell who is asking.
        return Promise.resolve(
          new Response("no client address (CF-Connecting-IP)\n", {
            status: 403,
            headers: { "content-type": "text/plain; charset=utf-8" },
          }),
        );
      }
      return Promise.resolve(state.app.fetch(request, { remoteAddr }));
    },
  };
}
