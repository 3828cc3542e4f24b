/**
 * Wires the runtime-free engine to Deno as a few named start-up steps (`start/`): the
 * certificate, the upstream transports, the cache store (Redis), the filter lists, the resolver
 * (then the lists' first loads), then each face (DoT, DoH, DoQ, plain DNS, metrics) and the
 * certificate watch. Each step returns what it built and how to stop it; if one fails, the
 * ones before it are stopped in reverse order. `main.ts` calls this; so do the end-to-end tests.
 *
 * A new face is one file in `start/` and one line below.
 *
 * @module
 */
import type { Config } from "../config/config.ts";
import { createLogger } from "../log/mod.ts";
import { type BridgeMetrics, createBridgeMetrics } from "../metrics/bridge.ts";
import { queryObserver } from "../metrics/observer.ts";
import type { Resolver } from "../resolver/build.ts";
import { type DdrPorts, ddrPortsFromConfig } from "../resolver/ddr.ts";
import type { DnsListener } from "./dns_listener.ts";
import type { DohListener } from "./doh_listener.ts";
import type { DoqListener } from "./doq_listener.ts";
import type { DotListener } from "./dot_listener.ts";
import { startCacheStore } from "./start/cache_store.ts";
import { startCertificate } from "./start/certificate.ts";
import { startCertificateWatch } from "./start/certificate_watch.ts";
import {
  type BridgeDeps,
  type FaceContext,
  loadTenants,
  type ServedCertificate,
} from "./start/context.ts";
import { startDnsFace } from "./start/dns_face.ts";
import { startDohFace } from "./start/doh_face.ts";
import { startDoqFace } from "./start/doq_face.ts";
import { startDotFace } from "./start/dot_face.ts";
import { startMetricsFace } from "./start/metrics_face.ts";
import { startResolver } from "./start/resolver.ts";
import { filterListsLoaded, startFilterLists } from "./start/filter_lists.ts";
import type { DenoFilterLists } from "./filter_lists.ts";
import { Slot, StartUp } from "./start/steps.ts";
import { startTransports } from "./start/transports.ts";
import { type Observing, startObserve } from "./start/observe.ts";
import { notAfterReader } from "./cert_expiry.ts";
import { VERSION } from "./version.ts";
import type { Face } from "../pipeline/types.ts";
import type { MetricSources } from "../metrics/bridge.ts";

/** The metric sources of the observe step (identity, certificate expiry, dnstap). */
type ObservedSources = Pick<
  MetricSources,
  "version" | "startTime" | "certificateNotAfter" | "dnstapUp"
>;

export type { BridgeDeps, ServedCertificate } from "./start/context.ts";
export { loadCertificate } from "./start/certificate.ts";

/** A running bridge. */
export interface Bridge {
  readonly dot: DotListener;
  /**
   * Re-reads `--cert`/`--key` and serves them to new connections if they are a valid pair;
   * resolves false (and keeps the old pair) otherwise. File changes and SIGHUP do this too.
   */
  reloadCertificate(reason?: string): Promise<boolean>;
  /** The DoH face; absent when `http-listen` is `off`. */
  readonly doh?: DohListener;
  /** The DoQ face; absent when `doq-listen` is `off`. */
  readonly doq?: DoqListener;
  /** The plain DNS face; absent when `dns-listen` is `off` (the default). */
  readonly dns?: DnsListener;
  readonly certificate: ServedCertificate;
  /** Every metric; `metrics.registry.render()` is the /metrics body. */
  readonly metrics: BridgeMetrics;
  /** Where `--metrics-listen` bound, if set. */
  readonly metricsAddr?: { hostname: string; port: number };
  /** Drains and stops everything (bounded by the config's shutdown grace). */
  shutdown(): Promise<void>;
  // --- observe ---
  /** Reopens the query log file (what SIGHUP does, for logrotate). */
  reopenLogs(): void;
  /** Readiness: a usable upstream in the default policy (`/ready`). */
  ready(): boolean;
  // --- end observe ---
  /** The blocklists and allowlists (`refresh(source)` loads one again now). */
  readonly filterLists: DenoFilterLists;
}

/** Gauges read the steps' results once they exist. */
function bridgeMetrics(
  faces: {
    dot: Slot<DotListener>;
    doh: Slot<DohListener>;
    doq: Slot<DoqListener>;
    dns: Slot<DnsListener>;
  },
  resolver: Slot<Resolver>,
  observed: ObservedSources,
): BridgeMetrics {
  return createBridgeMetrics({
    ...observed,
    connections: () => {
      const open: [{ face: string }, number][] = [];
      for (const face of ["dot", "doh", "doq", "dns"] as const) {
        const listener = faces[face].value;
        if (listener) open.push([{ face }, listener.connections]);
      }
      return open;
    },
    upstreamHealth: () => resolver.value?.health() ?? [],
  });
}

/**
 * Starts the bridge described by `config`.
 *
 * @throws {ConfigError} for unreadable files, a bad certificate, or an address it cannot bind
 *   (naming the key); everything started before the failure is stopped first
 */
export async function startBridge(config: Config, deps: BridgeDeps = {}): Promise<Bridge> {
  const logger = deps.logger ??
    createLogger({ level: config.log.logLevel, format: config.log.logFormat });
  const steps = new StartUp(logger);
  const dotSlot = new Slot<DotListener>();
  const doqSlot = new Slot<DoqListener>();
  const resolverSlot = new Slot<Resolver>();
  const dohSlot = new Slot<DohListener>();
  const dnsSlot = new Slot<DnsListener>();
  // DDR advertises the ports the faces bound (port 0 becomes a real one once they listen).
  const configured = ddrPortsFromConfig(config);
  const ddrPorts = (): DdrPorts => ({
    ...configured,
    dot: dotSlot.value?.addr.port ?? configured.dot,
    doh: configured.doh === undefined ? undefined : dohSlot.value?.addr.port ?? configured.doh,
    doq: configured.doq === undefined ? undefined : doqSlot.value?.addr.port ?? configured.doq,
  });
  // --- observe: identity, certificate expiry, dnstap state ---
  const observeSlot = new Slot<Observing>();
  const certificateSlot = new Slot<ServedCertificate>();
  const faceAddresses = (face: Face) => {
    const listener = face === "dot"
      ? dotSlot.value
      : face === "doh"
      ? dohSlot.value
      : face === "dns"
      ? dnsSlot.value
      : doqSlot.value;
    return listener && { address: listener.addr.hostname, port: listener.addr.port };
  };
  const notAfterSeconds = notAfterReader();
  const observed: ObservedSources = {
    version: VERSION,
    startTime: Math.round(performance.timeOrigin) / 1000,
    certificateNotAfter: () => {
      const cert = certificateSlot.value;
      if (!cert) return [];
      const notAfter = notAfterSeconds(cert.cert);
      const faces: string[] = ["dot"];
      if (dohSlot.value?.tls) faces.push("doh");
      if (doqSlot.value) faces.push("doq");
      return faces.map((face) => [{ face }, notAfter] as [{ face: string }, number]);
    },
    dnstapUp: () => observeSlot.value?.dnstapUp(),
  };
  // --- end observe ---
  const metrics = bridgeMetrics(
    { dot: dotSlot, doh: dohSlot, doq: doqSlot, dns: dnsSlot },
    resolverSlot,
    observed,
  );

  const certificate = certificateSlot.fill(
    await steps.step("certificate", () => startCertificate(config, logger)),
  );
  const transports = await steps.step(
    "upstream transports",
    () => startTransports(config, deps, logger),
  );
  const cacheStore = await steps.step(
    "cache store",
    () => startCacheStore(config, logger, metrics),
  );
  const tenants = await steps.step("tenants", () => ({ value: loadTenants(config) }));
  const observing = observeSlot.fill(
    await steps.step(
      "observe",
      () => startObserve(config, { deps, logger, metrics, local: faceAddresses, tenants }),
    ),
  );
  const filterLists = await steps.step(
    "filter lists",
    () => startFilterLists(config, logger, metrics),
  );
  const resolver = resolverSlot.fill(
    await steps.step(
      "resolver",
      () =>
        startResolver(config, {
          upstreamFor: transports.upstreamFor,
          logger,
          metrics,
          cacheStore,
          ddrPorts,
          traced: observing.tap !== undefined,
          onExchange: observing.report,
          filterLists,
          tenants,
        }),
    ),
  );
  await steps.step("filter lists loaded", () => filterListsLoaded(config, filterLists));
  const face: FaceContext = {
    config,
    deps,
    logger,
    certificate,
    metrics,
    resolver,
    observer: queryObserver(metrics, resolver.tenantLabel),
    tap: observing.tap,
  };
  const dot = dotSlot.fill(await steps.step("dot face", () => startDotFace(face)));
  const doh = await steps.step("doh face", () => startDohFace(face, dot));
  if (doh) dohSlot.fill(doh);
  const doq = await steps.step("doq face", () => startDoqFace(face));
  if (doq) doqSlot.fill(doq);
  const dns = await steps.step("dns face", () => startDnsFace(face));
  if (dns) dnsSlot.fill(dns);
  const metricsListener = await steps.step("metrics listener", () => startMetricsFace(face));
  const watch = await steps.step(
    "certificate watch",
    () => startCertificateWatch(face, dot, doh, doq),
  );

  return {
    dot,
    doh,
    doq,
    dns,
    metrics,
    metricsAddr: metricsListener?.addr,
    certificate,
    reloadCertificate: (reason?: string) => watch?.reload(reason) ?? Promise.resolve(false),
    shutdown: () => steps.stop(config.runtime.shutdownGraceMs),
    reopenLogs: () => observing.reopen(),
    ready: () => resolver.ready(),
    filterLists,
  };
}
