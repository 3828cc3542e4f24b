/**
 * Step: the separate Prometheus listener on `--metrics-listen` (`/metrics`, `/health`, `/ready`,
 * and the status page on `/status`). Absent when unset, and in a
 * serving thread (the main thread serves the merged metrics).
 *
 * @module
 */
import { STATUS_PAGE } from "../../http/status_page.ts";
import { listenMetrics, type MetricsListener } from "../metrics_listener.ts";
import type { FaceContext } from "./context.ts";
import { listenError } from "./listen_error.ts";
import type { Started } from "./steps.ts";

/**
 * Starts the metrics listener, if configured; stopping closes it.
 *
 * @throws {ConfigError} naming `--metrics-listen` when the address cannot be bound
 */
export async function startMetricsFace(
  face: Pick<FaceContext, "config" | "deps" | "metrics" | "resolver">,
): Promise<Started<MetricsListener | undefined>> {
  const address = face.config.metrics.metricsListen;
  if (!address || face.deps.metricsListener === false) return { value: undefined };
  let listener: MetricsListener;
  try {
    listener = await listenMetrics(
      address.hostname,
      address.port,
      () => face.metrics.registry.render(),
      // --- observe: readiness and the status page ---
      { ready: () => face.resolver.ready(), status: STATUS_PAGE },
    );
  } catch (e) {
    throw listenError(e, face.config.origin["metrics-listen"], address);
  }
  return { value: listener, face: true, stop: () => listener.close() };
}
