/**
 * How a Worker reaches its upstreams: DoH through the Worker's `fetch`, DoT and plain DNS over
 * TCP (`tcp://`) through `cloudflare:sockets`, all built by the core's `buildUpstream` (so every
 * strategy the Deno edge has, the Worker has). A Worker has no UDP: `udp://` is refused when the
 * configuration is read (`config.ts`).
 *
 * One twist for DoT. In workerd an I/O object (a socket, a stream) belongs to the request that
 * opened it; another request that touches it fails ("Cannot perform I/O on behalf of a different
 * request"). A pooled `DotUpstream` kept for the isolate would do exactly that under concurrent
 * requests, so when the configuration has a `tls://` upstream the whole upstream is built per
 * exchange and closed after it: one TLS connection per DoH request, and group state (cool-downs,
 * round-robin turns, latency averages) that lasts one request. The same holds for `tcp://`.
 * A DoH-only configuration is built once per isolate and keeps its state.
 *
 * @module
 */
import type { UpstreamHooks } from "../resolver/build.ts";
import { buildUpstream, type UpstreamFactories, type UpstreamSpec } from "../upstream/build.ts";
import { type FetchLike, fetchTransport } from "../upstream/doh_transport.ts";
import { type Upstream, UpstreamError } from "../upstream/types.ts";
import { createSocketsConnector, type SocketsConnect } from "./sockets_connector.ts";

/** The runtime pieces {@linkcode buildWorkerUpstream} uses; tests replace them. */
export interface WorkerUpstreamDeps {
  /** For DoH upstreams. Default: the global `fetch`. */
  fetch?: FetchLike;
  /** For DoT and `tcp://` upstreams. Default: `connect` of `cloudflare:sockets`. */
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
 * Builds the configured upstream for a Worker with `buildUpstream`: DoH over `fetch`, DoT and
 * `tcp://` over `cloudflare:sockets`, and with any of those, built per exchange (see the module
 * notes).
 * It is the Worker's `upstreamFor` for `buildResolver` (`hooks` carry the logger and the
 * upstream metrics' report).
 *
 * @example
 * ```ts
 * const resolver = buildResolver(config, {
 *   upstreamFor: (spec, hooks) => buildWorkerUpstream(spec, {}, hooks),
 * });
 * ```
 */
export function buildWorkerUpstream(
  spec: UpstreamSpec,
  deps: WorkerUpstreamDeps = {},
  hooks: UpstreamHooks = {},
): Upstream {
  const fetchFn = deps.fetch ?? ((input, init) => fetch(input, init));
  const transport = fetchTransport(fetchFn);
  const connector = createSocketsConnector({ connect: deps.connect });
  const plain = createSocketsConnector({ connect: deps.connect, plain: true });
  const factories: UpstreamFactories = {
    doh: () => transport,
    dot: () => connector,
    tcp: () => plain,
  };
  const build = () => buildUpstream(spec, factories, hooks.logger, hooks.report);
  if (!spec.upstreams.some((url) => /^(tls|tcp):/i.test(url))) return build();
  const first = build(); // builds connect lazily: this only learns the name
  first.close().catch(() => {});
  return requestScopedUpstream(first.name, build);
}
