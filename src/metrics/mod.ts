/**
 * Metrics: a Prometheus text-format registry and the bridge's metric set.
 *
 * @module
 */
export * from "./registry.ts";
export * from "./bridge.ts";
export * from "./merge.ts";
export * from "./observer.ts";
