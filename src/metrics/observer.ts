/**
 * The face-side query metrics (queries by face, tenant and rcode; latency; in flight) as the
 * processor's observer, shared by every edge.
 *
 * @module
 */
import type { QueryObserver } from "../resolver/processor.ts";
import { type BridgeMetrics, rcodeName } from "./bridge.ts";

/**
 * An observer counting every query into `metrics`. A tenant outside `tenantNames` is labelled
 * `unknown` (so a client cannot grow the label set); no tenant is `""`.
 *
 * @example
 * ```ts
 * const process = createProcessor({ handler, observer: queryObserver(metrics, resolver.tenantNames) });
 * ```
 */
export function queryObserver(
  metrics: BridgeMetrics,
  tenantNames: ReadonlySet<string>,
): QueryObserver {
  const tenantLabel = (tenant: string | undefined) =>
    tenant === undefined ? "" : tenantNames.has(tenant) ? tenant : "unknown";
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
