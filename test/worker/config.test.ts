import { describe, expect, it } from "vitest";
import { DEFAULT_UPSTREAMS } from "../../src/config/options.ts";
import { ConfigError } from "../../src/config/parse.ts";
import { parseWorkerConfig, type WorkerConfig } from "../../src/worker/config.ts";

const PIN = "n76lpRo2fEf6w3mX2J1zYKKI6jBKPlgqVbxMU6SvZL4=";

/** The ConfigError parsing `env` throws (fails the test if it does not throw one). */
function configError(env: Record<string, unknown>): ConfigError {
  try {
    parseWorkerConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

/** Part of a WorkerConfig, group by group. */
type Want = { [K in keyof WorkerConfig]?: Partial<WorkerConfig[K]> };

describe("parseWorkerConfig: env vars to config", () => {
  it("gives the documented defaults for an empty env", () => {
    const c = parseWorkerConfig({});
    expect(c).toMatchObject(
      {
        upstream: {
          upstreams: DEFAULT_UPSTREAMS,
          upstreamStrategy: "failover",
          dohMethod: "POST",
          attemptTimeoutMs: 2_000,
          upstreamCooldownMs: 30_000,
        },
        doh: { jsonApi: true },
        resolver: { queryTimeoutMs: 5_000, keepClientSubnet: false },
        log: { logLevel: "info", logFormat: "logfmt", logQueries: false },
        ignored: [],
        unknown: [],
      } satisfies Want,
    );
  });

  const cases: { env: Record<string, unknown>; want: Want }[] = [
    {
      env: { DOTBRIDGE_UPSTREAM: "https://a.example/dns-query, https://b.example/q" },
      want: { upstream: { upstreams: ["https://a.example/dns-query", "https://b.example/q"] } },
    },
    { env: { DOTBRIDGE_JSON_API: "false" }, want: { doh: { jsonApi: false } } },
    { env: { DOTBRIDGE_QUERY_TIMEOUT: "1500ms" }, want: { resolver: { queryTimeoutMs: 1_500 } } },
    { env: { DOTBRIDGE_QUERY_TIMEOUT: "3s" }, want: { resolver: { queryTimeoutMs: 3_000 } } },
    {
      env: { DOTBRIDGE_UPSTREAM_STRATEGY: "round-robin" },
      want: { upstream: { upstreamStrategy: "round-robin" } },
    },
    { env: { DOTBRIDGE_LOG_QUERIES: "yes" }, want: { log: { logQueries: true } } },
    { env: { DOTBRIDGE_DOH_METHOD: "GET" }, want: { upstream: { dohMethod: "GET" } } },
    { env: { DOTBRIDGE_ATTEMPT_TIMEOUT: "700ms" }, want: { upstream: { attemptTimeoutMs: 700 } } },
    { env: { DOTBRIDGE_UPSTREAM_COOLDOWN: "0" }, want: { upstream: { upstreamCooldownMs: 0 } } },
    {
      env: { DOTBRIDGE_KEEP_CLIENT_SUBNET: "true" },
      want: { resolver: { keepClientSubnet: true } },
    },
    { env: { DOTBRIDGE_LOG_LEVEL: "debug" }, want: { log: { logLevel: "debug" } } },
    { env: { DOTBRIDGE_LOG_FORMAT: "json" }, want: { log: { logFormat: "json" } } },
    {
      env: { DOTBRIDGE_ALLOW: "192.0.2.0/24, 2001:db8::/32", DOTBRIDGE_DENY: "192.0.2.66" },
      want: { resolver: { allow: ["192.0.2.0/24", "2001:db8::/32"], deny: ["192.0.2.66"] } },
    },
    { env: { DOTBRIDGE_RATE_LIMIT: "0" }, want: { resolver: { rateLimit: 0 }, ignored: [] } },
    {
      env: { DOTBRIDGE_RATE_LIMIT: "20" },
      want: { resolver: { rateLimit: 20, rateLimitBurst: 40 } },
    },
    { env: { DOTBRIDGE_CACHE: "false" }, want: { resolver: { cache: false } } },
    { env: { DOTBRIDGE_SERVE_STALE: "1h" }, want: { resolver: { serveStaleMs: 3_600_000 } } },
    {
      env: { DOTBRIDGE_UNKNOWN_TENANT: "default" },
      want: { resolver: { unknownTenant: "default" } },
    },
    {
      env: { DOTBRIDGE_LOCAL_RECORDS_TEXT: "10.0.0.2 nas.home.arpa\n" },
      want: {
        resolver: { localRecords: "DOTBRIDGE_LOCAL_RECORDS_TEXT" },
        localRecordsText: "10.0.0.2 nas.home.arpa\n",
        unknown: [],
      },
    },
    // [vars] may hold TOML numbers, booleans and arrays: they read as the text they stand for.
    { env: { DOTBRIDGE_QUERY_TIMEOUT: "2500ms" }, want: { resolver: { queryTimeoutMs: 2_500 } } },
    { env: { DOTBRIDGE_JSON_API: false }, want: { doh: { jsonApi: false } } },
    {
      env: { DOTBRIDGE_UPSTREAM: ["https://a.example/dns-query", "tls://dns.example"] },
      want: { upstream: { upstreams: ["https://a.example/dns-query", "tls://dns.example"] } },
    },
    // DoT upstreams cloudflare:sockets can authenticate: a name or address dialled as itself.
    {
      env: { DOTBRIDGE_UPSTREAM: "tls://dns.example" },
      want: { upstream: { upstreams: ["tls://dns.example"] } },
    },
    {
      env: { DOTBRIDGE_UPSTREAM: "tls://192.0.2.1:8853,tls://[2001:db8::1]" },
      want: { upstream: { upstreams: ["tls://192.0.2.1:8853", "tls://[2001:db8::1]"] } },
    },
    {
      env: { DOTBRIDGE_UPSTREAM: "tls://dns.example#DNS.example." },
      want: { upstream: { upstreams: ["tls://dns.example#DNS.example."] } },
    },
    {
      env: { DOTBRIDGE_UPSTREAM: "http://127.0.0.1:8053/dns-query" },
      want: { upstream: { upstreams: ["http://127.0.0.1:8053/dns-query"] } },
    },
    // Routes to the Worker's upstream kinds: DoH, DoT and plain DNS over TCP.
    {
      env: {
        DOTBRIDGE_ROUTE: "corp.example=tcp://192.0.2.53,tls://dns.corp.example",
        DOTBRIDGE_UPSTREAM: "tcp://192.0.2.1",
      },
      want: {
        upstream: {
          upstreams: ["tcp://192.0.2.1"],
          routes: { "corp.example": ["tcp://192.0.2.53", "tls://dns.corp.example"] },
        },
      },
    },
  ];
  for (const c of cases) {
    it(`reads ${JSON.stringify(c.env)}`, () => {
      expect(parseWorkerConfig(c.env)).toMatchObject(c.want);
    });
  }

  it("leaves other bindings (KV namespaces, unrelated vars) alone", () => {
    const kv = { get: () => null };
    const c = parseWorkerConfig({ CACHE: kv, API_HOST: "x", DOTBRIDGE_JSON_API: "off" });
    expect(c.doh.jsonApi).toBe(false);
    expect(c.unknown).toEqual([]);
  });

  it("reads the tenants file's JSON from DOTBRIDGE_TENANTS_JSON", () => {
    const c = parseWorkerConfig({
      DOTBRIDGE_TENANTS_JSON: '{"tenants":{"kids":{"upstream":["https://k.example/dns-query"]}}}',
    });
    expect(c.tenants?.tenants.get("kids")?.upstreams).toEqual(["https://k.example/dns-query"]);
    expect(c.unknown).toEqual([]);
  });

  it("ignores, and lists, keys a Worker does not use (listeners, certificates, cache size)", () => {
    const c = parseWorkerConfig({
      DOTBRIDGE_LISTEN: "not an address",
      DOTBRIDGE_CERT: "/etc/ssl/cert.pem",
      DOTBRIDGE_KEY: "/etc/ssl/key.pem",
      DOTBRIDGE_HTTP_LISTEN: "0.0.0.0:443",
      DOTBRIDGE_STATE_DIR: "/var/lib/dotbridge",
      DOTBRIDGE_MAX_CONNECTIONS: "many",
      DOTBRIDGE_CACHE_SIZE: "5000",
      DOTBRIDGE_QUERY_TIMEOUT: "2s",
    });
    expect(c.resolver.queryTimeoutMs).toBe(2_000);
    expect([...c.ignored].sort()).toEqual([
      "DOTBRIDGE_CACHE_SIZE",
      "DOTBRIDGE_CERT",
      "DOTBRIDGE_HTTP_LISTEN",
      "DOTBRIDGE_KEY",
      "DOTBRIDGE_LISTEN",
      "DOTBRIDGE_MAX_CONNECTIONS",
      "DOTBRIDGE_STATE_DIR",
    ]);
  });

  it("lists DOTBRIDGE_* names that are no key", () => {
    expect(parseWorkerConfig({ DOTBRIDGE_UPSTREMA: "https://x/dns-query" }).unknown).toEqual([
      "DOTBRIDGE_UPSTREMA",
    ]);
  });
});

describe("parseWorkerConfig: refusals, naming the key", () => {
  const cases: { env: Record<string, unknown>; key: string; says: RegExp }[] = [
    { env: { DOTBRIDGE_UPSTREAM: "ftp://x" }, key: "DOTBRIDGE_UPSTREAM", says: /ftp:\/\/x.*https/ },
    {
      env: { DOTBRIDGE_UPSTREAM: "http://dns.example/q" },
      key: "DOTBRIDGE_UPSTREAM",
      says: /loopback/,
    },
    { env: { DOTBRIDGE_QUERY_TIMEOUT: "fast" }, key: "DOTBRIDGE_QUERY_TIMEOUT", says: /duration/ },
    { env: { DOTBRIDGE_JSON_API: "maybe" }, key: "DOTBRIDGE_JSON_API", says: /true or false/ },
    {
      env: { DOTBRIDGE_UPSTREAM_STRATEGY: "random" },
      key: "DOTBRIDGE_UPSTREAM_STRATEGY",
      says: /failover, round-robin/,
    },
    { env: { DOTBRIDGE_QUERY_TIMEOUT: { s: 5 } }, key: "DOTBRIDGE_QUERY_TIMEOUT", says: /string/ },
    { env: { DOTBRIDGE_CONFIG: "/dotbridge.json" }, key: "DOTBRIDGE_CONFIG", says: /file system/ },
    { env: { DOTBRIDGE_UPSTREAM_CA: "/ca.pem" }, key: "DOTBRIDGE_UPSTREAM_CA", says: /private CA/ },
    { env: { DOTBRIDGE_TENANTS: "/t.json" }, key: "DOTBRIDGE_TENANTS", says: /TENANTS_JSON/ },
    {
      env: { DOTBRIDGE_LOCAL_RECORDS: "/home.zone" },
      key: "DOTBRIDGE_LOCAL_RECORDS",
      says: /LOCAL_RECORDS_TEXT/,
    },
    { env: { DOTBRIDGE_TENANTS_JSON: "{" }, key: "DOTBRIDGE_TENANTS_JSON", says: /JSON/ },
    {
      env: {
        DOTBRIDGE_TENANTS_JSON:
          '{"tenants":{"kids":{"upstream":["https://k.example/q"],"local-records":"/k.hosts"}}}',
      },
      key: 'DOTBRIDGE_TENANTS_JSON: "kids": "local-records"',
      says: /no file system/,
    },
    { env: { DOTBRIDGE_ALLOW: "192.0.2.0/33" }, key: "DOTBRIDGE_ALLOW", says: /192\.0\.2\.0\/33/ },
    // No UDP sockets in a Worker: udp:// anywhere is refused, naming where it was.
    {
      env: { DOTBRIDGE_UPSTREAM: "udp://192.0.2.53" },
      key: "DOTBRIDGE_UPSTREAM",
      says: /udp:\/\/192\.0\.2\.53: Workers have no UDP sockets; use tcp:\/\//,
    },
    {
      env: { DOTBRIDGE_ROUTE: "corp.example=udp://192.0.2.53" },
      key: "DOTBRIDGE_ROUTE",
      says: /Workers have no UDP sockets/,
    },
    {
      env: {
        DOTBRIDGE_TENANTS_JSON:
          '{"tenants":{"kids":{"upstream":"https://k.example/q","routes":{"corp.example":"udp://192.0.2.53"}}}}',
      },
      key: 'DOTBRIDGE_TENANTS_JSON: "kids": "routes"',
      says: /Workers have no UDP sockets/,
    },
    {
      env: { DOTBRIDGE_ROUTE: "corp.example=quic://dns.example" },
      key: "DOTBRIDGE_ROUTE",
      says: /no QUIC client/,
    },
    // What cloudflare:sockets cannot do: another name than the one dialled, pins, no checks.
    {
      env: { DOTBRIDGE_UPSTREAM: "https://a.example/dns-query,tls://1.1.1.1#one.one.one.one" },
      key: "DOTBRIDGE_UPSTREAM",
      says:
        /tls:\/\/1\.1\.1\.1:853#one\.one\.one\.one.*authenticates the name it dials.*tls:\/\/one\.one\.one\.one:853/,
    },
    {
      env: { DOTBRIDGE_UPSTREAM: `tls://dns.example?pin=${PIN}` },
      key: "DOTBRIDGE_UPSTREAM",
      says: /cannot check SPKI pins/,
    },
    {
      env: { DOTBRIDGE_UPSTREAM: "tls://dns.example?opportunistic=1" },
      key: "DOTBRIDGE_UPSTREAM",
      says: /opportunistic=1 is not supported/,
    },
    {
      env: { DOTBRIDGE_UPSTREAM: "quic://dns.example#dns.example" },
      key: "DOTBRIDGE_UPSTREAM",
      says: /quic:\/\/dns\.example: Workers have no QUIC client/,
    },
    {
      env: { DOTBRIDGE_UPSTREAM: "tls://dns.example/path" },
      key: "DOTBRIDGE_UPSTREAM",
      says: /path/,
    },
  ];
  for (const c of cases) {
    it(`refuses ${JSON.stringify(c.env)}`, () => {
      const e = configError(c.env);
      expect(e.key).toBe(c.key);
      expect(e.message.startsWith(`${c.key}: `)).toBe(true);
      expect(e.message).toMatch(c.says);
      expect(e.message).not.toContain("\n");
    });
  }
});
