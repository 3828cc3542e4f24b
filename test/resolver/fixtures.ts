/**
 * The resolver tests' shared literal: every policy option, everything off.
 *
 * @module
 */
import type { PolicyOptions } from "../../src/resolver/options.ts";

/** The policy options with everything off, as a test's literal (the builder's own type). */
export const POLICY: PolicyOptions = {
  cache: false,
  cacheSize: 1_000,
  cacheMaxBytes: 1 << 20,
  cacheMaxEntryBytes: 16_384,
  cacheMinTtlMs: 0,
  cacheMaxTtlMs: 86_400_000,
  serveStaleMs: 0,
  keepClientSubnet: false,
  allow: [],
  deny: [],
  queryTimeoutMs: 2_000,
  rateLimit: 0,
  rateLimitBurst: 0,
  ddrNames: [],
  ddrIpv4Hints: [],
  ddrIpv6Hints: [],
  tenantEdnsOption: 0,
  unknownTenant: "refuse",
};
