/**
 * Tenants: named policies (their own upstreams, cache switch and local records), read from the
 * JSON file named by `--tenants`.
 *
 * ```json
 * {
 *   "default": "home",
 *   "tenants": {
 *     "home": { "upstream": ["https://cloudflare-dns.com/dns-query"] },
 *     "kids": {
 *       "upstream": ["https://family.cloudflare-dns.com/dns-query"],
 *       "upstream-strategy": "failover",
 *       "cache": true,
 *       "local-records": "/etc/dotbridge/kids.hosts",
 *       "allow": ["192.168.1.0/24", "2001:db8:1::/48"],
 *       "blocklist": ["https://lists.example/ads.txt", "/etc/dotbridge/kids-extra.txt"],
 *       "allowlist": ["/etc/dotbridge/kids-allow.txt"],
 *       "block-response": "null",
 *       "block-ttl": "5m"
 *     },
 *     "work": {
 *       "upstream": ["https://dns.example/dns-query"],
 *       "routes": { "corp.example": ["tls://10.0.0.53#dns.corp.example"] },
 *       "id": "9y65g5srsm",
 *       "query-log": false
 *     }
 *   }
 * }
 * ```
 *
 * `"routes"` sends names under a suffix to other upstreams (split DNS), as `--route` does for
 * the global policy; a tenant without it uses the global routes, and `"routes": {}` none.
 *
 * A client chooses a tenant by a selector (the SNI's first label, the DoH path, an EDNS option):
 * the tenant's `"id"` when it has one, else its name. With an id the name selects nothing: the
 * name stays the operator's (metric labels, the `"default"` key), the id is what clients are
 * given. `"allow"` limits the clients that may use a tenant, however they choose it.
 * `"blocklist"`, `"allowlist"`, `"block-response"` and `"block-ttl"` replace the global
 * `--blocklist`, `--allowlist`, `--block-response` and `--block-ttl` for the tenant; left out,
 * the global ones apply (`"blocklist": []` turns blocking off for it).
 *
 * @module
 */
import { ConfigError } from "./error.ts";
import {
  checkCidrs,
  checkListSource,
  checkUpstream,
  parseDuration,
  parseRoutes,
} from "./values.ts";
import { BLOCK_RESPONSES, type BlockResponse, MAX_BLOCK_TTL } from "../filter/blocked_answer.ts";
import { messageOf } from "../errors/message_of.ts";

/** One tenant's policy. */
export interface TenantSpec {
  /** Its name in the file: metric labels, the cache partition, the `"default"` key. */
  readonly name: string;
  /** What a client sends to choose it: its `"id"` when it has one, else its name. */
  readonly selector: string;
  /** An opaque identifier that selects the tenant instead of its name. */
  readonly id?: string;
  /** The clients (CIDR ranges) that may use this tenant; unset: every client. */
  readonly allow?: readonly string[];
  readonly upstreams: readonly string[];
  readonly upstreamStrategy: "failover" | "round-robin" | "fastest" | "race";
  readonly cache: boolean;
  /** A hosts or zone file answered without an upstream. */
  readonly localRecords?: string;
  /** False: this tenant's queries stay out of the query log (`"query-log": false`). */
  readonly queryLog: boolean;
  // Filtering (docs/filtering.md): each unset means the global setting.
  /** Blocklist sources (file paths, URLs); `[]`: none. */
  readonly blocklists?: readonly string[];
  /** Allowlist sources; `[]`: none. */
  readonly allowlists?: readonly string[];
  /** What a blocked query gets. */
  readonly blockResponse?: BlockResponse;
  /** TTL of blocked answers, in milliseconds. */
  readonly blockTtlMs?: number;
  /** Routes by name (suffix → upstream URLs); unset: the global `--route`s. */
  readonly routes?: Readonly<Record<string, readonly string[]>>;
}

/** The parsed tenants file. */
export interface TenantsConfig {
  /** The tenant for queries that name none; unset: the global configuration answers them. */
  readonly defaultTenant?: string;
  readonly tenants: ReadonlyMap<string, TenantSpec>;
}

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** An id: one DNS label (it may be an SNI label) and a path segment, too long to guess. */
const ID = /^[a-z0-9]{8,63}$/;
const STRATEGIES = ["failover", "round-robin", "fastest", "race"] as const;
/** A tenant's filtering keys (`filterKeys` reads them). */
const FILTER_KEYS = ["blocklist", "allowlist", "block-response", "block-ttl"];
const KEYS = new Set([
  "upstream",
  "upstream-strategy",
  "cache",
  "local-records",
  "id",
  "allow",
  "query-log",
  ...FILTER_KEYS,
  "routes",
]);

/**
 * Parses a tenants file.
 *
 * @param origin how errors name the file, e.g. `tenants.json`
 * @throws {ConfigError} naming the file and the key: `tenants.json: "kids"."upstream": ...`
 *
 * @example
 * ```ts
 * const t = parseTenants('{"tenants":{"kids":{"upstream":["https://a/dns-query"]}}}', "t.json");
 * t.tenants.get("kids")?.upstreams; // ["https://a/dns-query"]
 * ```
 */
export function parseTenants(text: string, origin: string): TenantsConfig {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(origin, `not valid JSON: ${messageOf(e)}`);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new ConfigError(origin, 'must hold an object with "tenants"');
  }
  const root = data as Record<string, unknown>;
  for (const key of Object.keys(root)) {
    if (key !== "tenants" && key !== "default") {
      throw new ConfigError(`${origin}: "${key}"`, "unknown key");
    }
  }
  const list = root.tenants;
  if (typeof list !== "object" || list === null || Array.isArray(list)) {
    throw new ConfigError(`${origin}: "tenants"`, "must be an object of tenant names to policies");
  }
  const tenants = new Map<string, TenantSpec>();
  for (const [name, value] of Object.entries(list)) {
    const where = `${origin}: "${name}"`;
    if (!NAME.test(name)) {
      throw new ConfigError(where, "a tenant name is one DNS label: a-z, 0-9 and inner hyphens");
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new ConfigError(where, "must be an object");
    }
    const spec = value as Record<string, unknown>;
    for (const key of Object.keys(spec)) {
      if (!KEYS.has(key)) throw new ConfigError(`${where}."${key}"`, "unknown key");
    }
    const upstreams = typeof spec.upstream === "string" ? [spec.upstream] : spec.upstream;
    if (
      !Array.isArray(upstreams) || upstreams.length === 0 ||
      !upstreams.every((u) => typeof u === "string")
    ) {
      throw new ConfigError(`${where}."upstream"`, "needs one or more upstream URLs");
    }
    for (const u of upstreams as string[]) checkUpstream(u, `${where}."upstream"`);
    const strategy = spec["upstream-strategy"] ?? "failover";
    if (!STRATEGIES.includes(strategy as typeof STRATEGIES[number])) {
      throw new ConfigError(
        `${where}."upstream-strategy"`,
        `"${strategy}" is not one of ${STRATEGIES.join(", ")}`,
      );
    }
    const cache = spec.cache ?? true;
    if (typeof cache !== "boolean") {
      throw new ConfigError(`${where}."cache"`, "must be true or false");
    }
    // --- observe: a tenant's queries may stay out of the query log ---
    const queryLog = spec["query-log"] ?? true;
    if (typeof queryLog !== "boolean") {
      throw new ConfigError(`${where}."query-log"`, "must be true or false");
    }
    // --- end observe ---
    const localRecords = spec["local-records"];
    if (localRecords !== undefined && (typeof localRecords !== "string" || !localRecords)) {
      throw new ConfigError(`${where}."local-records"`, "must be a file path");
    }
    const id = spec.id;
    if (id !== undefined && (typeof id !== "string" || !ID.test(id))) {
      throw new ConfigError(
        `${where}."id"`,
        "must be 8 to 63 lower-case letters and digits (e.g. from `openssl rand -hex 8`)",
      );
    }
    const allow = spec.allow;
    if (
      allow !== undefined &&
      (!Array.isArray(allow) || allow.length === 0 || !allow.every((a) => typeof a === "string"))
    ) {
      throw new ConfigError(
        `${where}."allow"`,
        "must list one or more addresses or CIDR ranges (leave it out to allow every client)",
      );
    }
    const routes = spec.routes === undefined
      ? undefined
      : tenantRoutes(spec.routes, `${where}."routes"`);
    tenants.set(name, {
      name,
      selector: (id as string | undefined) ?? name,
      id: id as string | undefined,
      allow: allow === undefined ? undefined : checkCidrs(allow as string[], `${where}."allow"`),
      upstreams: upstreams as string[],
      upstreamStrategy: strategy as TenantSpec["upstreamStrategy"],
      cache,
      localRecords: localRecords as string | undefined,
      queryLog,
      ...filterKeys(spec, where),
      routes,
    });
  }
  checkIds(tenants, origin);
  const defaultTenant = root.default;
  if (defaultTenant !== undefined) {
    if (typeof defaultTenant !== "string" || !tenants.has(defaultTenant)) {
      throw new ConfigError(`${origin}: "default"`, 'must name a tenant defined in "tenants"');
    }
  }
  return { defaultTenant: defaultTenant as string | undefined, tenants };
}

/** A tenant's filtering keys, checked: lists of sources, a block response, a block TTL. */
function filterKeys(
  spec: Record<string, unknown>,
  where: string,
): Pick<TenantSpec, "blocklists" | "allowlists" | "blockResponse" | "blockTtlMs"> {
  const sources = (key: string): string[] | undefined => {
    const value = typeof spec[key] === "string" ? [spec[key]] : spec[key];
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || !value.every((v) => typeof v === "string" && v !== "")) {
      throw new ConfigError(`${where}."${key}"`, "must list file paths or URLs ([] for none)");
    }
    return value.map((v) => checkListSource(v, `${where}."${key}"`));
  };
  const response = spec["block-response"];
  if (response !== undefined && !BLOCK_RESPONSES.includes(response as BlockResponse)) {
    throw new ConfigError(
      `${where}."block-response"`,
      `"${response}" is not one of ${BLOCK_RESPONSES.join(", ")}`,
    );
  }
  const ttl = spec["block-ttl"];
  let blockTtlMs: number | undefined;
  if (ttl !== undefined) {
    blockTtlMs = typeof ttl === "number" && Number.isInteger(ttl)
      ? ttl * 1000
      : typeof ttl === "string"
      ? parseDuration(ttl)
      : undefined;
    if (blockTtlMs === undefined || blockTtlMs < 0 || blockTtlMs > MAX_BLOCK_TTL * 1000) {
      throw new ConfigError(
        `${where}."block-ttl"`,
        `must be a duration up to 24h ("60s") or whole seconds`,
      );
    }
  }
  return {
    blocklists: sources("blocklist"),
    allowlists: sources("allowlist"),
    blockResponse: response as BlockResponse | undefined,
    blockTtlMs,
  };
}

/**
 * A tenant's `"routes"`: an object of suffixes to an upstream URL or a list of them, checked as
 * `--route` is.
 */
function tenantRoutes(value: unknown, where: string): Record<string, readonly string[]> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(
      where,
      'must be an object of suffixes to upstreams, e.g. {"lan": ' +
        '["udp://192.168.1.1"]}',
    );
  }
  const items: string[] = [];
  for (const [suffix, urls] of Object.entries(value)) {
    const list = typeof urls === "string" ? [urls] : urls;
    if (!Array.isArray(list) || list.length === 0 || !list.every((u) => typeof u === "string")) {
      throw new ConfigError(`${where}."${suffix}"`, "needs one or more upstream URLs");
    }
    if (/[=:/]/.test(suffix)) {
      throw new ConfigError(`${where}."${suffix}"`, "is not a domain name suffix");
    }
    items.push(`${suffix}=${list[0]}`, ...list.slice(1));
  }
  return parseRoutes(items, where);
}

/** Ids are unique and none is a tenant's name (an id must select one tenant, by itself). */
function checkIds(tenants: ReadonlyMap<string, TenantSpec>, origin: string): void {
  const owners = new Map<string, string>();
  for (const t of tenants.values()) {
    if (t.id === undefined) continue;
    const where = `${origin}: "${t.name}"."id"`;
    const other = owners.get(t.id);
    if (other !== undefined) throw new ConfigError(where, `"${t.id}" is also the id of "${other}"`);
    if (tenants.has(t.id)) throw new ConfigError(where, `"${t.id}" is a tenant's name`);
    owners.set(t.id, t.name);
  }
}

/**
 * The tenants any client can choose by name: no `"id"`, no `"allow"`, and not the default
 * tenant (which clients get without choosing it). Names are not secrets (metric labels carry
 * them), so such a tenant's upstreams and local records serve whoever guesses the name.
 *
 * @example
 * ```ts
 * guessableTenants(parseTenants('{"tenants":{"kids":{"upstream":"https://a/q"}}}', "t.json"));
 * // ["kids"]
 * ```
 */
export function guessableTenants(config: TenantsConfig): string[] {
  return [...config.tenants.values()]
    .filter((t) => t.id === undefined && t.allow === undefined && t.name !== config.defaultTenant)
    .map((t) => t.name);
}

/**
 * The start-up warning about {@linkcode guessableTenants}, or `undefined` when there are none or
 * no selector is on. `ways` says how clients choose tenants on this edge, e.g.
 * `["EDNS option 65011", "DoH path"]`.
 */
export function guessableTenantsWarning(
  config: TenantsConfig,
  ways: readonly string[],
): string | undefined {
  const names = guessableTenants(config);
  if (names.length === 0 || ways.length === 0) return undefined;
  return `tenants: ${names.join(", ")} can be selected by name by any client ` +
    `(${ways.join(", ")}); give each an "allow" list or an "id" unless its upstreams ` +
    `and local records are for everyone`;
}

/**
 * The tenant selector in a TLS server name under `domain`: its first label, when the rest is
 * `domain` (`kids.dot.example.net` under `dot.example.net` → `kids`). The label is a tenant's
 * id, or its name when it has none (NextDNS-style `<id>.dns.example`).
 */
export function tenantFromServerName(servername: string, domain: string): string | undefined {
  const name = servername.toLowerCase().replace(/\.$/, "");
  const suffix = "." + domain.toLowerCase().replace(/^\.|\.$/g, "");
  if (!name.endsWith(suffix)) return undefined;
  const label = name.slice(0, -suffix.length);
  return label && !label.includes(".") ? label : undefined;
}
