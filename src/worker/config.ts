/**
 * The Worker's configuration: the same `DOTBRIDGE_*` keys and the same parser as the Deno edge,
 * read from the Worker's env (`[vars]` in `wrangler.toml`, `wrangler secret put`, `--var`).
 *
 * Only {@linkcode WORKER_KEYS} apply; a Worker has no listeners, certificates or files, so the
 * other keys are ignored (and reported). Keys whose loss would silently weaken a promise are
 * refused: `DOTBRIDGE_CONFIG` (no file system), `DOTBRIDGE_UPSTREAM_CA` (a Worker cannot trust a
 * private CA), `DOTBRIDGE_RATE_LIMIT` (isolates share no state). DoT upstreams must be ones
 * `cloudflare:sockets` can authenticate (see `socketsLimitation`).
 *
 * @module
 */
import { envName, OPTIONS } from "../config/options.ts";
import { type Config, ConfigError, parseConfig } from "../config/parse.ts";
import { parseDotUrl } from "../upstream/dot_url.ts";
import { socketsLimitation } from "./sockets_connector.ts";

/**
 * The keys a Worker applies. Every other key of the option table (listeners, certificates,
 * files, connection limits, and features the Worker does not wire up such as the cache or
 * metrics) is ignored when set, and reported.
 */
export const WORKER_KEYS: readonly string[] = [
  "upstream",
  "upstream-strategy",
  "doh-method",
  "upstream-cooldown",
  "attempt-timeout",
  "query-timeout",
  "keep-client-subnet",
  "json-api",
  "allow",
  "deny",
  "log-level",
  "log-format",
  "log-queries",
];

/** Keys a Worker refuses when set (to anything but `0`, for numbers), and why. */
const REFUSED: Readonly<Record<string, string>> = {
  config: "a Worker has no file system; set each key as its own [vars] entry",
  "upstream-ca": "a Worker cannot trust a private CA; upstreams need publicly trusted certificates",
  "rate-limit": "a Worker's isolates share no state, so a per-client limit would not hold; " +
    "use a Cloudflare rate limiting rule instead",
  "rate-limit-burst": "a Worker's isolates share no state, so a per-client limit would not " +
    "hold; use a Cloudflare rate limiting rule instead",
};

/**
 * The groups of {@linkcode Config} a Worker reads, plus what it left out. Keys outside
 * {@linkcode WORKER_KEYS} hold their defaults.
 */
export interface WorkerConfig
  extends Pick<Config, "upstream" | "resolver" | "doh" | "log" | "origin"> {
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
 * config.upstreams; // ["https://dns.example/dns-query"]
 * ```
 */
export function parseWorkerConfig(env: Readonly<Record<string, unknown>>): WorkerConfig {
  const strings: Record<string, string> = {};
  const ignored: string[] = [];
  const unknown: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(PREFIX) || value === undefined || value === null || value === "") {
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
  for (const url of config.upstream.upstreams) {
    if (!/^tls:/i.test(url)) continue;
    const problem = socketsLimitation(parseDotUrl(url));
    if (problem) throw new ConfigError(config.origin.upstream, problem);
  }
  return {
    // No background probes: a Worker has no timers outside a request.
    upstream: { ...config.upstream, healthCheckIntervalMs: 0 },
    resolver: config.resolver,
    doh: config.doh,
    log: config.log,
    origin: config.origin,
    ignored,
    unknown,
  };
}
