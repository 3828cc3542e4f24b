/**
 * Every configuration key, once: its type, default, environment variable and help text. The
 * parser, `--help` and the README's table all come from this list.
 *
 * @module
 */

/** The kinds of value a key takes. */
export type OptionKind = "string" | "int" | "duration" | "bool" | "list" | "address" | "enum";

/** One configuration key. */
export interface OptionSpec {
  /** The key: `--name` on the command line, `"name"` in the config file. */
  readonly name: string;
  readonly kind: OptionKind;
  /** Default as the user would type it; undefined means unset. */
  readonly default?: string;
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

/** All keys, in `--help` order. */
export const OPTIONS: readonly OptionSpec[] = [
  { name: "config", kind: "string", meta: "FILE", help: "JSON file with any of these keys" },
  {
    name: "listen",
    kind: "address",
    default: "127.0.0.1:8853",
    meta: "HOST:PORT",
    help: "DoT listen address (use 0.0.0.0:853 or [::]:853 in production)",
  },
  {
    name: "cert",
    kind: "string",
    meta: "FILE",
    help: "PEM certificate chain; unset: a development certificate in --state-dir",
  },
  { name: "key", kind: "string", meta: "FILE", help: "PEM private key for --cert" },
  {
    name: "http-listen",
    kind: "address",
    default: "127.0.0.1:8443",
    allowOff: true,
    meta: "HOST:PORT|off",
    help: "DoH (RFC 8484) listen address; off disables the HTTP face",
  },
  {
    name: "http-tls",
    kind: "bool",
    default: "true",
    help: "serve HTTPS with the DoT certificate; false: plain HTTP (behind a TLS reverse proxy)",
  },
  {
    name: "doh-server",
    kind: "enum",
    choices: ["deno", "native"],
    default: "deno",
    help: "DoH listener: Deno.serve (HTTP/1.1 and HTTP/2), or the bridge's own HTTP/2 server " +
      "(faster, connection limits apply; HTTP/2 over TLS only, no SNI)",
  },
  {
    name: "trusted-proxy-header",
    kind: "string",
    meta: "HEADER",
    help: "header with the client address set by a trusted proxy (x-forwarded-for: last entry)",
  },
  {
    name: "json-api",
    kind: "bool",
    default: "true",
    help: "answer the JSON API (application/dns-json, ?name=&type=) on the DoH path",
  },
  {
    name: "upstream",
    kind: "list",
    default: DEFAULT_UPSTREAMS.join(","),
    meta: "URL",
    help: "upstream: DoH https://host/path or DoT tls://host[:port][?pin=...][#name] (repeatable)",
  },
  {
    name: "upstream-strategy",
    kind: "enum",
    choices: ["failover", "round-robin", "fastest", "race"],
    default: "failover",
    help: "how queries are spread over several upstreams",
  },
  {
    name: "upstream-ca",
    kind: "string",
    meta: "FILE",
    help: "PEM CA certificate(s) trusted for upstreams instead of the system roots",
  },
  {
    name: "doh-method",
    kind: "enum",
    choices: ["POST", "GET"],
    default: "POST",
    help: "HTTP method for DoH upstream queries",
  },
  {
    name: "upstream-transport",
    kind: "enum",
    choices: ["http2", "fetch"],
    default: "http2",
    help: "HTTP client for DoH upstreams: the bridge's own HTTP/2 client (about 8x fetch here) " +
      "or Deno's fetch",
  },
  {
    name: "upstream-cooldown",
    kind: "duration",
    default: "30s",
    min: 0,
    help: "how long a failed upstream is passed over",
  },
  {
    name: "attempt-timeout",
    kind: "duration",
    default: "2s",
    min: 1,
    help: "time one upstream gets before the next in the group is tried",
  },
  {
    name: "query-timeout",
    kind: "duration",
    default: "5s",
    min: 1,
    max: 60_000,
    help: "whole-query budget; past it the client gets SERVFAIL",
  },
  {
    name: "health-check-interval",
    kind: "duration",
    default: "5s",
    min: 0,
    help: "probe a failed upstream this often in the background (0: no probes)",
  },
  {
    name: "bootstrap",
    kind: "list",
    meta: "HOST=IP",
    help: "dial IP for an upstream's HOST instead of resolving it (no plain DNS; repeatable)",
  },
  {
    name: "cache",
    kind: "bool",
    default: "true",
    help: "answer repeated questions from memory (LRU, TTLs counted down; --no-cache: off)",
  },
  {
    name: "cache-size",
    kind: "int",
    default: "10000",
    min: 1,
    help: "answers the cache holds at most",
  },
  {
    name: "cache-min-ttl",
    kind: "duration",
    default: "0s",
    min: 0,
    help: "keep answers at least this long, whatever their TTL",
  },
  {
    name: "cache-max-ttl",
    kind: "duration",
    default: "24h",
    min: 0,
    help: "keep answers at most this long, whatever their TTL",
  },
  {
    name: "serve-stale",
    kind: "duration",
    default: "0s",
    min: 0,
    help: "serve answers expired up to this long when upstreams fail (RFC 8767; 0: never)",
  },
  {
    name: "local-records",
    kind: "string",
    meta: "FILE",
    help: "hosts or zone file answered without an upstream (reloaded on change)",
  },
  {
    name: "tenants",
    kind: "string",
    meta: "FILE",
    help: "JSON file of tenant policies (own upstreams, cache, local records)",
  },
  {
    name: "tenant-domain",
    kind: "string",
    meta: "DOMAIN",
    help: "DoT clients naming <tenant>.DOMAIN by SNI get that tenant (wildcard certificate)",
  },
  {
    name: "tenant-edns-option",
    kind: "int",
    default: "65011",
    min: 0,
    max: 65535,
    help: "EDNS option code carrying a tenant name (removed before forwarding; 0: off)",
  },
  {
    name: "unknown-tenant",
    kind: "enum",
    choices: ["refuse", "default"],
    default: "refuse",
    help: "a query naming an unknown tenant gets REFUSED, or the default policy",
  },
  {
    name: "keep-client-subnet",
    kind: "bool",
    default: "false",
    help: "forward EDNS Client Subnet to upstreams (stripped by default, for privacy)",
  },
  {
    name: "idle-timeout",
    kind: "duration",
    default: "10s",
    min: 1,
    max: 6_553_500,
    help: "close a DoT connection idle this long (RFC 7766); announced via edns-tcp-keepalive",
  },
  {
    name: "dot-server",
    kind: "enum",
    choices: ["node", "native"],
    default: "node",
    help: "DoT listener: node:tls, or Deno.listenTls (less memory per connection; no SNI)",
  },
  {
    name: "handshake-timeout",
    kind: "duration",
    default: "5s",
    min: 1,
    help: "TLS handshake deadline",
  },
  {
    name: "frame-timeout",
    kind: "duration",
    default: "5s",
    min: 1,
    help: "max time to receive one message once it has started (slowloris guard)",
  },
  {
    name: "max-connections-per-ip",
    kind: "int",
    default: "100",
    min: 0,
    help: "connections one client address may hold (0: no limit; off behind a proxy header)",
  },
  {
    name: "allow",
    kind: "list",
    meta: "CIDR",
    help: "only these client ranges may connect (repeatable; default: everyone)",
  },
  {
    name: "deny",
    kind: "list",
    meta: "CIDR",
    help: "these client ranges are refused, even if allowed (repeatable)",
  },
  {
    name: "rate-limit",
    kind: "int",
    default: "0",
    min: 0,
    help: "queries per second per client address (IPv6: per /64); past it REFUSED (0: off)",
  },
  {
    name: "rate-limit-burst",
    kind: "int",
    min: 1,
    meta: "N",
    help: "queries a client may send at once before the rate applies (default: 2 x rate)",
  },
  {
    name: "threads",
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
    kind: "int",
    default: "10000",
    min: 1,
    help: "DoT connections open at once; more are refused",
  },
  {
    name: "max-inflight",
    kind: "int",
    default: "128",
    min: 1,
    max: 65535,
    help: "unanswered queries per DoT connection before reading pauses",
  },
  {
    name: "max-frame-size",
    kind: "int",
    default: "65535",
    min: 12,
    max: 65535,
    help: "largest DoT message accepted; larger closes the connection",
  },
  {
    name: "shutdown-grace",
    kind: "duration",
    default: "5s",
    min: 0,
    help: "on SIGINT/SIGTERM, how long in-flight answers get to go out",
  },
  {
    name: "metrics-listen",
    kind: "address",
    allowOff: true,
    default: "off",
    meta: "HOST:PORT",
    help: "serve Prometheus /metrics on a separate plain-HTTP listener (off: none)",
  },
  {
    name: "doh-metrics",
    kind: "bool",
    default: "false",
    help: "also serve /metrics on the DoH face (it is public there)",
  },
  {
    name: "state-dir",
    kind: "string",
    default: ".dotbridge",
    meta: "DIR",
    help: "where the development certificate is kept",
  },
  {
    name: "log-level",
    kind: "enum",
    choices: ["debug", "info", "warn", "error"],
    default: "info",
    help: "least severe log events written",
  },
  {
    name: "log-format",
    kind: "enum",
    choices: ["logfmt", "json"],
    default: "logfmt",
    help: "log line format (stderr)",
  },
  {
    name: "log-queries",
    kind: "bool",
    default: "false",
    help: "log every query with its name and client address (off: privacy)",
  },
];

/** How an option is written on the command line: `--listen HOST:PORT`, `--cache`. */
export function flagSyntax(o: OptionSpec): string {
  return o.kind === "bool" ? `--${o.name}` : `--${o.name} ${o.meta ?? o.kind.toUpperCase()}`;
}

/** `upstream-strategy` → `DOTBRIDGE_UPSTREAM_STRATEGY`. */
export function envName(key: string): string {
  return "DOTBRIDGE_" + key.toUpperCase().replaceAll("-", "_");
}
