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
import { resumedLabel } from "../../metrics/bridge.ts";
import type { Resolver } from "../../resolver/build.ts";
import { RateLimiter } from "../../resolver/ratelimit.ts";
import {
  createProcessor,
  type Processor,
  type ProcessorOptions,
  type QueryObserver,
  type QueryTap,
} from "../../resolver/processor.ts";
import { tenantFromServerName } from "../../config/tenants.ts";
import type { FetchLike } from "../../upstream/doh.ts";
import { messageOf } from "../../errors/message_of.ts";
import type { ListenerGuards } from "../listener_guards.ts";
import { parseTenants, type TenantsConfig } from "../../config/tenants.ts";

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
  /**
   * Serve the plain DNS face's UDP (with its TCP). Default true; threads after the first serve
   * its TCP only (a UDP port cannot be shared between Deno's sockets).
   */
  dnsUdp?: boolean;
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
  /** The certificate's DNS names (none listed for the development one). */
  names?: string[];
  /** Advice on the key for the start-up log (an RSA key: slower handshakes). */
  warning?: string;
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
  // --- observe ---
  /** The query log's and dnstap's tap; unset when neither is on (no traces are made). */
  readonly tap?: QueryTap;
  // --- end observe ---
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
    // Deno appends the operation and the path (`: readfile '/x'`); the path is said already.
    const why = messageOf(e).replace(/: [a-z]+ '[^']*'$/, "");
    throw new ConfigError(origin, `cannot read "${path}": ${why}`);
  }
}

/**
 * The `--tenants` file, read and parsed once for every step that needs it (the resolver's
 * policies, the query log's opt-outs); undefined without one.
 *
 * @throws {ConfigError} naming `--tenants` or the file's key
 */
export function loadTenants(config: Config): TenantsConfig | undefined {
  const { tenantsFile } = config.resolver;
  if (!tenantsFile) return undefined;
  return parseTenants(readKeyFile(config.origin.tenants, tenantsFile), tenantsFile);
}

/**
 * A face's processor on the shared resolver, with the query log setting and the metrics
 * observer; `keepaliveMs` for stream faces that announce edns-tcp-keepalive (DoT); `plain` for the
 * plain DNS face: which transport (UDP or TCP) the processor serves, and for UDP the answers'
 * size limit.
 */
export function faceProcessor(
  face: FaceContext,
  keepaliveMs?: number,
  plain?: Pick<ProcessorOptions, "udpMaxSize" | "onTruncated" | "transport">,
): Processor {
  return createProcessor({
    handler: face.resolver.handler,
    logger: face.logger,
    logQueries: face.config.log.logQueries,
    keepaliveMs,
    observer: face.observer,
    tap: face.tap,
    ...plain,
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

/**
 * A face's listener guards, from the configuration: `--max-connections`,
 * `--max-connections-per-ip` and `--handshake-timeout`, the resolver's ACL at accept,
 * `--proxy-protocol-from`, the face's own new-connection and handshake rate limiters
 * (`--connection-rate-limit`, `--handshake-rate-limit`: each face has its own), its idle timeout,
 * the connection and handshake metrics labelled with `name`, and SO_REUSEPORT when threads share
 * the port.
 */
export function listenerGuards(
  face: FaceContext,
  name: "dot" | "doh" | "doq" | "dns",
  idleTimeoutMs: number,
): ListenerGuards {
  const { config, deps, metrics, resolver } = face;
  const { dot } = config;
  const { acl } = resolver;
  return {
    maxConnections: dot.maxConnections,
    maxConnectionsPerIp: dot.maxConnectionsPerIp,
    accept: acl.open ? undefined : (address) => acl.allows(address),
    proxyFrom: memberOf(dot.proxyProtocolFrom, "proxy-protocol-from"),
    connectionRate: dot.connectionRateLimit > 0
      ? new RateLimiter({ rate: dot.connectionRateLimit, burst: dot.connectionRateBurst })
      : undefined,
    handshakeRate: dot.handshakeRateLimit > 0
      ? new RateLimiter({ rate: dot.handshakeRateLimit, burst: dot.handshakeRateBurst })
      : undefined,
    handshakeTimeoutMs: dot.handshakeTimeoutMs,
    idleTimeoutMs,
    onEvent: (event) => metrics.connectionEvents.inc({ face: name, event }),
    onHandshake: (resumed) =>
      metrics.tlsHandshakes.inc({ face: name, resumed: resumedLabel(resumed) }),
    reusePort: deps.reusePort,
  };
}
