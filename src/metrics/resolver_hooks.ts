/**
 * The resolver builder's reporting hooks, fed into the metric set: upstream exchanges into
 * `dotbridge_upstream_*`, cache events into `dotbridge_cache_events_total`, blocked queries into
 * `dotbridge_blocked_total`. The builder takes the hooks, never the metric set.
 *
 * @module
 */
import type { CacheEvent } from "../cache/middleware.ts";
import type { ExchangeReport } from "../upstream/instrumented.ts";
import type { BridgeMetrics } from "./bridge.ts";

/** The hooks `buildResolver` takes (`ResolverDeps.report`, `ResolverDeps.onCacheEvent`, ...). */
export interface ResolverHooks {
  readonly report: (r: ExchangeReport) => void;
  readonly onCacheEvent: (event: CacheEvent) => void;
  /** `ResolverDeps.onBlocked`: into `dotbridge_blocked_total`. */
  readonly onBlocked: (tenant: string, list: string) => void;
}

/**
 * Both hooks over `metrics`.
 *
 * @example
 * ```ts
 * const resolver = buildResolver(config, { upstreamFor, ...resolverHooks(metrics) });
 * ```
 */
export function resolverHooks(metrics: BridgeMetrics): ResolverHooks {
  const cache = new Map<CacheEvent, { inc(): void }>();
  return {
    report: upstreamReporter(metrics),
    onCacheEvent: (event) => {
      let series = cache.get(event);
      if (!series) cache.set(event, series = metrics.cache.labels({ event }));
      series.inc();
    },
    onBlocked: blockedCounter(metrics),
  };
}

/**
 * Counts blocked queries into bound series, one per tenant and list (both few).
 *
 * @example
 * ```ts
 * const onBlocked = blockedCounter(metrics); // ResolverDeps.onBlocked
 * ```
 */
export function blockedCounter(
  metrics: Pick<BridgeMetrics, "blocked">,
): (tenant: string, list: string) => void {
  const series = new Map<string, { inc(): void }>();
  return (tenant, list) => {
    const key = `${tenant}\n${list}`;
    let count = series.get(key);
    if (!count) series.set(key, count = metrics.blocked.labels({ tenant, list }));
    count.inc();
  };
}

/**
 * Counts each upstream exchange into its bound series (made once per upstream and outcome, both
 * few), so a report builds no label objects or series keys.
 *
 * @example
 * ```ts
 * const report = upstreamReporter(metrics); // ResolverDeps.report
 * ```
 */
export function upstreamReporter(
  metrics: Pick<BridgeMetrics, "upstreamLatency" | "upstreamQueries">,
): (r: ExchangeReport) => void {
  const series = new Map<string, {
    latency: { observe(value: number): void };
    outcomes: Map<string, { inc(): void }>;
  }>();
  return (r) => {
    let s = series.get(r.upstream);
    if (!s) {
      s = {
        latency: metrics.upstreamLatency.labels({ upstream: r.upstream }),
        outcomes: new Map(),
      };
      series.set(r.upstream, s);
    }
    let count = s.outcomes.get(r.outcome);
    if (!count) {
      count = metrics.upstreamQueries.labels({ upstream: r.upstream, outcome: r.outcome });
      s.outcomes.set(r.outcome, count);
    }
    count.inc();
    if (r.outcome === "ok") s.latency.observe(r.seconds);
  };
}
