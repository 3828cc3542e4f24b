/**
 * How a Worker reaches its upstreams: DoH through the Worker's `fetch`, DoT through
 * `cloudflare:sockets`, with one twist for DoT. In workerd an I/O object (a socket, a stream)
 * belongs to the request that opened it; another request that touches it fails ("Cannot perform
 * I/O on behalf of a different request"). A pooled `DotUpstream` kept for the isolate would do
 * exactly that, so each DoT member here builds its `DotUpstream` per exchange and closes it after:
 * one TLS connection per DoH request. Groups are kept for the isolate, so failover cool-downs and
 * round-robin turns carry over between requests.
 *
 * @module
 */
import type { Logger } from "../log/mod.ts";
import { buildUpstream, type UpstreamFactories, type UpstreamSpec } from "../upstream/build.ts";
import { type FetchLike, fetchTransport } from "../upstream/doh_transport.ts";
import { parseDotUrl } from "../upstream/dot_url.ts";
import { UpstreamGroup } from "../upstream/group.ts";
import { type Upstream, UpstreamError } from "../upstream/types.ts";
import { createSocketsConnector, type SocketsConnect } from "./sockets_connector.ts";

/** The runtime pieces {@linkcode buildWorkerUpstream} uses; tests replace them. */
export interface WorkerUpstreamDeps {
  /** For DoH upstreams. Default: the global `fetch`. */
  fetch?: FetchLike;
  /** For DoT upstreams. Default: `connect` of `cloudflare:sockets`. */
  connect?: SocketsConnect;
}

/**
 * An upstream that builds a fresh upstream for every exchange and closes it once the answer (or
 * failure) is in, without holding the answer back for the close. For upstreams whose
 * connections must not outlive one Worker request.
 *
 * Safe for concurrent use (each exchange has its own upstream); `close()` makes later exchanges
 * reject with `unavailable`.
 *
 * @example
 * ```ts
 * const dot = requestScopedUpstream("tls://dns.example:853", () => buildUpstream(spec, factories));
 * ```
 */
export function requestScopedUpstream(name: string, build: () => Upstream): Upstream {
  let closed = false;
  return {
    name,
    async exchange(query, signal) {
      if (closed) throw new UpstreamError(name, "unavailable", "closed");
      const upstream = build();
      try {
        return await upstream.exchange(query, signal);
      } finally {
        upstream.close().catch(() => {});
      }
    },
    close() {
      closed = true;
      return Promise.resolve();
    },
  } satisfies Upstream;
}

/**
 * Builds the configured upstream for a Worker: each URL through `buildUpstream` (so DoH and DoT
 * upstreams are the core's), DoT members scoped to one exchange, several members grouped as the
 * core's builder groups them.
 *
 * @example
 * ```ts
 * const upstream = buildWorkerUpstream(config, {}, logger);
 * ```
 */
export function buildWorkerUpstream(
  spec: UpstreamSpec,
  deps: WorkerUpstreamDeps = {},
  logger?: Logger,
): Upstream {
  const fetchFn = deps.fetch ?? ((input, init) => fetch(input, init));
  const transport = fetchTransport(fetchFn);
  const connector = createSocketsConnector({ connect: deps.connect });
  const factories: UpstreamFactories = { doh: () => transport, dot: () => connector };
  const one = (url: string) => buildUpstream({ ...spec, upstreams: [url] }, factories, logger);

  const members = spec.upstreams.map((url) =>
    /^tls:/i.test(url) ? requestScopedUpstream(parseDotUrl(url).display, () => one(url)) : one(url)
  );
  if (members.length === 1) return members[0];
  return new UpstreamGroup({
    members,
    strategy: spec.upstreamStrategy,
    cooldownMs: spec.upstreamCooldownMs,
    attemptTimeoutMs: spec.attemptTimeoutMs,
    onHealthChange: (member, healthy, error) => {
      if (healthy) logger?.info("upstream back", { upstream: member });
      else logger?.warn("upstream down", { upstream: member, error: (error as Error)?.message });
    },
  });
}
