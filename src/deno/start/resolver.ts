/**
 * Step: the resolver pipeline, with the tenants file and the local records files it names
 * (watched for changes). Kept thin: everything else is `buildResolver`'s.
 *
 * @module
 */
import type { CacheStore } from "../../cache/store.ts";
import type { Config } from "../../config/config.ts";
import { ConfigError } from "../../config/parse.ts";
import { guessableTenantsWarning, type TenantsConfig } from "../../config/tenants.ts";
import { DOH_PATH } from "../../http/doh_request.ts";
import type { Logger } from "../../log/mod.ts";
import type { BridgeMetrics } from "../../metrics/bridge.ts";
import { resolverHooks } from "../../metrics/resolver_hooks.ts";
import { buildResolver, type Resolver, type UpstreamFor } from "../../resolver/build.ts";
import type { DdrPorts } from "../../resolver/ddr.ts";
import type { ExchangeReport } from "../../upstream/instrumented.ts";
import { localRecordsMiddleware } from "../../records/mod.ts";
import type { FilterLists } from "../../filter/policy.ts";
import { type LocalRecordsWatch, watchLocalRecords } from "../local_records_loader.ts";
import type { Started } from "./steps.ts";
import { messageOf } from "../../errors/message_of.ts";

/**
 * Builds the resolver; stopping closes its upstreams and the local records watches. Warns when a
 * tenant can be chosen by its name by any client (no `"id"`, no `"allow"`).
 *
 * @throws {ConfigError} naming `--tenants` or `--local-records` (or the tenants file's key)
 */
export function startResolver(
  config: Config,
  pieces: {
    upstreamFor: UpstreamFor;
    logger: Logger;
    metrics: BridgeMetrics;
    /** Each policy's cache store (see `ResolverDeps.cacheStore`); unset: memory alone. */
    cacheStore?: (tenant: string | undefined) => CacheStore;
    /** The faces' ports for DDR (see `ResolverDeps.ddrPorts`). */
    ddrPorts?: () => DdrPorts;
    // --- observe ---
    /** Queries are traced (query log, dnstap): name the member that answered. */
    traced?: boolean;
    /** Told of every upstream exchange besides the metrics (dnstap). */
    onExchange?: (r: ExchangeReport) => void;
    // --- end observe ---
    /** The blocklists and allowlists (see `ResolverDeps.filterLists`). */
    filterLists?: FilterLists;
    /** The parsed `--tenants` file, if any. */
    tenants?: TenantsConfig;
  },
): Started<Resolver> {
  const { tenantsFile, localRecords: globalRecords } = config.resolver;
  const { tenants } = pieces;
  const warning = tenants && guessableTenantsWarning(tenants, selectorsOf(config));
  if (warning) pieces.logger.warn(warning);
  const watches: LocalRecordsWatch[] = [];
  const closeWatches = () => {
    for (const w of watches) w.close();
  };
  const localRecords = (path: string) => {
    let watch: LocalRecordsWatch;
    try {
      watch = watchLocalRecords({ path, logger: pieces.logger });
    } catch (e) {
      const origin = path === globalRecords
        ? config.origin["local-records"]
        : `${tenantsFile}: "local-records"`;
      throw new ConfigError(origin, messageOf(e));
    }
    watches.push(watch);
    return localRecordsMiddleware(() => watch.current());
  };
  let resolver: Resolver;
  try {
    const { metrics, onExchange, ...rest } = pieces;
    const hooks = resolverHooks(metrics);
    const report = onExchange
      ? (r: ExchangeReport) => {
        hooks.report(r);
        onExchange(r);
      }
      : hooks.report;
    resolver = buildResolver(config, {
      ...rest,
      ...hooks,
      report,
      tenants,
      localRecords,
    });
  } catch (e) {
    closeWatches();
    throw e;
  }
  return {
    value: resolver,
    stop: async () => {
      closeWatches();
      await resolver.close();
    },
  };
}

/** How clients choose a tenant on this bridge, for the start-up warning. */
function selectorsOf(config: Config): string[] {
  const { tenantEdnsOption, tenantDomain } = config.resolver;
  const ways: string[] = [];
  if (tenantEdnsOption > 0) ways.push(`EDNS option ${tenantEdnsOption}`);
  if (config.doh.httpListen) ways.push(`DoH path ${DOH_PATH}/<name>`);
  if (tenantDomain) ways.push(`SNI <name>.${tenantDomain}`);
  return ways;
}
