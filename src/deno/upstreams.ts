/**
 * Builds the configured upstream (one server or a group) with the runtime's HTTP client.
 *
 * @module
 */
import type { Config } from "../config/parse.ts";
import type { Logger } from "../log/mod.ts";
import { DohUpstream } from "../upstream/doh.ts";
import { type DohTransport, type FetchLike, fetchTransport } from "../upstream/doh_transport.ts";
import { createH2Transport } from "./h2_transport.ts";
import { UpstreamGroup } from "../upstream/group.ts";
import type { Upstream } from "../upstream/types.ts";

/** Upstream settings from the config, plus the PEM text of `--upstream-ca` if set. */
export type UpstreamConfig = Pick<
  Config,
  "upstreams" | "upstreamStrategy" | "dohMethod" | "upstreamCooldownMs" | "attemptTimeoutMs"
>;

/** The HTTP clients DoH upstreams use, and how to release them. */
export interface Transports {
  /** For `https://` upstreams. */
  https: DohTransport;
  /** For `http://` upstreams (loopback only, e.g. behind a local TLS terminator). */
  http: DohTransport;
  close(): void;
}

/**
 * The default transports: `node:http2` for `https://` (faster than `fetch` here, and it can use
 * bootstrap addresses), `fetch` for plain `http://`. `caPem` adds trusted CA certificates.
 * With `fetchFn`, every upstream goes through that `fetch` instead (tests, special clients).
 */
export function createTransports(
  options: { caPem?: string; fetchFn?: FetchLike; logger?: Logger } = {},
): Transports {
  if (options.fetchFn) {
    const t = fetchTransport(options.fetchFn);
    return { https: t, http: t, close: () => {} };
  }
  const h2 = createH2Transport({
    caCerts: options.caPem ? [options.caPem] : undefined,
    logger: options.logger,
  });
  return { https: h2.transport, http: fetchTransport(), close: () => h2.close() };
}

/** Builds the upstream described by `config`. */
export function buildUpstream(
  config: UpstreamConfig,
  transports: Transports,
  logger?: Logger,
): Upstream {
  const members = config.upstreams.map((url) =>
    new DohUpstream({
      url,
      method: config.dohMethod,
      transport: url.startsWith("http:") ? transports.http : transports.https,
    })
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
