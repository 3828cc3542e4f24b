/**
 * The one resolver builder every edge calls (Deno, the Worker, tests): the global policy, one
 * policy per tenant, and the shared guards around them, composed in one place from the parsed
 * configuration and the pieces the edge injects (in the manner of hono's `getConnInfo`: the
 * core takes one narrow function per runtime piece, each edge supplies its own).
 *
 * ```
 * servfailOnError ⟶ deadline ⟶ ACL ⟶ rate limit ⟶ plain DNS policy ⟶ DDR ⟶ tenant router ⟶ policy
 * policy = local records ⟶ filter ⟶ cache ⟶ CNAME filter ⟶ upstream privacy rewrite ⟶ upstream
 *          (one or a group, or routes by name over several)
 * ```
 *
 * @module
 */
import { cacheMiddleware } from "../cache/middleware.ts";
import { ByteBudget } from "../cache/budget.ts";
import { MemoryStore } from "../cache/memory.ts";
import type { CacheStore } from "../cache/store.ts";
import type { CacheEvent } from "../cache/middleware.ts";
import type { Logger } from "../log/mod.ts";
import { buildUpstream, type UpstreamFactories, type UpstreamSpec } from "../upstream/build.ts";
import type { Answer } from "../dns/answer.ts";
import type { Query } from "../dns/query.ts";
import { NameRouter } from "../upstream/routes.ts";
import { CidrSet } from "../net/cidr_set.ts";
import { memoizedMembership, plainDnsPolicy } from "./plain_dns.ts";
import type { ExchangeReport } from "../upstream/instrumented.ts";
import type { Upstream } from "../upstream/types.ts";
import { Acl, aclMiddleware } from "./acl.ts";
import { ddrMiddleware, type DdrPorts } from "./ddr.ts";
import { fromUpstream, servfailOnError, timeout, upstreamPrivacy } from "./middleware.ts";
import { RateLimiter, rateLimitMiddleware } from "./ratelimit.ts";
import type { PolicyOptions, ResolverOptions, TenantPolicies, TenantPolicy } from "./options.ts";
import { BlockedAnswers } from "../filter/blocked_answer.ts";
import { cnameFilterMiddleware, filterMiddleware } from "../filter/middleware.ts";
import { type FilterLists, FilterPolicy } from "../filter/policy.ts";
import { ednsSelector, type TenantRoute, tenantRouter, TenantTable } from "./tenants.ts";
import { compose, type Handler, type Middleware, type QueryContext } from "../pipeline/types.ts";

/** What the builder hands {@linkcode UpstreamFor} along with the spec. */
export interface UpstreamHooks {
  /** For the upstream's own log lines (members down and back). */
  readonly logger?: Logger;
  /** Call once per finished exchange with each member (upstream metrics); unset: no metrics. */
  readonly report?: (r: ExchangeReport) => void;
}

/**
 * Builds the upstream for a spec: the global one, then one per tenant. The edge chooses how
 * (its transports, per-request sockets, ...); the resolver owns what it returns and closes it.
 * Pass `hooks.report` on to every member so upstream metrics see each one.
 */
export type UpstreamFor = (spec: UpstreamSpec, hooks: UpstreamHooks) => Upstream;

/**
 * The usual {@linkcode UpstreamFor}: `buildUpstream` over the edge's transports.
 *
 * @example
 * ```ts
 * const resolver = buildResolver(config, { upstreamFor: upstreamsFrom(transports) });
 * ```
 */
export function upstreamsFrom(factories: UpstreamFactories): UpstreamFor {
  return (spec, hooks) => buildUpstream(spec, factories, hooks.logger, hooks.report);
}

/** What the edge supplies. Everything but `upstreamFor` has a default. */
export interface ResolverDeps {
  /** How upstreams are built (see {@linkcode UpstreamFor}). */
  upstreamFor: UpstreamFor;
  /**
   * The cache store of one policy: `tenant` is the tenant's name, `undefined` for the global
   * policy. Called once per policy whose cache is on. A shared store may be returned for every
   * policy: keys carry the tenant. Default: a {@linkcode MemoryStore} of `cacheSize` entries each,
   * all on one byte budget of `cacheMaxBytes`.
   */
  cacheStore?: (tenant: string | undefined) => CacheStore;
  /** Milliseconds clock for the cache and the rate limiter. Default: theirs (`Date.now`, ...). */
  now?: () => number;
  logger?: Logger;
  /**
   * Told of every finished exchange with each upstream member (upstream metrics, e.g.
   * `upstreamReporter` from `src/metrics/`); unset: nobody is.
   */
  report?: (r: ExchangeReport) => void;
  /** Told of every cache hit, miss, coalesced wait and stale answer; unset: nobody is. */
  onCacheEvent?: (event: CacheEvent) => void;
  /** The tenants (the parsed tenants file); unset: no tenants. */
  tenants?: TenantPolicies;
  /**
   * A middleware answering from a local records source: the global `localRecords` value, or a
   * tenant's (`tenant` says whose). What a source names is the edge's business (a file path on
   * Deno, which it loads and watches; the variable holding the text in the Worker). Unset:
   * local records are off even where configured.
   */
  localRecords?: (source: string, tenant: string | undefined) => Middleware;
  // --- observe (query log, dnstap, readiness) ---
  /**
   * The faces trace queries (a query log or dnstap is on): the builder then remembers which
   * group member answered each upstream answer, for `QueryTrace.upstream`. Default false.
   */
  traced?: boolean;
  // --- end observe ---
  /**
   * The blocklists and allowlists by source (the edge loads each once and keeps it current).
   * Unset: filtering is off even where lists are configured (an edge that cannot load them).
   */
  filterLists?: FilterLists;
  /** Told of every blocked query: the policy's tenant (`""`: global) and the list's name. */
  onBlocked?: (tenant: string, list: string) => void;
  /**
   * The ports of the faces that are on, for DDR (`--ddr-name`), read when answers are first made
   * and whenever asked again (faces bound to port 0 know theirs only once listening). Unset: DDR
   * is off even where names are configured (an edge with no faces of its own to advertise).
   */
  ddrPorts?: () => DdrPorts;
}

/** The built resolver. */
export interface Resolver {
  readonly handler: Handler;
  readonly acl: Acl;
  /**
   * Every top-level upstream (the global one first, then one per tenant), then each route's
   * group once (shared by every policy that routes to it).
   */
  readonly upstreams: readonly Upstream[];
  /**
   * Whether a client may use the plain DNS face: in `--dns-default-allow` when no `--allow` is
   * set, else always (the ACL decides). For its TCP listener's accept.
   */
  readonly plainDnsAllows: (address: string) => boolean;
  /** Health of every upstream: each group member, and lone upstreams. */
  health(): { name: string; healthy: boolean }[];
  /**
   * Readiness: whether at least one upstream of the default policy (the default tenant's, else
   * the global one) is usable (out of its cool-down). True for an upstream that keeps no health.
   */
  ready(): boolean;
  /** Known tenant names. */
  readonly tenantNames: ReadonlySet<string>;
  /**
   * The metric label of a query's tenant as its face chose it: `""` for none, the tenant's name,
   * or `unknown` for a selector that names no tenant or one the client may not use.
   */
  readonly tenantLabel: (ctx: QueryContext, query?: Query) => string;
  /** Closes every upstream. */
  close(): Promise<void>;
}

/** One memory store per policy, every one on one byte budget (made when the first is). */
function memoryStores(resolver: PolicyOptions): () => MemoryStore {
  let budget: ByteBudget | undefined;
  return () => {
    budget ??= new ByteBudget(resolver.cacheMaxBytes);
    return new MemoryStore({ maxEntries: resolver.cacheSize, budget });
  };
}

/** An upstream that keeps health: groups (per member) and tracked lone upstreams. */
interface WithHealth {
  health(): { name: string; healthy: boolean }[];
}

/** The filter's two stages of one policy: on query names above the cache, on CNAMEs below. */
interface FilterStages {
  readonly names: Middleware;
  readonly cnames: Middleware;
}

/**
 * The filter stages of one policy: the tenant's lists and block settings, each unset one taken
 * from the global policy; `undefined` when the policy has no lists (or the edge loads none).
 */
function filterStages(
  global: PolicyOptions,
  tenant: { name: string; policy: TenantPolicy } | undefined,
  deps: ResolverDeps,
): FilterStages | undefined {
  const lists = deps.filterLists;
  const own = tenant?.policy;
  const blocklists = own?.blocklists ?? global.blocklists ?? [];
  const allowlists = own?.allowlists ?? global.allowlists ?? [];
  if (!lists || blocklists.length + allowlists.length === 0) return undefined;
  const label = tenant?.name ?? "";
  const onBlocked = deps.onBlocked;
  const options = {
    policy: new FilterPolicy({
      hasher: lists.hasher,
      blocklists: blocklists.map((source) => lists.list(source)),
      allowlists: allowlists.map((source) => lists.list(source)),
    }),
    answers: new BlockedAnswers(
      own?.blockResponse ?? global.blockResponse ?? "nxdomain",
      Math.floor((own?.blockTtlMs ?? global.blockTtlMs ?? 60_000) / 1000),
    ),
    onBlocked: onBlocked && ((list: string) => onBlocked(label, list)),
  };
  return { names: filterMiddleware(options), cnames: cnameFilterMiddleware(options) };
}

/** The health an upstream keeps; none for one that keeps none. */
function healthOf(u: Upstream): { name: string; healthy: boolean }[] {
  const { health } = u as Upstream & Partial<WithHealth>;
  return typeof health === "function" ? health.call(u) : [];
}

/**
 * Builds the resolver.
 *
 * @throws whatever `upstreamFor` or `localRecords` throw (configuration errors); nothing built
 *   so far is left open
 *
 * @example
 * ```ts
 * const resolver = buildResolver(config, { upstreamFor: upstreamsFrom(transports), logger });
 * // `config` is the parsed Config, or any ResolverOptions
 * const answer = await resolver.handler(query, { face: "dot", signal });
 * ```
 */
export function buildResolver(config: ResolverOptions, deps: ResolverDeps): Resolver {
  const { logger, onCacheEvent: onEvent } = deps;
  const upstreams: Upstream[] = [];
  // --- observe: which member answered, for traced queries ---
  const answerers = deps.traced ? new WeakMap<Answer, string>() : undefined;
  const answeredBy = answerers && ((answer: Answer) => answerers.get(answer));
  const report = answerers
    ? (r: ExchangeReport) => {
      if (r.answer) answerers.set(r.answer, r.upstream);
      deps.report?.(r);
    }
    : deps.report;
  const policyUpstreams = new Map<string | undefined, Upstream>();
  // --- end observe ---
  const storeFor = deps.cacheStore ?? memoryStores(config.resolver);

  // --- routes by name (issue 21) ---
  /** Each route's group, by strategy and URLs: built once, shared by every policy. */
  const routeGroups = new Map<string, Upstream>();
  /** `fallback`, or a router over it and the spec's routes. */
  function routed(spec: UpstreamSpec, fallback: Upstream): Upstream {
    const routes = Object.entries(spec.routes ?? {});
    if (routes.length === 0) return fallback;
    return new NameRouter({
      fallback,
      routes: routes.map(([suffix, urls]) => {
        const key = `${spec.upstreamStrategy} ${urls.join(" ")}`;
        let group = routeGroups.get(key);
        if (!group) {
          group = deps.upstreamFor({ ...spec, upstreams: urls, routes: undefined }, {
            logger,
            report,
          });
          routeGroups.set(key, group);
          upstreams.push(group);
        }
        return [suffix, group] as const;
      }),
    });
  }
  // --- end routes by name ---

  function policy(
    spec: UpstreamSpec,
    tenant: string | undefined,
    cacheOn: boolean,
    localRecords: string | undefined,
    filter: FilterStages | undefined,
  ): Handler {
    const upstream = deps.upstreamFor(spec, { logger, report });
    upstreams.push(upstream);
    policyUpstreams.set(tenant, upstream);
    const layers: Middleware[] = [];
    if (localRecords && deps.localRecords) layers.push(deps.localRecords(localRecords, tenant));
    if (filter) layers.push(filter.names);
    if (cacheOn) {
      layers.push(cacheMiddleware({
        store: storeFor(tenant),
        minTtl: Math.floor(config.resolver.cacheMinTtlMs / 1000),
        maxTtl: Math.floor(config.resolver.cacheMaxTtlMs / 1000),
        maxEntryBytes: config.resolver.cacheMaxEntryBytes,
        clientSubnet: config.resolver.keepClientSubnet,
        serveStaleSeconds: Math.floor(config.resolver.serveStaleMs / 1000),
        now: deps.now,
        onEvent,
        tenantOf: () => tenant ?? "",
      }));
    }
    if (filter) layers.push(filter.cnames);
    layers.push(upstreamPrivacy({ keepClientSubnet: config.resolver.keepClientSubnet }));
    return compose(layers, fromUpstream(routed(spec, upstream), answeredBy));
  }

  const tenantRoutes: TenantRoute[] = [];
  let globalPolicy: Handler;
  let tenantTable: TenantTable;
  try {
    globalPolicy = policy(
      config.upstream,
      undefined,
      config.resolver.cache,
      config.resolver.localRecords,
      filterStages(config.resolver, undefined, deps),
    );
    for (const [name, t] of deps.tenants?.tenants ?? []) {
      const spec = {
        ...config.upstream,
        upstreams: t.upstreams,
        upstreamStrategy: t.upstreamStrategy,
        routes: t.routes ?? config.upstream.routes,
      };
      tenantRoutes.push({
        name,
        selector: t.selector,
        allow: t.allow,
        handler: policy(
          spec,
          name,
          config.resolver.cache && t.cache,
          t.localRecords,
          filterStages(config.resolver, { name, policy: t }, deps),
        ),
      });
    }
    tenantTable = new TenantTable(tenantRoutes, deps.tenants?.defaultTenant);
  } catch (e) {
    for (const u of upstreams) u.close().catch(() => {});
    throw e;
  }

  const acl = new Acl({ allow: config.resolver.allow, deny: config.resolver.deny });
  const guards: Middleware[] = [
    servfailOnError(logger),
    timeout(config.resolver.queryTimeoutMs),
    aclMiddleware(acl),
  ];
  if (config.resolver.rateLimit > 0) {
    const limiter = new RateLimiter({
      rate: config.resolver.rateLimit,
      burst: config.resolver.rateLimitBurst,
      now: deps.now,
    });
    guards.push(rateLimitMiddleware(limiter));
  }
  // --- plain DNS face (issue 21) ---
  const defaultAllow = config.resolver.allow.length === 0 && config.dns
    ? new CidrSet(config.dns.defaultAllow, "dns-default-allow")
    : undefined;
  const plainDnsAllows = defaultAllow
    ? memoizedMembership((address) => defaultAllow.has(address))
    : () => true;
  guards.push(plainDnsPolicy({ mayUse: defaultAllow ? plainDnsAllows : undefined }));
  // --- end plain DNS face ---
  if (config.resolver.ddrNames.length > 0 && deps.ddrPorts) {
    guards.push(ddrMiddleware({
      names: config.resolver.ddrNames,
      ipv4Hints: config.resolver.ddrIpv4Hints,
      ipv6Hints: config.resolver.ddrIpv6Hints,
      ports: deps.ddrPorts,
    }));
  }
  if (tenantRoutes.length > 0) {
    guards.push(tenantRouter({
      tenants: tenantTable,
      ednsOption: config.resolver.tenantEdnsOption,
      unknown: config.resolver.unknownTenant,
    }));
  }

  return {
    handler: compose(guards, globalPolicy),
    acl,
    upstreams,
    plainDnsAllows,
    tenantNames: new Set(tenantRoutes.map((t) => t.name)),
    tenantLabel: tenantRoutes.length === 0 ? () => "" : (ctx, query) =>
      tenantTable.label(
        ctx,
        query && ednsSelector(query, config.resolver.tenantEdnsOption),
      ),
    health: () => upstreams.flatMap(healthOf),
    ready: () => {
      const main = policyUpstreams.get(deps.tenants?.defaultTenant) ?? upstreams[0];
      const states = main ? healthOf(main) : [];
      return states.length === 0 || states.some((s) => s.healthy);
    },
    close: async () => {
      await Promise.all(upstreams.map((u) => u.close()));
    },
  };
}
