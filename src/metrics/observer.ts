/**
 * The face-side query metrics (queries by face, tenant and rcode; latency; in flight) as the
 * processor's observer, shared by every edge.
 *
 * @module
 */
import type { QueryObserver } from "../resolver/processor.ts";
import type { QueryContext } from "../pipeline/types.ts";
import type { Query } from "../dns/query.ts";
import { type BridgeMetrics, rcodeName } from "./bridge.ts";

/**
 * An observer counting every query into `metrics`. `tenantLabel` names a query's tenant: a known
 * tenant's name, `unknown` for any other selector (so a client cannot grow the label set, nor
 * see an id or tell a tenant it may not use from none), `""` for none.
 *
 * @example
 * ```ts
 * const process = createProcessor({ handler, observer: queryObserver(metrics, resolver.tenantLabel) });
 * ```
 */
export function queryObserver(
  metrics: BridgeMetrics,
  tenantLabel: (ctx: QueryContext, query?: Query) => string,
): QueryObserver {
  /** Bound series per face, and per tenant label and rcode (-1: error): labels are few. */
  const faces = new Map<string, FaceSeries>();
  const seriesOf = (face: string): FaceSeries => {
    let series = faces.get(face);
    if (!series) {
      series = {
        inFlight: metrics.inFlight.labels({ face }),
        latency: metrics.queryLatency.labels({ face }),
        queries: new Map(),
      };
      faces.set(face, series);
    }
    return series;
  };
  return {
    start: (ctx) => seriesOf(ctx.face).inFlight.add(1),
    end: (ctx, rcode, ms, query) => {
      const series = seriesOf(ctx.face);
      series.inFlight.add(-1);
      const tenant = tenantLabel(ctx, query);
      let byRcode = series.queries.get(tenant);
      if (!byRcode) series.queries.set(tenant, byRcode = new Map());
      let counter = byRcode.get(rcode);
      if (!counter) {
        counter = metrics.queries.labels({
          face: ctx.face,
          tenant,
          rcode: rcode < 0 ? "error" : rcodeName(rcode),
        });
        byRcode.set(rcode, counter);
      }
      counter.inc();
      series.latency.observe(ms / 1000);
    },
  };
}

interface FaceSeries {
  inFlight: { add(n: number): void };
  latency: { observe(value: number): void };
  queries: Map<string, Map<number, { inc(): void }>>;
}
