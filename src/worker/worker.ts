/**
 * The Worker's fetch handler: the Deno edge's DoH app (`createDohApp`) over the same resolver
 * (`buildResolver`: ACL, rate limit, tenants by DoH path, local records, cache, privacy rewrite,
 * upstream metrics), configured from the Worker's env, built once per isolate and rebuilt only
 * when the env object changes. The cache store is the Workers Cache API (`caches.default`, per
 * data centre); the rate limit counts per isolate. A bad configuration never throws: every
 * request gets a 500 whose one-line body names the key, and the problem is logged once.
 *
 * @module
 */
import type { Hono } from "hono";
import { MemoryStore } from "../cache/memory.ts";
import type { CacheStore } from "../cache/store.ts";
import { type WorkersCacheLike, WorkersCacheStore } from "../cache/workers.ts";
import { createDohApp, type DohEnv } from "../http/app.ts";
import { DOH_PATH } from "../http/doh_request.ts";
import { errorReply, TEXT_PLAIN, toResponse } from "../http/doh_response.ts";
import { createLogger, type Logger, type LogLevel } from "../log/mod.ts";
import { createBridgeMetrics } from "../metrics/bridge.ts";
import { queryObserver } from "../metrics/observer.ts";
import { resolverHooks } from "../metrics/resolver_hooks.ts";
import { buildResolver } from "../resolver/build.ts";
import { createProcessor } from "../resolver/processor.ts";
import { parseWorkerConfig, type WorkerConfig } from "./config.ts";
import { workerLandingText } from "./landing.ts";
import { localRecordsFromText } from "./local_records.ts";
import { buildWorkerUpstream, type WorkerUpstreamDeps } from "./upstreams.ts";
import { WorkerFilterLists } from "./filter_lists.ts";
import { messageOf } from "../errors/message_of.ts";

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
  /**
   * Where the cache keeps answers. Default: the Workers Cache API (`caches.default`), or, where
   * there is none (tests under Deno), an in-memory LRU of `DOTBRIDGE_CACHE_SIZE` entries.
   */
  cacheStore?: CacheStore;
  /** Milliseconds clock for the cache and the rate limit. Default `Date.now`. */
  now?: () => number;
  /**
   * Where downloaded blocklists and allowlists are kept between isolates. Default: the Workers
   * Cache API (`caches.default`) where there is one, else nowhere.
   */
  listCache?: WorkersCacheLike;
  /** Fetches URL lists. Default: the global `fetch`. */
  listFetch?: (input: string, init: RequestInit) => Promise<Response>;
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
    /** The blocklists and allowlists: a request waits for their first load. */
    readonly lists: WorkerFilterLists;
  }
  | { readonly ok: false; readonly message: string };

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

/** The Workers Cache API where there is one, else a memory LRU (per isolate). */
function defaultStore(config: WorkerConfig): CacheStore {
  const caches = (globalThis as { caches?: { default?: WorkersCacheLike } }).caches;
  return caches?.default
    ? new WorkersCacheStore({ cache: caches.default })
    : new MemoryStore({ maxEntries: config.resolver.cacheSize });
}

function build(env: WorkerEnv, deps: WorkerDeps, log: WorkerLogSink): State {
  let health: () => { name: string; healthy: boolean }[] = () => [];
  const metrics = createBridgeMetrics({
    upstreamHealth: () => health(),
  });
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
    if (config.tenantsWarning) logger.warn(`worker: ${config.tenantsWarning}`);
    const store = deps.cacheStore ?? defaultStore(config);
    const lists = workerFilterLists(env, config, deps, logger, metrics);
    const resolver = buildResolver(config, {
      upstreamFor: (spec, hooks) => buildWorkerUpstream(spec, deps, hooks),
      cacheStore: () => store, // one store for every policy: keys carry the tenant
      now: deps.now,
      logger,
      ...resolverHooks(metrics),
      tenants: config.tenants,
      localRecords: config.localRecordsText === undefined
        ? undefined
        : (source) => localRecordsFromText(config.localRecordsText!, source),
      filterLists: lists,
    });
    health = () => resolver.health();
    const process = createProcessor({
      handler: resolver.handler,
      logger,
      logQueries: config.log.logQueries,
      observer: queryObserver(metrics, resolver.tenantLabel),
    });
    const app = createDohApp({
      process,
      path: DOH_PATH,
      jsonApi: config.doh.jsonApi,
      logger,
      health: () => ({ edge: "cloudflare-workers" }),
      metrics: config.metrics.dohMetrics ? () => metrics.registry.render() : undefined,
    });
    logger.info("worker configured", {
      upstreams: config.upstream.upstreams.length,
      strategy: config.upstream.upstreamStrategy,
      jsonApi: config.doh.jsonApi,
      cache: config.resolver.cache ? store.name : "off",
      tenants: resolver.tenantNames.size,
    });
    return { ok: true, app, jsonApi: config.doh.jsonApi, acl: !resolver.acl.open, lists };
  } catch (e) {
    const message = `configuration error: ${oneLine(messageOf(e))}`;
    log("error", `dotbridge: ${message}`);
    return { ok: false, message };
  }
}

/** The Worker's lists: downloads kept in `deps.listCache` or `caches.default`, metrics fed. */
function workerFilterLists(
  env: WorkerEnv,
  config: WorkerConfig,
  deps: WorkerDeps,
  logger: Logger,
  metrics: ReturnType<typeof createBridgeMetrics>,
): WorkerFilterLists {
  const caches = (globalThis as { caches?: { default?: WorkersCacheLike } }).caches;
  const { resolver } = config;
  return new WorkerFilterLists({
    env,
    cache: deps.listCache ?? caches?.default,
    fetch: deps.listFetch,
    refreshMs: resolver.blocklistRefreshMs,
    maxBytes: resolver.blocklistMaxBytes,
    timeoutMs: resolver.blocklistTimeoutMs,
    logger,
    now: deps.now,
    onLoaded: (list, entries, skipped) => {
      metrics.filterListEntries.set({ list }, entries);
      metrics.filterListSkipped.set({ list }, skipped);
      metrics.filterListLoaded.set({ list }, (deps.now ?? Date.now)() / 1000);
    },
    onFailed: (list) => metrics.filterListFailures.inc({ list }),
  });
}

/**
 * Creates the Worker. `src/worker/index.ts` exports `createWorker()` as the module's default;
 * tests call it with their own `fetch`, `connect` and log sink.
 *
 * Routes are the DoH app's (`/dns-query` and `/dns-query/<tenant>` GET and POST, the JSON API
 * when on, `/health`, `/metrics` with `DOTBRIDGE_DOH_METRICS`), plus a Worker landing page at
 * `/`. The client address for the pipeline (ACL, rate limit, query log) is `CF-Connecting-IP`;
 * with `DOTBRIDGE_ALLOW`/`DOTBRIDGE_DENY` set, a DoH request without it is 403.
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
    async fetch(request, env, ctx) {
      const state = stateFor(env ?? {});
      if (!state.ok) {
        return Promise.resolve(
          new Response(state.message + "\n", {
            status: 500,
            headers: { "content-type": TEXT_PLAIN, "cache-control": "no-store" },
          }),
        );
      }
      const url = new URL(request.url);
      if (url.pathname === "/" && (request.method === "GET" || request.method === "HEAD")) {
        const text = workerLandingText(new URL(DOH_PATH, url).href, state.jsonApi);
        const body = request.method === "HEAD" ? null : text;
        return Promise.resolve(
          new Response(body, { headers: { "content-type": TEXT_PLAIN } }),
        );
      }
      const remoteAddr = request.headers.get("cf-connecting-ip") ?? undefined;
      const dohPath = url.pathname === DOH_PATH || url.pathname.startsWith(DOH_PATH + "/");
      if (state.acl && !remoteAddr && dohPath) {
        // Cloudflare always sets it; without it the ACL could not tell who is asking.
        return Promise.resolve(
          toResponse(errorReply(403, "no client address (CF-Connecting-IP)")),
        );
      }
      if (dohPath) {
        const loading = state.lists.ready(ctx);
        if (loading) await loading;
      }
      return state.app.fetch(request, { remoteAddr });
    },
  };
}
