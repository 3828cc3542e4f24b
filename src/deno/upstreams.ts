/**
 * Builds the configured upstream (one server or a group) with the runtime's HTTP client.
 *
 * @module
 */
import type { Config } from "../config/parse.ts";
import type { Logger } from "../log/mod.ts";
import { DohUpstream, type FetchLike } from "../upstream/doh.ts";
import { UpstreamGroup } from "../upstream/group.ts";
import type { Upstream } from "../upstream/types.ts";

/** Upstream settings from the config, plus the PEM text of `--upstream-ca` if set. */
export type UpstreamConfig = Pick<
  Config,
  "upstreams" | "upstreamStrategy" | "dohMethod" | "upstreamCooldownMs" | "attemptTimeoutMs"
>;

/**
 * A `fetch` that trusts extra CA certificates (private upstreams), or the global one.
 * The returned `close` releases the HTTP client's pooled connections.
 */
export function createFetch(caPem?: string): { fetch: FetchLike; close: () => void } {
  if (!caPem) return { fetch: (input, init) => fetch(input, init), close: () => {} };
  const client = Deno.createHttpClient({ caCerts: [caPem] });
  return {
    fetch: (input, init) => fetch(input, { ...init, client }),
    close: () => client.close(),
  };
}

/** Builds the upstream described by `config`. */
export function buildUpstream(
  config: UpstreamConfig,
  fetchFn: FetchLike,
  logger?: Logger,
): Upstream {
  const members = config.upstreams.map((url) =>
    new DohUpstream({ url, method: config.dohMethod, fetch: fetchFn })
  );
  if (members.length === 1) return members[0];
  return new UpstreamGroup({
    members,
    strategy: config.upstreamStrategy,
    cooldownMs: config.upstreamCooldownMs,
    attemptTimeoutMs: config.attemptTimeoutMs,
    onHealthChange: (member, healthy, error) => {
      if (healthy) logger?.info("upstream back", { upstream: member });
      else logger?.warn("upstream down", { upstream: member, error: (error as Error)?.message });
    },
  });
}
