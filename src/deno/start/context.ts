/**
 * What the start-up steps share: the parsed config, the edge's extra wiring, and for the faces
 * what the earlier steps built.
 *
 * @module
 */
import type { Config } from "../../config/config.ts";
import { ConfigError } from "../../config/parse.ts";
import type { Logger } from "../../log/mod.ts";
import type { BridgeMetrics } from "../../metrics/bridge.ts";
import { CidrSet } from "../../net/cidr_set.ts";
import type { Resolver } from "../../resolver/build.ts";
import { RateLimiter } from "../../resolver/ratelimit.ts";
import { createProcessor, type Processor, type QueryObserver } from "../../resolver/processor.ts";
import { tenantFromServerName } from "../../config/tenants.ts";
import type { FetchLike } from "../../upstream/doh.ts";
import { messageOf } from "../../errors/message_of.ts";

/** Extra wiring for `startBridge`; tests use it to point at local upstreams. */
export interface BridgeDeps {
  logger?: Logger;
  /** Overrides the HTTP client used for DoH upstreams. */
  fetch?: FetchLike;
  /** Reload the certificate on SIGHUP. Default true; tests running several bridges turn it off. */
  sighup?: boolean;
  /** Bind with SO_REUSEPORT (several threads serving one port). Default false. */
  reusePort?: boolean;
  /** Start `--metrics-listen` here. Default true; threads leave it to the main thread. */
  metricsListener?: boolean;
}

/** The certificate the faces serve, and how a client can trust it. */
export interface ServedCertificate {
  cert: string;
  key: string;
  /** Path of the PEM a client should trust: the dev CA, or the configured chain. */
  trustPath: string;
  /** SPKI pin of the leaf (RFC 7858 §4.2). */
  spkiPin: string;
  /** True for the generated development certificate. */
  development: boolean;
  /** True when the development certificate was generated on this start. */
  created: boolean;
}

/** What every face step gets. */
export interface FaceContext {
  readonly config: Config;
  readonly deps: BridgeDeps;
  readonly logger: Logger;
  readonly certificate: ServedCertificate;
  readonly metrics: BridgeMetrics;
  readonly resolver: Resolver;
  /** Feeds the query metrics; each face makes its processor with it. */
  readonly observer: QueryObserver;
}

/**
 * Reads a file a key names.
 *
 * @param origin the key as the user set it, for the error
 * @throws {ConfigError} naming `origin` when the file cannot be read
 */
export function readKeyFile(origin: string, path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    throw new ConfigError(origin, `cannot read "${path}": ${messageOf(e)}`);
  }
}

/**
 * A face's processor on the shared resolver, with the query log setting and the metrics
 * observer; `keepaliveMs` for stream faces that announce edns-tcp-keepalive (DoT).
 */
export function faceProcessor(face: FaceContext, keepaliveMs?: number): Processor {
  return createProcessor({
    handler: face.resolver.handler,
    logger: face.logger,
    logQueries: face.config.log.logQueries,
    keepaliveMs,
    observer: face.observer,
  });
}

/**
 * The tenant selector (id or name) by SNI (`--tenant-domain`), for the faces whose connections
 * carry a server name; the resolver's tenant router resolves it and checks the client.
 */
export function tenantOfServerName(
  config: Config,
): ((servername: string) => string | undefined) | undefined {
  const { tenantDomain } = config.resolver;
  return tenantDomain ? (servername) => tenantFromServerName(servername, tenantDomain) : undefined;
}

/** Membership of the CIDR `list` (a config key's, named `what`); undefined when it is empty. */
export function memberOf(
  list: readonly string[],
  what: string,
): ((address: string) => boolean) | undefined {
  if (list.length === 0) return undefined;
  const set = new CidrSet(list, what);
  return (address) => set.has(address);
}

/** The connection filter the resolver's ACL gives a face; undefined when everyone may connect. */
export function acceptOf(resolver: Resolver): ((address: string) => boolean) | undefined {
  const { acl } = resolver;
  return acl.open ? undefined : (address) => acl.allows(address);
}

/**
 * A face's connection rules beyond the ACL and the caps: the trusted PROXY protocol peers and
 * its own new-connection and handshake rate limiters (`--proxy-protocol-from`,
 * `--connection-rate-limit`, `--handshake-rate-limit`).
 */
export function connectionRulesOf(config: Config): {
  proxyFrom?: (address: string) => boolean;
  connectionRate?: RateLimiter;
  handshakeRate?: RateLimiter;
} {
  const { dot } = config;
  return {
    proxyFrom: memberOf(dot.proxyProtocolFrom, "proxy-protocol-from"),
    connectionRate: dot.connectionRateLimit > 0
      ? new RateLimiter({ rate: dot.connectionRateLimit, burst: dot.connectionRateBurst })
      : undefined,
    handshakeRate: dot.handshakeRateLimit > 0
      ? new RateLimiter({ rate: dot.handshakeRateLimit, burst: dot.handshakeRateBurst })
      : undefined,
  };
}
