/**
 * What the resolver builder reads of the configuration, as its own types: the parsed `Config`
 * (`src/config/`) satisfies {@linkcode ResolverOptions} as it is, and so does a test's literal,
 * without the builder knowing the option table.
 *
 * @module
 */
import type { BlockResponse } from "../filter/blocked_answer.ts";
import type { UpstreamSpec } from "../upstream/build.ts";

/** The policy in front of the upstreams (`Config["resolver"]` satisfies it). */
export interface PolicyOptions {
  /** Whether answers are cached. */
  readonly cache: boolean;
  /** Entries per memory store (one store per policy). */
  readonly cacheSize: number;
  /** Bytes every memory store together may hold. */
  readonly cacheMaxBytes: number;
  /** Largest answer cached, in bytes (memory and shared stores). */
  readonly cacheMaxEntryBytes: number;
  readonly cacheMinTtlMs: number;
  /** Longest an answer is kept, and the most TTL a client is told. */
  readonly cacheMaxTtlMs: number;
  /** How long an expired answer may still be served while it is refetched. */
  readonly serveStaleMs: number;
  /** Pass the client's EDNS Client Subnet on (and key the cache by it). */
  readonly keepClientSubnet: boolean;
  /** The global local-records source (a file path on Deno); unset: none. */
  readonly localRecords?: string;
  /** ACL: CIDR ranges allowed (empty: everyone) and denied. */
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  /** Every query is answered (SERVFAIL at worst) within this long. */
  readonly queryTimeoutMs: number;
  /** Queries per second per client (0: off), and the burst. */
  readonly rateLimit: number;
  readonly rateLimitBurst: number;
  /** DDR (RFC 9462): the designated names (empty: off) and their address hints. */
  readonly ddrNames: readonly string[];
  readonly ddrIpv4Hints: readonly string[];
  readonly ddrIpv6Hints: readonly string[];
  /** EDNS option code that carries a tenant selector (0: off). */
  readonly tenantEdnsOption: number;
  /** What a query choosing an unknown or not-allowed tenant gets. */
  readonly unknownTenant: "refuse" | "default";
  // Filtering (src/filter/): unset, as empty lists.
  /** Blocklist sources (what `ResolverDeps.filterLists` takes); unset: none. */
  readonly blocklists?: readonly string[];
  /** Allowlist sources; unset: none. */
  readonly allowlists?: readonly string[];
  /** What a blocked query gets. Default `nxdomain`. */
  readonly blockResponse?: BlockResponse;
  /** TTL of blocked answers. Default 60 s. */
  readonly blockTtlMs?: number;
}

/** One tenant's policy (`TenantSpec` from the tenants file satisfies it). */
export interface TenantPolicy {
  /** What a client sends to choose it: its id when it has one, else its name. */
  readonly selector: string;
  /** The clients (CIDR ranges) that may use it; unset: every client. */
  readonly allow?: readonly string[];
  readonly upstreams: readonly string[];
  readonly upstreamStrategy: UpstreamSpec["upstreamStrategy"];
  readonly cache: boolean;
  readonly localRecords?: string;
  // Filtering: each unset means the global policy's.
  readonly blocklists?: readonly string[];
  readonly allowlists?: readonly string[];
  readonly blockResponse?: BlockResponse;
  readonly blockTtlMs?: number;
  /**
   * Routes by name (suffix → upstream URLs) of this tenant; unset: the global `--route`s (so
   * `{}` turns them off for it).
   */
  readonly routes?: Readonly<Record<string, readonly string[]>>;
}

/** The tenants (`TenantsConfig` satisfies it). */
export interface TenantPolicies {
  /** The name of the tenant for queries that choose none; unset: the global policy. */
  readonly defaultTenant?: string;
  /** By name. */
  readonly tenants: ReadonlyMap<string, TenantPolicy>;
}

/** The plain DNS face's policy (`Config["dns"]` satisfies it). */
export interface PlainDnsOptions {
  /** Without an `allow` list, only these clients (CIDR ranges) may use the plain face. */
  readonly defaultAllow: readonly string[];
}

/** What {@linkcode buildResolver} is built from (`Config` satisfies it). */
export interface ResolverOptions {
  /** The global upstreams (and routes by name) and how they are used. */
  readonly upstream: UpstreamSpec;
  readonly resolver: PolicyOptions;
  /** The plain DNS face's policy; unset: that face answers whoever the ACL lets through. */
  readonly dns?: PlainDnsOptions;
}
