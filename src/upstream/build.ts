/**
 * Builds the configured upstream — one server or a group — from URLs, with the runtime's
 * transports supplied by the edge. `https://` and `http://` become DoH upstreams, `tls://`
 * DoT upstreams, `quic://` DoQ upstreams (where the runtime has a QUIC client), `udp://` and
 * `tcp://` plain DNS upstreams (where the runtime has UDP sockets, and TCP).
 *
 * @module
 */
import type { Logger } from "../log/mod.ts";
import { DohUpstream } from "./doh.ts";
import type { DohTransport } from "./doh_transport.ts";
import { DoqUpstream, type QuicConnector } from "./doq.ts";
import { DotUpstream } from "./dot.ts";
import { type DotUrl, parseDoqUrl, parseDotUrl } from "./dot_url.ts";
import { isPlainUrl, parsePlainUrl, type PlainUrl } from "./plain_url.ts";
import { type DatagramOpener, UdpUpstream } from "./udp.ts";
import { FastestGroup } from "./fastest.ts";
import { type GroupStrategy, UpstreamGroup } from "./group.ts";
import { RaceGroup } from "./race.ts";
import type { StreamConnector } from "./stream.ts";
import { TrackedUpstream } from "./tracked.ts";
import { type ExchangeReport, instrumentUpstream } from "./instrumented.ts";
import { memberName, redactUrl, type Upstream } from "./types.ts";
import { messageOf } from "../errors/message_of.ts";

/** How several upstreams share the queries. */
export type Strategy = GroupStrategy | "fastest" | "race";

/** What to build. Field names match the parsed configuration. */
export interface UpstreamSpec {
  readonly upstreams: readonly string[];
  readonly upstreamStrategy: Strategy;
  readonly dohMethod: "POST" | "GET";
  readonly upstreamCooldownMs: number;
  readonly attemptTimeoutMs: number;
  /** Background probe interval for failed group members; 0 or unset: none. */
  readonly healthCheckIntervalMs?: number;
  /**
   * Routes by name: suffix → the URLs of its own group (same strategy). `buildUpstream` builds
   * `upstreams` only; the resolver builds each route's group once and routes over them.
   */
  readonly routes?: Readonly<Record<string, readonly string[]>>;
}

/** How the runtime reaches upstreams. */
export interface UpstreamFactories {
  /** The HTTP client for a DoH URL. */
  doh: (url: URL) => DohTransport;
  /** The TLS connector for a DoT upstream (authenticates its name and pins). */
  dot: (target: DotUrl) => StreamConnector;
  /** The QUIC connector for a DoQ upstream; unset where the runtime has no QUIC client. */
  doq?: (target: DotUrl) => QuicConnector;
  /** Plain TCP to a `tcp://` upstream (and a `udp://` one's retries); unset where there is none. */
  tcp?: (target: PlainUrl) => StreamConnector;
  /** UDP sockets for a `udp://` upstream; unset where the runtime has no UDP (Workers). */
  udp?: (target: PlainUrl) => DatagramOpener;
}

/**
 * Builds one upstream per URL and, for several, a group with the configured strategy.
 *
 * @example
 * ```ts
 * const upstream = buildUpstream(config, { doh: () => fetchTransport(), dot: connectorFor });
 * ```
 */
export function buildUpstream(
  spec: UpstreamSpec,
  factories: UpstreamFactories,
  logger?: Logger,
  report?: (r: ExchangeReport) => void,
): Upstream {
  // Several upstreams are named with their place in the list too: two on one host (two
  // accounts, told apart only by the path, which no name shows) must not share metric series.
  const several = spec.upstreams.length > 1;
  const members = spec.upstreams.map((url, index) => {
    const upstream = buildOne(url, (name) => several ? memberName(name, index) : name);
    return report ? instrumentUpstream(upstream, report) : upstream;
  });
  function buildOne(url: string, nameOf: (name: string) => string): Upstream {
    if (/^tls:/i.test(url)) {
      const target = parseDotUrl(url);
      return new DotUpstream({
        hostname: target.hostname,
        port: target.port,
        servername: target.servername,
        name: nameOf(target.display),
        connect: factories.dot(target),
        logger,
      });
    }
    if (isPlainUrl(url)) return plain(parsePlainUrl(url), nameOf);
    if (/^quic:/i.test(url)) {
      const target = parseDoqUrl(url);
      if (!factories.doq) {
        throw new TypeError(`upstream ${target.display}: quic:// needs a QUIC client (Deno)`);
      }
      return new DoqUpstream({
        hostname: target.hostname,
        port: target.port,
        servername: target.servername,
        name: nameOf(target.display),
        connect: factories.doq(target),
        logger,
      });
    }
    return new DohUpstream({
      url,
      name: nameOf(redactUrl(url)),
      method: spec.dohMethod,
      transport: factories.doh(new URL(url)),
    });
  }
  /** A `tcp://` upstream: the DoT machinery (pooled, pipelined) over plain TCP. */
  function plainTcp(target: PlainUrl, name: string): Upstream {
    if (!factories.tcp) throw new TypeError(`upstream ${target.display}: no TCP client here`);
    return new DotUpstream({
      hostname: target.hostname,
      port: target.port,
      name,
      connect: factories.tcp(target),
      logger,
    });
  }
  function plain(target: PlainUrl, nameOf: (name: string) => string): Upstream {
    const name = nameOf(target.display);
    if (target.scheme === "tcp") return plainTcp(target, name);
    if (!factories.udp) {
      throw new TypeError(`upstream ${target.display}: udp:// needs UDP sockets (not in Workers)`);
    }
    return new UdpUpstream({
      hostname: target.hostname,
      port: target.port,
      name,
      open: factories.udp(target),
      tcp: factories.tcp ? plainTcp({ ...target, scheme: "tcp" }, `${name} (tcp)`) : undefined,
      logger,
    });
  }
  const onHealthChange = (member: string, healthy: boolean, error?: unknown) => {
    if (healthy) logger?.info("upstream back", { upstream: member });
    else logger?.warn("upstream down", { upstream: member, error: messageOf(error) });
  };
  if (members.length === 1) {
    // A lone upstream has health too (`dotbridge_upstream_up`, `/ready`), and is probed while down.
    return new TrackedUpstream({
      upstream: members[0],
      cooldownMs: spec.upstreamCooldownMs,
      probeIntervalMs: spec.healthCheckIntervalMs,
      probeTimeoutMs: spec.attemptTimeoutMs,
      onHealthChange,
    });
  }
  const strategy = spec.upstreamStrategy;
  switch (strategy) {
    case "fastest":
      return new FastestGroup({
        members,
        cooldownMs: spec.upstreamCooldownMs,
        attemptTimeoutMs: spec.attemptTimeoutMs,
        onHealthChange,
      });
    case "race":
      return new RaceGroup({ members, cooldownMs: spec.upstreamCooldownMs, onHealthChange });
    default:
      return new UpstreamGroup({
        members,
        strategy,
        cooldownMs: spec.upstreamCooldownMs,
        attemptTimeoutMs: spec.attemptTimeoutMs,
        probeIntervalMs: spec.healthCheckIntervalMs,
        onHealthChange,
      });
  }
}
