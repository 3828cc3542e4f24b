/**
 * Every configuration key, once: its group and field in the typed {@linkcode Config}, the kind of
 * value it takes, its default, environment variable and help text. The parser, the `Config`
 * type (`config.ts`), `--help` and the table in docs/configuration.md all come from this list, so a new key
 * is one entry here.
 *
 * @module
 */

import { PRIVATE_RANGES } from "../net/private_ranges.ts";

/** The kinds of value a key takes. */
export type OptionKind = "string" | "int" | "duration" | "bool" | "list" | "address" | "enum";

/**
 * The groups of {@linkcode Config}, one per concern:
 * - `certificate`: the served certificate (`cert`, `key`, the development one's `state-dir`)
 * - `dot`: the DoT face (listener, server, timeouts, connection limits)
 * - `doh`: the DoH face (listener, TLS, server, proxy header, JSON API)
 * - `dns`: the plain DNS face (UDP and TCP listener, UDP answer size, who may use it, response
 *   rate limiting)
 * - `upstream`: where queries go and how (URLs, strategy, routes by name, CA, method, transport,
 *   timers, bootstrap, health checks)
 * - `resolver`: the policy in front of the upstreams (query budget, cache, ACL, rate limit,
 *   tenants, local records, client subnet)
 * - `log`, `metrics`
 * - `runtime`: the process (threads, shutdown grace)
 */
export type ConfigGroup =
  | "certificate"
  | "dot"
  | "doh"
  | "dns"
  | "upstream"
  | "resolver"
  | "log"
  | "metrics"
  | "runtime";

/** Checks (and for `host-ip`, a shape) beyond the kind: each item, for lists. */
export type OptionFormat =
  /** An upstream URL (`https://`, `tls://`, `quic://`, `udp://`, `tcp://`, or `http://` on loopback). */
  | "url"
  /** An address or CIDR range. */
  | "cidr"
  /** `HOST=IP`; the list becomes a map from lower-cased host to address. */
  | "host-ip"
  /** An HTTP header name; lower-cased. */
  | "header"
  /** A Redis URL: `redis://` or `rediss://`, a host, an optional port and database number. */
  | "redis-url"
  /** A secret: long enough (`MIN_SECRET_BYTES`), and never repeated in an error or a log. */
  | "secret"
  /** A blocklist or allowlist: a file path, or an `https://` URL (`http://` on loopback). */
  | "list-source"
  /**
   * `SUFFIX=URL[,URL...]`; an item without `SUFFIX=` adds a URL to the route before it. The
   * list becomes a map from the lower-cased suffix (no final dot) to its upstream URLs.
   */
  | "route";

/** One configuration key. */
export interface OptionSpec {
  /** The key: `--name` on the command line, `"name"` in the config file. */
  readonly name: string;
  /** Where the value lives in {@linkcode Config}; unset for `config` (the file itself). */
  readonly group?: ConfigGroup;
  /** The value's field in its group: `config[group][field]`. */
  readonly field?: string;
  readonly kind: OptionKind;
  readonly format?: OptionFormat;
  /** Default as the user would type it; undefined means unset. */
  readonly default?: string;
  /** Unset, the parser computes the value from others (the help text says how). */
  readonly computed?: boolean;
  readonly help: string;
  /** For `enum`. */
  readonly choices?: readonly string[];
  /** Inclusive bounds for `int` and `duration` (milliseconds). */
  readonly min?: number;
  readonly max?: number;
  /** Value placeholder in `--help`. */
  readonly meta?: string;
  /** For `address`: the value `off` is accepted and leaves the key unset (disabled). */
  readonly allowOff?: boolean;
  /** For `int`: the value `auto` is accepted and stands for 0 (the edge decides). */
  readonly allowAuto?: boolean;
}

/** The public DoH resolvers used when no upstream is configured. */
export const DEFAULT_UPSTREAMS = [
  "https://cloudflare-dns.com/dns-query",
  "https://dns.google/dns-query",
];

/**
 * All keys, in `--help` order, with their literal types (from which `config.ts` derives the
 * `Config` type). Code that walks the keys uses {@linkcode OPTIONS}.
 */
export const OPTION_TABLE = [
  { name: "config", kind: "string", meta: "FILE", help: "JSON file with any of these keys" },
  {
    name: "listen",
    group: "dot",
    field: "listen",
    kind: "address",
    default: "127.0.0.1:8853",
    meta: "HOST:PORT",
    help: "DoT listen address (use 0.0.0.0:853 or [::]:853 in production)",
  },
  {
    name: "cert",
    group: "certificate",
    field: "certFile",
    kind: "string",
    meta: "FILE",
    help: "PEM certificate chain; unset: a development certificate in --state-dir",
  },
  {
    name: "key",
    group: "certificate",
    field: "keyFile",
    kind: "string",
    meta: "FILE",
    help: "PEM private key for --cert",
  },
  {
    name: "http-listen",
    group: "doh",
    field: "httpListen",
    kind: "address",
    default: "127.0.0.1:8443",
    allowOff: true,
    meta: "HOST:PORT|off",
    help: "DoH (RFC 8484) listen address; off disables the HTTP face",
  },
  {
    name: "doq-listen",
    group: "dot",
    field: "doqListen",
    kind: "address",
    default: "off",
    allowOff: true,
    meta: "HOST:PORT|off",
    help: "DNS-over-QUIC (RFC 9250) listen address, UDP (use 0.0.0.0:853 in production); off: none",
  },
  // --- plain DNS face (issue 21) ---
  {
    name: "dns-listen",
    group: "dns",
    field: "listen",
    kind: "address",
    default: "off",
    allowOff: true,
    meta: "HOST:PORT|off",
    help: "plain DNS (RFC 1035, UDP and TCP on one port) listen address, e.g. 0.0.0.0:53; " +
      "answers only --dns-default-allow unless --allow is set; off: none",
  },
  {
    name: "dns-default-allow",
    group: "dns",
    field: "defaultAllow",
    kind: "list",
    format: "cidr",
    default: PRIVATE_RANGES.join(","),
    meta: "CIDR",
    help: "without --allow, the plain DNS face answers only these clients (loopback, RFC 1918, " +
      "RFC 6598, ULA, link-local) and refuses others (REFUSED; TCP: closed); --allow " +
      "replaces it (repeatable)",
  },
  {
    name: "dns-max-udp-size",
    group: "dns",
    field: "maxUdpSize",
    kind: "int",
    default: "1232",
    min: 512,
    max: 4096,
    meta: "BYTES",
    help: "largest UDP answer, whatever EDNS size a client asks for (512 without EDNS); larger " +
      "ones go out truncated (TC) and the client retries over TCP",
  },
  {
    name: "dns-rrl",
    group: "dns",
    field: "rrlRate",
    kind: "int",
    default: "200",
    min: 0,
    meta: "N",
    help: "UDP answers per second to one network (IPv4 /24, IPv6 /56), against reflection; " +
      "past it they are dropped or slip as truncated (0: off)",
  },
  {
    name: "dns-rrl-slip",
    group: "dns",
    field: "rrlSlip",
    kind: "int",
    default: "2",
    min: 0,
    max: 10,
    meta: "N",
    help: "past --dns-rrl, every Nth answer is sent truncated (TC: the client retries over TCP) " +
      "and the others dropped (1: all truncated; 0: all dropped)",
  },
  // --- end plain DNS face ---
  {
    name: "http-tls",
    group: "doh",
    field: "httpTls",
    kind: "bool",
    default: "true",
    help: "serve HTTPS with the DoT certificate; false: plain HTTP (behind a TLS reverse proxy)",
  },
  {
    name: "trusted-proxy-header",
    group: "doh",
    field: "trustedProxyHeader",
    kind: "string",
    format: "header",
    meta: "HEADER",
    help: "DoH: header naming the client, set by a proxy in --trusted-proxy-from (all its lines " +
      "joined, the last entry taken: the proxy's own); ignored from other peers",
  },
  {
    name: "trusted-proxy-from",
    group: "doh",
    field: "trustedProxyFrom",
    kind: "list",
    format: "cidr",
    default: "127.0.0.0/8,::1",
    meta: "CIDR",
    help: "DoH: proxies whose --trusted-proxy-header is believed; other peers are the client. " +
      "Their connections skip per-client caps, connection rates and ACL; the ACL and " +
      "--rate-limit judge each request (repeatable)",
  },
  {
    name: "json-api",
    group: "doh",
    field: "jsonApi",
    kind: "bool",
    default: "true",
    help: "answer the JSON API (application/dns-json, ?name=&type=) on the DoH path",
  },
  {
    name: "doh-idle-timeout",
    group: "doh",
    field: "idleTimeoutMs",
    kind: "duration",
    default: "30s",
    min: 1,
    help: "close a DoH connection with no request open this long",
  },
  {
    name: "doh-request-timeout",
    group: "doh",
    field: "requestTimeoutMs",
    kind: "duration",
    default: "10s",
    min: 1,
    max: 15_000,
    help: "a DoH request's headers and body must arrive, and an HTTP/2 reply must progress " +
      "against the client's window, within this long (HTTP/2: stream reset; HTTP/1.1: 408, " +
      "close); a connection left with only such requests closes",
  },
  {
    name: "upstream",
    group: "upstream",
    field: "upstreams",
    kind: "list",
    format: "url",
    default: DEFAULT_UPSTREAMS.join(","),
    meta: "URL",
    help:
      "upstream resolver, repeatable: DoH https://host/path, DoT tls://host[:port][?pin=...][#name], DoQ quic://host[:port][#name], or plain DNS udp://IP[:port] or tcp://IP[:port]",
  },
  {
    name: "upstream-strategy",
    group: "upstream",
    field: "upstreamStrategy",
    kind: "enum",
    choices: ["failover", "round-robin", "fastest", "race"],
    default: "failover",
    help: "how queries are spread over several upstreams",
  },
  // --- routes by name (issue 21) ---
  {
    name: "route",
    group: "upstream",
    field: "routes",
    kind: "list",
    format: "route",
    meta: "SUFFIX=URL[,URL]",
    help: "send names under SUFFIX (e.g. lan, 168.192.in-addr.arpa) to these upstreams instead " +
      "(longest suffix wins; same forms as --upstream plus udp://IP[:port], tcp://IP[:port]; " +
      "repeatable)",
  },
  // --- end routes by name ---
  {
    name: "upstream-ca",
    group: "upstream",
    field: "upstreamCaFiles",
    kind: "list",
    meta: "FILE",
    help: "PEM CA certificate(s) trusted for upstreams instead of the system roots " +
      "(repeatable: every file is trusted)",
  },
  {
    name: "doh-method",
    group: "upstream",
    field: "dohMethod",
    kind: "enum",
    choices: ["POST", "GET"],
    default: "POST",
    help: "HTTP method for DoH upstream queries",
  },
  {
    name: "upstream-transport",
    group: "upstream",
    field: "upstreamTransport",
    kind: "enum",
    choices: ["http2", "fetch"],
    default: "http2",
    help: "HTTP client for DoH upstreams: the bridge's own HTTP/2 client (about 8x fetch here) " +
      "or Deno's fetch",
  },
  {
    name: "upstream-cooldown",
    group: "upstream",
    field: "upstreamCooldownMs",
    kind: "duration",
    default: "30s",
    min: 0,
    help: "how long a failed upstream is passed over",
  },
  {
    name: "attempt-timeout",
    group: "upstream",
    field: "attemptTimeoutMs",
    kind: "duration",
    default: "2s",
    min: 1,
    help: "time one upstream gets before the next in the group is tried",
  },
  {
    name: "query-timeout",
    group: "resolver",
    field: "queryTimeoutMs",
    kind: "duration",
    default: "5s",
    min: 1,
    max: 60_000,
    help: "whole-query budget; past it the client gets SERVFAIL",
  },
  {
    name: "health-check-interval",
    group: "upstream",
    field: "healthCheckIntervalMs",
    kind: "duration",
    default: "5s",
    min: 0,
    help: "probe a failed upstream this often in the background (0: no probes)",
  },
  {
    name: "bootstrap",
    group: "upstream",
    field: "bootstrap",
    kind: "list",
    format: "host-ip",
    meta: "HOST=IP",
    help: "dial IP for an upstream's HOST instead of resolving it (no plain DNS; repeatable)",
  },
  {
    name: "cache",
    group: "resolver",
    field: "cache",
    kind: "bool",
    default: "true",
    help: "answer repeated questions from memory (LRU, TTLs counted down; --no-cache: off)",
  },
  {
    name: "cache-size",
    group: "resolver",
    field: "cacheSize",
    kind: "int",
    default: "10000",
    min: 1,
    help: "answers the cache holds at most, per policy (the global one and each tenant's)",
  },
  {
    name: "cache-max-bytes",
    group: "resolver",
    field: "cacheMaxBytes",
    kind: "int",
    default: "67108864",
    min: 65_536,
    meta: "BYTES",
    help: "bytes the memory cache may pin, all policies together (each answer's bytes plus " +
      "~0.7 KiB); past it the least recently used go first; threads split it",
  },
  {
    name: "cache-max-entry-bytes",
    group: "resolver",
    field: "cacheMaxEntryBytes",
    kind: "int",
    default: "16384",
    min: 512,
    max: 65_535,
    meta: "BYTES",
    help: "larger answers are served but not cached (in memory or in Redis)",
  },
  {
    name: "cache-min-ttl",
    group: "resolver",
    field: "cacheMinTtlMs",
    kind: "duration",
    default: "0s",
    min: 0,
    help: "keep answers at least this long, whatever their TTL",
  },
  {
    name: "cache-max-ttl",
    group: "resolver",
    field: "cacheMaxTtlMs",
    kind: "duration",
    default: "24h",
    min: 0,
    help: "keep answers at most this long, whatever their TTL",
  },
  {
    name: "serve-stale",
    group: "resolver",
    field: "serveStaleMs",
    kind: "duration",
    default: "0s",
    min: 0,
    help: "serve answers expired up to this long when upstreams fail (RFC 8767; 0: never)",
  },
  {
    name: "cache-redis",
    group: "resolver",
    field: "cacheRedis",
    kind: "string",
    format: "redis-url",
    meta: "URL",
    help:
      "share the cache through Redis behind the memory one: redis[s]://[user:pass@]host:port/db",
  },
  {
    name: "cache-redis-budget",
    group: "resolver",
    field: "cacheRedisBudgetMs",
    kind: "duration",
    default: "5ms",
    min: 1,
    max: 1000,
    help: "longest a query waits on Redis; past it, a miss (the upstream is asked)",
  },
  {
    name: "cache-redis-secret",
    group: "resolver",
    field: "cacheRedisSecret",
    kind: "string",
    format: "secret",
    meta: "SECRET",
    help: "sign Redis entries (HMAC-SHA-256) with this secret of 32+ bytes and serve only " +
      "those signed with it; give it by env or config file (a command line is visible to all)",
  },
  {
    name: "local-records",
    group: "resolver",
    field: "localRecords",
    kind: "string",
    meta: "FILE",
    help: "hosts or zone file answered without an upstream (reloaded on change)",
  },
  // Blocklists and allowlists (docs/filtering.md).
  {
    name: "blocklist",
    group: "resolver",
    field: "blocklists",
    kind: "list",
    format: "list-source",
    meta: "SOURCE",
    help: "names to block, with their subdomains: a file (reloaded on change) or an http(s):// " +
      "URL (refreshed); hosts, plain, Adblock (||name^) or RPZ format (repeatable)",
  },
  {
    name: "allowlist",
    group: "resolver",
    field: "allowlists",
    kind: "list",
    format: "list-source",
    meta: "SOURCE",
    help: "names never blocked, with their subdomains, whatever the blocklists say; sources " +
      "as --blocklist (repeatable)",
  },
  {
    name: "block-response",
    group: "resolver",
    field: "blockResponse",
    kind: "enum",
    choices: ["nxdomain", "nodata", "null", "refused"],
    default: "nxdomain",
    help: "what a blocked query gets, with EDE 15 (Blocked); null: 0.0.0.0 and :: for A and " +
      "AAAA, NODATA for other types",
  },
  {
    name: "block-ttl",
    group: "resolver",
    field: "blockTtlMs",
    kind: "duration",
    default: "60s",
    min: 0,
    max: 86_400_000,
    help: "TTL of blocked answers (and of their SOA, for negative caching)",
  },
  {
    name: "blocklist-refresh",
    group: "resolver",
    field: "blocklistRefreshMs",
    kind: "duration",
    default: "24h",
    min: 60_000,
    help: "fetch URL lists again this often (If-None-Match, If-Modified-Since); a failed " +
      "fetch keeps the last good copy, also kept in --state-dir for restarts without network",
  },
  {
    name: "blocklist-max-bytes",
    group: "resolver",
    field: "blocklistMaxBytes",
    kind: "int",
    default: "67108864",
    min: 1024,
    meta: "BYTES",
    help: "largest list accepted from a URL or a file; a larger one is refused (the last good " +
      "copy stays)",
  },
  {
    name: "blocklist-timeout",
    group: "resolver",
    field: "blocklistTimeoutMs",
    kind: "duration",
    default: "60s",
    min: 1000,
    help: "longest a URL list may take to download",
  },
  // End of blocklists and allowlists.
  {
    name: "ddr-name",
    group: "resolver",
    field: "ddrNames",
    kind: "list",
    meta: "NAME",
    help:
      "answer DDR (RFC 9462) _dns.resolver.arpa SVCB with this designated name (a name on the " +
      "certificate; repeatable); unset: DDR off",
  },
  {
    name: "ddr-ipv4-hint",
    group: "resolver",
    field: "ddrIpv4Hints",
    kind: "list",
    meta: "IP",
    help: "ipv4hint in the DDR records (repeatable)",
  },
  {
    name: "ddr-ipv6-hint",
    group: "resolver",
    field: "ddrIpv6Hints",
    kind: "list",
    meta: "IP",
    help: "ipv6hint in the DDR records (repeatable)",
  },
  {
    name: "tenants",
    group: "resolver",
    field: "tenantsFile",
    kind: "string",
    meta: "FILE",
    help: "JSON file of tenant policies (own upstreams, cache, local records; who may use each, " +
      "an id to choose it by)",
  },
  {
    name: "tenant-domain",
    group: "resolver",
    field: "tenantDomain",
    kind: "string",
    meta: "DOMAIN",
    help:
      "DoT and DoQ clients sending SNI <tenant>.DOMAIN choose that tenant, <tenant> being its " +
      "id if it has one (one wildcard certificate)",
  },
  {
    name: "tenant-edns-option",
    group: "resolver",
    field: "tenantEdnsOption",
    kind: "int",
    default: "65011",
    min: 0,
    max: 65535,
    help: "EDNS option code carrying a tenant's id or name (removed before forwarding; 0: off)",
  },
  {
    name: "unknown-tenant",
    group: "resolver",
    field: "unknownTenant",
    kind: "enum",
    choices: ["refuse", "default"],
    default: "refuse",
    help: "a query choosing an unknown tenant, or one its client may not use (both alike), gets " +
      "REFUSED, or the default policy",
  },
  {
    name: "keep-client-subnet",
    group: "resolver",
    field: "keepClientSubnet",
    kind: "bool",
    default: "false",
    help: "forward EDNS Client Subnet to upstreams (stripped by default, for privacy)",
  },
  {
    name: "idle-timeout",
    group: "dot",
    field: "idleTimeoutMs",
    kind: "duration",
    default: "10s",
    min: 1,
    max: 6_553_500,
    help: "close a DoT connection idle this long (RFC 7766); announced via edns-tcp-keepalive",
  },
  {
    name: "dot-server",
    group: "dot",
    field: "dotServer",
    kind: "enum",
    choices: ["node", "native"],
    default: "node",
    help: "DoT listener: node:tls, or Deno.listenTls (less memory per connection; no SNI; no " +
      "PROXY protocol or connection rate limits, as TLS starts at accept; no TCP_NODELAY: one " +
      "query per connection can wait ~40 ms)",
  },
  {
    name: "handshake-timeout",
    group: "dot",
    field: "handshakeTimeoutMs",
    kind: "duration",
    default: "5s",
    min: 1,
    help: "TLS handshake deadline",
  },
  {
    name: "frame-timeout",
    group: "dot",
    field: "frameTimeoutMs",
    kind: "duration",
    default: "5s",
    min: 1,
    help: "max time to receive one message once it has started (slowloris guard); DoQ: also " +
      "to hand over an answer (a client granting no flow-control credit is closed)",
  },
  {
    name: "max-connections-per-ip",
    group: "dot",
    field: "maxConnectionsPerIp",
    kind: "int",
    default: "100",
    min: 0,
    help: "connections one client may hold on a face (IPv6: per /64; 0: no limit): the client " +
      "a PROXY header names; none for a --trusted-proxy-from proxy",
  },
  {
    name: "proxy-protocol-from",
    group: "dot",
    field: "proxyProtocolFrom",
    kind: "list",
    format: "cidr",
    meta: "CIDR",
    help: "peers (load balancers) that must open DoT and DoH connections with a PROXY protocol " +
      "v1/v2 header, whose address then counts as the client's; from others a header is " +
      "refused (repeatable; not with --dot-server native)",
  },
  {
    name: "connection-rate-limit",
    group: "dot",
    field: "connectionRateLimit",
    kind: "int",
    default: "0",
    min: 0,
    help: "new connections per second per client address (IPv6: per /64), per face (DoT, DoH, " +
      "DoQ); past it closed at once (0: off; none for a --trusted-proxy-from proxy)",
  },
  {
    name: "connection-rate-burst",
    group: "dot",
    field: "connectionRateBurst",
    kind: "int",
    computed: true,
    min: 1,
    meta: "N",
    help: "new connections a client may open at once before the rate applies (default: 2 x rate)",
  },
  {
    name: "handshake-rate-limit",
    group: "dot",
    field: "handshakeRateLimit",
    kind: "int",
    default: "0",
    min: 0,
    help: "TLS handshakes per second per client address (IPv6: per /64), per face (DoQ: QUIC " +
      "handshakes); past it closed before the handshake (0: off; none for a " +
      "--trusted-proxy-from proxy)",
  },
  {
    name: "handshake-rate-burst",
    group: "dot",
    field: "handshakeRateBurst",
    kind: "int",
    computed: true,
    min: 1,
    meta: "N",
    help: "TLS handshakes a client may start at once before the rate applies (default: 2 x rate)",
  },
  {
    name: "allow",
    group: "resolver",
    field: "allow",
    kind: "list",
    format: "cidr",
    meta: "CIDR",
    help: "only these client ranges may connect (repeatable; default: everyone)",
  },
  {
    name: "deny",
    group: "resolver",
    field: "deny",
    kind: "list",
    format: "cidr",
    meta: "CIDR",
    help: "these client ranges are refused, even if allowed (repeatable)",
  },
  {
    name: "rate-limit",
    group: "resolver",
    field: "rateLimit",
    kind: "int",
    default: "0",
    min: 0,
    help: "queries per second per client address (IPv6: per /64); past it REFUSED (0: off)",
  },
  {
    name: "rate-limit-burst",
    group: "resolver",
    field: "rateLimitBurst",
    kind: "int",
    computed: true,
    min: 1,
    meta: "N",
    help: "queries a client may send at once before the rate applies (default: 2 x rate)",
  },
  {
    name: "threads",
    group: "runtime",
    field: "threads",
    kind: "int",
    allowAuto: true,
    default: "1",
    min: 1,
    max: 64,
    meta: "N|auto",
    help: "serve on N threads sharing the ports (SO_REUSEPORT); auto: one per CPU core",
  },
  {
    name: "max-connections",
    group: "dot",
    field: "maxConnections",
    kind: "int",
    default: "10000",
    min: 1,
    help: "DoT connections open at once; more are refused",
  },
  {
    name: "max-inflight",
    group: "dot",
    field: "maxInFlight",
    kind: "int",
    default: "128",
    min: 1,
    max: 65535,
    help: "unanswered queries per DoT connection before reading pauses",
  },
  {
    name: "max-frame-size",
    group: "dot",
    field: "maxFrameSize",
    kind: "int",
    default: "65535",
    min: 12,
    max: 65535,
    help: "largest DoT message accepted; larger closes the connection",
  },
  {
    name: "shutdown-grace",
    group: "runtime",
    field: "shutdownGraceMs",
    kind: "duration",
    default: "5s",
    min: 0,
    help: "on SIGINT/SIGTERM, how long in-flight answers get to go out",
  },
  {
    name: "metrics-listen",
    group: "metrics",
    field: "metricsListen",
    kind: "address",
    allowOff: true,
    default: "off",
    meta: "HOST:PORT",
    help: "serve Prometheus /metrics on a separate plain-HTTP listener (off: none)",
  },
  {
    name: "doh-metrics",
    group: "metrics",
    field: "dohMetrics",
    kind: "bool",
    default: "false",
    help: "also serve /metrics on the DoH face (it is public there)",
  },
  {
    name: "state-dir",
    group: "certificate",
    field: "stateDir",
    kind: "string",
    default: ".dotbridge",
    meta: "DIR",
    help: "where the development certificate and the last good copy of each URL list are kept",
  },
  {
    name: "log-level",
    group: "log",
    field: "logLevel",
    kind: "enum",
    choices: ["debug", "info", "warn", "error"],
    default: "info",
    help: "least severe log events written",
  },
  {
    name: "log-format",
    group: "log",
    field: "logFormat",
    kind: "enum",
    choices: ["logfmt", "json"],
    default: "logfmt",
    help: "log line format (stderr)",
  },
  {
    name: "log-queries",
    group: "log",
    field: "logQueries",
    kind: "bool",
    default: "false",
    help: "log every query with its name and client address (off: privacy)",
  },
  // --- observe: query log, dnstap (docs/observability.md) ---
  {
    name: "query-log",
    group: "log",
    field: "queryLog",
    kind: "string",
    meta: "PATH|-",
    help: "write one JSON line per answered query to this file (- : standard output); off " +
      "unless set. Never delays an answer: lines a slow disk cannot take are dropped and counted",
  },
  {
    name: "query-log-client",
    group: "log",
    field: "queryLogClient",
    kind: "enum",
    choices: ["none", "truncated", "hashed", "full"],
    default: "truncated",
    help: "the client in the query log: none, its network (IPv4 /24, IPv6 /56), a keyed hash " +
      "whose key changes every UTC day, or the full address",
  },
  {
    name: "query-log-max-size",
    group: "log",
    field: "queryLogMaxBytes",
    kind: "int",
    default: "104857600",
    min: 0,
    meta: "BYTES",
    help: "rotate the query log file when it would grow past this size (0: never; use logrotate " +
      "and SIGHUP instead)",
  },
  {
    name: "query-log-files",
    group: "log",
    field: "queryLogFiles",
    kind: "int",
    default: "5",
    min: 0,
    max: 1000,
    help: "rotated query log files kept (PATH.1 newest); 0: the file is emptied instead",
  },
  {
    name: "dnstap",
    group: "log",
    field: "dnstap",
    kind: "string",
    meta: "unix:PATH|tcp:HOST:PORT",
    help: "stream dnstap (Frame Streams, bidirectional) to a collector: client queries and " +
      "answers on every face, forwarder queries and answers upstream; off unless set. Never " +
      "delays an answer: a bounded queue, reconnection, drops counted",
  },
  // --- end observe ---
] as const satisfies readonly OptionSpec[];

/** All keys, in `--help` order. */
export const OPTIONS: readonly OptionSpec[] = OPTION_TABLE;

/** How an option is written on the command line: `--listen HOST:PORT`, `--cache`. */
export function flagSyntax(o: OptionSpec): string {
  return o.kind === "bool" ? `--${o.name}` : `--${o.name} ${o.meta ?? o.kind.toUpperCase()}`;
}

/** `upstream-strategy` → `DOTBRIDGE_UPSTREAM_STRATEGY`. */
export function envName(key: string): string {
  return "DOTBRIDGE_" + key.toUpperCase().replaceAll("-", "_");
}
