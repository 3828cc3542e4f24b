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
 *       "local-records": "/etc/dotbridge/kids.hosts"
 *     }
 *   }
 * }
 * ```
 *
 * @module
 */
import { checkUpstream, ConfigError } from "./parse.ts";

/** One tenant's policy. */
export interface TenantSpec {
  readonly name: string;
  readonly upstreams: readonly string[];
  readonly upstreamStrategy: "failover" | "round-robin" | "fastest" | "race";
  readonly cache: boolean;
  /** A hosts or zone file answered without an upstream. */
  readonly localRecords?: string;
}

/** The parsed tenants file. */
export interface TenantsConfig {
  /** The tenant for queries that name none; unset: the global configuration answers them. */
  readonly defaultTenant?: string;
  readonly tenants: ReadonlyMap<string, TenantSpec>;
}

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const STRATEGIES = ["failover", "round-robin", "fastest", "race"] as const;
const KEYS = new Set(["upstream", "upstream-strategy", "cache", "local-records"]);

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
    throw new ConfigError(origin, `not valid JSON: ${(e as Error).message}`);
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
    const localRecords = spec["local-records"];
    if (localRecords !== undefined && (typeof localRecords !== "string" || !localRecords)) {
      throw new ConfigError(`${where}."local-records"`, "must be a file path");
    }
    tenants.set(name, {
      name,
      upstreams: upstreams as string[],
      upstreamStrategy: strategy as TenantSpec["upstreamStrategy"],
      cache,
      localRecords: localRecords as string | undefined,
    });
  }
  const defaultTenant = root.default;
  if (defaultTenant !== undefined) {
    if (typeof defaultTenant !== "string" || !tenants.has(defaultTenant)) {
      throw new ConfigError(`${origin}: "default"`, 'must name a tenant defined in "tenants"');
    }
  }
  return { defaultTenant: defaultTenant as string | undefined, tenants };
}

/**
 * The tenant named by a TLS server name under `domain`: its first label, when the rest is
 * `domain` (`kids.dot.example.net` under `dot.example.net` → `kids`).
 */
export function tenantFromServerName(servername: string, domain: string): string | undefined {
  const name = servername.toLowerCase().replace(/\.$/, "");
  const suffix = "." + domain.toLowerCase().replace(/^\.|\.$/g, "");
  if (!name.endsWith(suffix)) return undefined;
  const label = name.slice(0, -suffix.length);
  return label && !label.includes(".") ? label : undefined;
}
