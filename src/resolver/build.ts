/**
 * The resolver, composed in one place from the parsed configuration: the global policy, one
 * policy per tenant, and the shared guards around them. Both runtime edges (Deno, Workers) call
 * this with their own transports.
 *
 * ```
 * servfailOnError ⟶ deadline ⟶ ACL ⟶ rate limit ⟶ tenant router ⟶ policy
 * policy = local records ⟶ cache ⟶ upstream privacy rewrite ⟶ upstream (one or a group)
 * ```
 *
 * @module
 */
import type { Config } from "../config/parse.ts";
import type { TenantsConfig } from "../config/tenants.ts";
import type { Logger } from "../log/mod.ts";
import type { BridgeMetrics } from "../metrics/bridge.ts";
import { buildUpstream, type UpstreamFactories, type UpstreamSpec } from "../upstream/build.ts";
import { UpstreamGroup } from "../upstream/group.ts";
import type { Upstream } from "../upstream/types.ts";
import { Acl, aclMiddleware } from "./acl.ts";
import { cacheMiddleware } from "../cache/middleware.ts";
import { MemoryStore } from "../cache/memory.ts";
import { fromUpstream, servfailOnError, timeout, upstreamPrivacy } from "./middleware.ts";
import { RateLimiter, rateLimitMiddleware } from "./ratelimit.ts";
import { tenantRouter } from "./tenants.ts";
import { compose, type Handler, type Middleware } from "./types.ts";

/** What the edge supplies. */
export interface ResolverDeps {
  factories: UpstreamFactories;
  logger?: Logger;
  metrics?: BridgeMetrics;
  tenants?: TenantsConfig;
  /** A middleware answering from a local records file (the edge loads and watches it). */
  localRecords?: (path: string) => Middleware;
}

/** The built resolver. */
export interface Resolver {
  readonly handler: Handler;
  readonly acl: Acl;
  /** Every top-level upstream (the global one first, then one per tenant). */
  readonly upstreams: readonly Upstream[];
  /** Health of every group member (single upstreams have no health state). */
  health(): { name: string; healthy: boolean }[];
  /** Known tenant names. */
  readonly tenantNames: ReadonlySet<string>;
  close(): Promise<void>;
}

/** The resolver-related part of {@linkcode Config}. */
export type ResolverConfig = Pick<
  Config,
  | "upstreams"
  | "upstreamStrategy"
  | "dohMethod"
  | "upstreamCooldownMs"
  | "attemptTimeoutMs"
  | "healthCheckIntervalMs"
  | "queryTimeoutMs"
  | "keepClientSubnet"
  | "allow"
  | "deny"
  | "rateLimit"
  | "rateLimitBurst"
  | "cache"
  | "cacheSize"
  | "cacheMinTtlMs"
  | "cacheMaxTtlMs"
  | "serveStaleMs"
  | "localRecords"
  | "tenantEdnsOption"
  | "unknownTenant"
>;

/**
 * Builds the resolver.
 *
 * @example
 * ```ts
 * const resolver = buildResolver(config, { factories, logger });
 * const answer = await resolver.handler(query, { face: "dot", signal });
 * ```
 */
export function buildResolver(config: ResolverConfig, deps: ResolverDeps): Resolver {
  const { logger, metrics } = deps;
  const upstreams: Upstream[] = [];
  const report = metrics
    ? (r: { upstream: string; outcome: string; seconds: number }) => {
      metrics.upstreamQueries.inc({ upstream: r.upstream, outcome: r.outcome });
      if (r.outcome === "ok") metrics.upstreamLatency.observe({ upstream: r.upstream }, r.seconds);
    }
    : undefined;

  function policy(
    spec: UpstreamSpec,
    cacheOn: boolean,
    localRecords: string | undefined,
  ): Handler {
    const upstream = buildUpstream(spec, deps.factories, logger, report);
    upstreams.push(upstream);
    const layers: Middleware[] = [];
    if (localRecords && deps.localRecords) layers.push(deps.localRecords(localRecords));
    if (cacheOn) {
      layers.push(cacheMiddleware({
        store: new MemoryStore({ maxEntries: config.cacheSize }),
        minTtl: Math.floor(config.cacheMinTtlMs / 1000),
        maxTtl: Math.floor(config.cacheMaxTtlMs / 1000),
        serveStaleSeconds: Math.floor(config.serveStaleMs / 1000),
        onEvent: metrics ? (event) => metrics.cache.inc({ event }) : undefined,
      }));
    }
    layers.push(upstreamPrivacy({ keepClientSubnet: config.keepClientSubnet }));
    return compose(layers, fromUpstream(upstream));
  }

  const globalPolicy = policy(config, config.cache, config.localRecords);
  const tenantHandlers = new Map<string, Handler>();
  for (const [name, t] of deps.tenants?.tenants ?? []) {
    tenantHandlers.set(
      name,
      policy(
        { ...config, upstreams: t.upstreams, upstreamStrategy: t.upstreamStrategy },
        config.cache && t.cache,
        t.localRecords,
      ),
    );
  }

  const acl = new Acl({ allow: config.allow, deny: config.deny });
  const guards: Middleware[] = [
    servfailOnError(logger),
    timeout(config.queryTimeoutMs),
    aclMiddleware(acl),
  ];
  if (config.rateLimit > 0) {
    const limiter = new RateLimiter({ rate: config.rateLimit, burst: config.rateLimitBurst });
    guards.push(rateLimitMiddleware(limiter));
  }
  if (tenantHandlers.size > 0) {
    guards.push(tenantRouter({
      tenants: tenantHandlers,
      ednsOption: config.tenantEdnsOption,
      defaultTenant: deps.tenants?.defaultTenant,
      unknown: config.unknownTenant,
    }));
  }

  return {
    handler: compose(guards, globalPolicy),
    acl,
    upstreams,
    tenantNames: new Set(tenantHandlers.keys()),
    health: () => upstreams.flatMap((u) => u instanceof UpstreamGroup ? u.health() : []),
    close: async () => {
      await Promise.all(upstreams.map((u) => u.close()));
    },
  };
}
