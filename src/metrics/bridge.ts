/**
 * The bridge's metrics: what `/metrics` shows.
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry } from "./registry.ts";

export { rcodeName } from "../dns/constants.ts";

/**
 * The `resumed` label of `dotbridge_tls_handshakes_total`: "true" or "false" where the TLS server
 * says whether the handshake resumed a session, "unknown" where it does not (`Deno.listenTls`,
 * Deno's QUIC).
 */
export function resumedLabel(resumed: boolean | undefined): "true" | "false" | "unknown" {
  return resumed === undefined ? "unknown" : resumed ? "true" : "false";
}

/** The `dotbridge_upstream_up` samples of a health source. */
function upstreamUp(
  health: MetricSources["upstreamHealth"],
): (() => Iterable<[{ upstream: string }, number]>) | undefined {
  return health && (() => health().map((h) => [{ upstream: h.name }, h.healthy ? 1 : 0]));
}

/** Callbacks read at scrape time. */
export interface MetricSources {
  /** Open connections by face. */
  connections?: () => Iterable<[{ face: string }, number]>;
  /** Health of every upstream (shown as 1 up, 0 down); `Resolver.health` fits. */
  upstreamHealth?: () => readonly { readonly name: string; readonly healthy: boolean }[];
  // --- observe: identity, certificate expiry, dnstap ---
  /** The bridge's version (`dotbridge_build_info`); unset: no build info. */
  version?: string;
  /** When the process started, in Unix seconds (`process_start_time_seconds`). */
  startTime?: number;
  /** Each face's certificate's notAfter, in Unix seconds. */
  certificateNotAfter?: () => Iterable<[{ face: string }, number]>;
  /** 1 while the dnstap collector is connected, 0 while not; `undefined` while dnstap is off. */
  dnstapUp?: () => number | undefined;
  // --- end observe ---
}

/**
 * Creates the registry with every bridge metric.
 *
 * @example
 * ```ts
 * const m = createBridgeMetrics({ connections: () => [[{ face: "dot" }, dot.connections]] });
 * m.queries.inc({ face: "dot", tenant: "", rcode: "NOERROR" });
 * ```
 */
export function createBridgeMetrics(sources: MetricSources = {}) {
  const registry = new Registry();
  return {
    registry,
    queries: registry.add(
      new Counter("dotbridge_queries_total", "Queries answered, by face, tenant and rcode.", [
        "face",
        "tenant",
        "rcode",
      ]),
    ),
    queryLatency: registry.add(
      new Histogram(
        "dotbridge_query_duration_seconds",
        "Time from a query's arrival to its answer, by face.",
        ["face"],
      ),
    ),
    inFlight: registry.add(
      new Gauge("dotbridge_queries_in_flight", "Queries received and not yet answered.", ["face"]),
    ),
    upstreamQueries: registry.add(
      new Counter(
        "dotbridge_upstream_queries_total",
        "Exchanges with each upstream, by outcome (ok or the failure kind).",
        ["upstream", "outcome"],
      ),
    ),
    upstreamLatency: registry.add(
      new Histogram(
        "dotbridge_upstream_duration_seconds",
        "Latency of successful upstream exchanges.",
        ["upstream"],
      ),
    ),
    upstreamUp: registry.add(
      new Gauge(
        "dotbridge_upstream_up",
        "1 when the upstream is considered healthy, 0 when it is cooling down.",
        ["upstream"],
        upstreamUp(sources.upstreamHealth),
      ),
    ),
    cache: registry.add(
      new Counter("dotbridge_cache_events_total", "Cache lookups by result.", ["event"]),
    ),
    cacheRedisUp: registry.add(
      new Gauge(
        "dotbridge_cache_redis_up",
        "1 while the shared cache's Redis is connected, 0 while lost (the local cache alone).",
        [],
      ),
    ),
    cacheRedisTrouble: registry.add(
      new Counter(
        "dotbridge_cache_redis_trouble_total",
        "Redis operations that did not help: timeout (past the budget), error, busy (skipped), " +
          "rejected (a value not served: not ours, not its key's, too large, badly signed).",
        ["kind"],
      ),
    ),
    connections: registry.add(
      new Gauge(
        "dotbridge_connections",
        "Open client connections, by face.",
        ["face"],
        sources.connections,
      ),
    ),
    tlsHandshakes: registry.add(
      new Counter(
        "dotbridge_tls_handshakes_total",
        "TLS handshakes completed, by face and whether they resumed a session (true, false, " +
          "or unknown where the TLS server does not say).",
        ["face", "resumed"],
      ),
    ),
    connectionEvents: registry.add(
      new Counter(
        "dotbridge_connection_events_total",
        "Client connections refused or closed, by face and reason.",
        ["face", "event"],
      ),
    ),
    // --- observe: identity, certificate expiry, query log, dnstap ---
    buildInfo: registry.add(
      new Gauge(
        "dotbridge_build_info",
        "Always 1; the labels say which build is running.",
        ["version"],
        sources.version === undefined ? undefined : () => [[{ version: sources.version! }, 1]],
      ),
    ),
    startTime: registry.add(
      new Gauge(
        "process_start_time_seconds",
        "When the process started, in seconds since the Unix epoch.",
        [],
        sources.startTime === undefined ? undefined : () => [[{}, sources.startTime!]],
      ),
    ),
    certificateNotAfter: registry.add(
      new Gauge(
        "dotbridge_certificate_not_after_seconds",
        "When the certificate each face serves expires, in seconds since the Unix epoch.",
        ["face"],
        sources.certificateNotAfter,
      ),
    ),
    queryLogDropped: registry.add(
      new Counter(
        "dotbridge_query_log_dropped_total",
        "Query log lines dropped because the writer could not keep up (a slow disk or pipe).",
      ),
    ),
    dnstapUp: registry.add(
      new Gauge(
        "dotbridge_dnstap_up",
        "1 while the dnstap collector is connected, 0 while not.",
        [],
        sources.dnstapUp && (() => {
          const up = sources.dnstapUp!();
          return up === undefined ? [] : [[{}, up]];
        }),
      ),
    ),
    dnstapDropped: registry.add(
      new Counter(
        "dotbridge_dnstap_dropped_total",
        "dnstap messages dropped: the queue was full or the collector was away.",
      ),
    ),
    // --- end observe ---
    // Blocklists and allowlists (src/filter/, the edges' list loaders).
    blocked: registry.add(
      new Counter(
        "dotbridge_blocked_total",
        "Queries answered as blocked, by tenant and by the list that blocked them.",
        ["tenant", "list"],
      ),
    ),
    filterListEntries: registry.add(
      new Gauge(
        "dotbridge_filter_list_entries",
        "Distinct names in each blocklist or allowlist in force.",
        ["list"],
      ),
    ),
    filterListSkipped: registry.add(
      new Gauge(
        "dotbridge_filter_list_skipped_lines",
        "Lines of each list's last load that were not understood or not supported.",
        ["list"],
      ),
    ),
    filterListLoaded: registry.add(
      new Gauge(
        "dotbridge_filter_list_last_refresh_timestamp_seconds",
        "When each list was last loaded or confirmed unchanged (Unix time).",
        ["list"],
      ),
    ),
    filterListFailures: registry.add(
      new Counter(
        "dotbridge_filter_list_refresh_failures_total",
        "Loads and refreshes of each list that failed (the previous copy stayed in force).",
        ["list"],
      ),
    ),
    // --- plain DNS face (issue 21) ---
    dnsUdpAnswers: registry.add(
      new Counter(
        "dotbridge_dns_udp_answers_total",
        "Plain DNS answers over UDP that did not go out as they were: truncated (larger than " +
          "the client takes; it retries over TCP), rrl-slipped (past the response rate limit, " +
          "sent empty and truncated), rrl-dropped (past it, not sent), busy-dropped (the " +
          "query dropped unread, too many pending).",
        ["event"],
      ),
    ),
    // --- end plain DNS face ---
  };
}

/** The bridge's metric set. */
export type BridgeMetrics = ReturnType<typeof createBridgeMetrics>;
