/**
 * The query metrics every face feeds: in flight, count by face, tenant and rcode, latency.
 *
 * @module
 */
import { type BridgeMetrics, rcodeName } from "../../metrics/bridge.ts";
import type { Resolver } from "../../resolver/build.ts";
import type { QueryObserver } from "../../resolver/processor.ts";

/** An observer counting every query into `metrics`; unknown tenant names count as `unknown`. */
export function queryObserver(
  metrics: BridgeMetrics,
  resolver: Pick<Resolver, "tenantNames">,
): QueryObserver {
  const tenantLabel = (tenant: string | undefined) =>
    tenant === undefined ? "" : resolver.tenantNames.has(tenant) ? tenant : "unknown";
  return {
    start: (ctx) => metrics.inFlight.add({ face: ctx.face }, 1),
    end: (ctx, rcode, ms) => {
      metrics.inFlight.add({ face: ctx.face }, -1);
      metrics.queries.inc({
        face: ctx.face,
        tenant: tenantLabel(ctx.tenant),
        rcode: rcode < 0 ? "error" : rcodeName(rcode),
      });
      metrics.queryLatency.observe({ face: ctx.face }, ms / 1000);
    },
  };
}
