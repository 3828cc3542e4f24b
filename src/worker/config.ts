/**
 * The Worker's configuration: the same `DOTBRIDGE_*` keys and the same parser as the Deno edge,
 * read from the Worker's env (`[vars]` in `wrangler.toml`, `wrangler secret put`, `--var`).
 *
 * Only {@linkcode WORKER_KEYS} apply; a Worker has no listeners, certificates or files, so the
 * other keys are ignored (and reported). Files come as text instead: the tenants file's JSON in
 * `DOTBRIDGE_TENANTS_JSON`, a local records file (hosts or zone format) in
 * `DOTBRIDGE_LOCAL_RECORDS_TEXT`. Keys whose loss would silently weaken a promise are refused:
 * `DOTBRIDGE_CONFIG`, `DOTBRIDGE_TENANTS` and `DOTBRIDGE_LOCAL_RECORDS` (no file system; the two
 * text variables replace the last two), `DOTBRIDGE_UPSTREAM_CA` (a Worker cannot trust a
 * private CA). DoT upstreams must be ones `cloudflare:sockets` can authenticate (see
 * `socketsLimitation`). `DOTBRIDGE_RATE_LIMIT` applies per isolate: each isolate counts its own
 * clients, so the effective limit is the configured one times the isolates serving a client.
 *
 * @module
 */
import { envName, OPTIONS } from "../config/options.ts";
import { type Config, ConfigError, parseConfig } from "../config/parse.ts";
import { guessableTenantsWarning, parseTenants, type TenantsConfig } from "../config/tenants.ts";
import { DOH_PATH } from "../http/doh_request.ts";
import { parseDotUrl } from "../upstream/dot_url.ts";
import { socketsLimitation } from "./sockets_connector.ts";

/**
 * The keys a Worker applies. Every other key of the option table (listeners, certificates,
 * connection limits, the memory cache's size, health probes) is ignored when set, and reported.
 */
export const WORKER_KEYS: readonly string[] = [
  "upstream",
  "upstream-strategy",
  "route",
  "doh-method",
  "upstream-cooldown",
  "attempt-timeout",
  "query-timeout",
  "keep-client-subnet",
  "json-api",
  "allow",
  "deny",
  "rate-limit",
  "rate-limit-burst",
  "cache",
  "cache-min-ttl",
  "cache-max-ttl",
  "cache-max-entry-bytes",
  "serve-stale",
  "tenant-edns-option",
  "unknown-tenant",
  "doh-metrics",
  "log-level",
  "log-format",
  "log-queries",
  // Blocklists and allowlists (src/worker/filter_lists.ts): https:// URLs or variables' names.
  "blocklist",
  "allowlist",
  "block-response",
  "block-ttl",
  "blocklist-refresh",
  "blocklist-max-bytes",
  "blocklist-timeout",
];

/** The Worker variable holding the tenants file's JSON text (a Worker has no files). */
export const TENANTS_JSON_VAR = "DOTBRIDGE_TENANTS_JSON";
/** The Worker variable holding a local records file's text, hosts or zone format. */
export const LOCAL_RECORDS_TEXT_VAR = "DOTBRIDGE_LOCAL_RECORDS_TEXT";

/** Keys a Worker refuses when set (to anything but `0`, for numbers), and why. */
const REFUSED: Readonly<Record<string, string>> = {
  config: "a Worker has no file system; set each key as its own [vars] entry",
  "upstream-ca": "a Worker cannot trust a private CA; upstreams need publicly trusted certificates",
  tenants: `a Worker has no file system; put the tenants file's JSON in ${TENANTS_JSON_VAR}`,
  "local-records":
    `a Worker has no file system; put the records file's text in ${LOCAL_RECORDS_TEXT_VAR}`,
};

/**
 * The groups of {@linkcode Config} a Worker reads, plus what it left out. Keys outside
 * {@linkcode WORKER_KEYS} hold their defaults; `resolver.localRecords` is
 * {@linkcode LOCAL_RECORDS_TEXT_VAR} (the source's name) when that variable holds records.
 */
export interface WorkerConfig
  extends Pick<Config, "upstream" | "resolver" | "doh" | "log" | "metrics" | "origin"> {
  /** The text of {@linkcode LOCAL_RECORDS_TEXT_VAR}, if set. */
  readonly localRecordsText?: string;
  /**
   * The tenants parsed from {@linkcode TENANTS_JSON_VAR}, if set: the same file and rules as on
   * Deno (`"id"` selects instead of the name, `"allow"` is matched against `CF-Connecting-IP`).
   */
  readonly tenants?: TenantsConfig;
  /** The warning to log when a tenant can be chosen by its name by any client. */
  readonly tenantsWarning?: string;
  /** Env names of keys that were set but do not apply to a Worker (`DOTBRIDGE_LISTEN`, ...). */
  readonly ignored: readonly string[];
  /** `DOTBRIDGE_*` names that are no key at all (typos). */
  readonly unknown: readonly string[];
}

const PREFIX = "DOTBRIDGE_";
const KNOWN = new Map(OPTIONS.map((o) => [envName(o.name), o]));

/** A Worker var as text: strings as is, numbers and booleans printed, string arrays joined. */
function asText(name: string, value: unknown, list: boolean): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (list && Array.isArray(value) && value.every((v) => typeof v === "string")) {
    return value.join(",");
  }
  throw new ConfigError(name, `must be a string (a plain [vars] entry), not ${typeof value}`);
}

/**
 * Reads the Worker's configuration from its env bindings. Bindings that are not `DOTBRIDGE_*`
 * (KV namespaces, other vars) are left alone.
 *
 * @throws {ConfigError} naming the env key, e.g. `DOTBRIDGE_UPSTREAM: "ftp://x" must be https://
 *   or tls:// (http:// only on loopback)`
 *
 * @example
 * ```ts
 * const config = parseWorkerConfig({ DOTBRIDGE_UPSTREAM: "https://dns.example/dns-query" });
 * config.upstream.upstreams; // ["https://dns.example/dns-query"]
 * ```
 */
export function parseWorkerConfig(env: Readonly<Record<string, unknown>>): WorkerConfig {
  const strings: Record<string, string> = {};
  const ignored: string[] = [];
  const unknown: string[] = [];
  const texts: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(PREFIX) || value === undefined || value === null || value === "") {
      continue;
    }
    if (name === TENANTS_JSON_VAR || name === LOCAL_RECORDS_TEXT_VAR) {
      texts[name] = asText(name, value, false);
      continue;
    }
    const spec = KNOWN.get(name);
    if (!spec) {
      unknown.push(name);
      continue;
    }
    if (spec.name in REFUSED && !(spec.kind === "int" && String(value).trim() === "0")) {
      throw new ConfigError(name, REFUSED[spec.name]);
    }
    if (!WORKER_KEYS.includes(spec.name)) {
      ignored.push(name);
      continue;
    }
    strings[name] = asText(name, value, spec.kind === "list");
  }
  const result = parseConfig({ args: [], env: strings });
  if (result.help) throw new Error("unreachable: no arguments, no help");
  const config = result.config;
  checkSockets(config.upstream.upstreams, config.origin.upstream);
  for (const urls of Object.values(config.upstream.routes)) checkSockets(urls, config.origin.route);
  const tenants = texts[TENANTS_JSON_VAR] === undefined
    ? undefined
    : parseTenants(texts[TENANTS_JSON_VAR], TENANTS_JSON_VAR);
  for (const [name, t] of tenants?.tenants ?? []) {
    const where = `${TENANTS_JSON_VAR}: "${name}"`;
    if (t.localRecords !== undefined) {
      throw new ConfigError(
        `${where}: "local-records"`,
        `a Worker has no file system, so a tenant cannot have local records of its own ` +
          `(${LOCAL_RECORDS_TEXT_VAR} serves the default policy only)`,
      );
    }
    checkSockets(t.upstreams, `${where}: "upstream"`);
    for (const urls of Object.values(t.routes ?? {})) checkSockets(urls, `${where}: "routes"`);
  }
  const { tenantEdnsOption } = config.resolver;
  const tenantsWarning = tenants && guessableTenantsWarning(tenants, [
    ...(tenantEdnsOption > 0 ? [`EDNS option ${tenantEdnsOption}`] : []),
    `DoH path ${DOH_PATH}/<name>`,
  ]);
  const localRecordsText = texts[LOCAL_RECORDS_TEXT_VAR];
  return {
    // No background probes: a Worker's timers do no I/O between requests.
    upstream: { ...config.upstream, healthCheckIntervalMs: 0 },
    resolver: {
      ...config.resolver,
      localRecords: localRecordsText === undefined ? undefined : LOCAL_RECORDS_TEXT_VAR,
    },
    doh: config.doh,
    log: config.log,
    metrics: config.metrics,
    origin: config.origin,
    localRecordsText,
    tenants,
    tenantsWarning,
    ignored,
    unknown,
  };
}

/**
 * Refuses DoT upstreams `cloudflare:sockets` cannot authenticate as the URL asks, DoQ upstreams
 * (Workers have no QUIC client) and `udp://` ones (nor UDP sockets).
 */
function checkSockets(upstreams: readonly string[], origin: string): void {
  for (const url of upstreams) {
    if (/^udp:/i.test(url)) {
      throw new ConfigError(
        origin,
        `${url}: Workers have no UDP sockets; use tcp:// for a plain DNS upstream`,
      );
    }
    if (/^quic:/i.test(url)) {
      throw new ConfigError(origin, `${url.split(/[?#]/)[0]}: Workers have no QUIC client (DoQ)`);
    }
    if (!/^tls:/i.test(url)) continue;
    const problem = socketsLimitation(parseDotUrl(url));
    if (problem) throw new ConfigError(origin, problem);
  }
}
