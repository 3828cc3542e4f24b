/**
 * Steps: the blocklists and allowlists. `startFilterLists` makes the loader before the resolver
 * (which asks it for each source its policies name); `filterListsLoaded` waits, after the
 * resolver, until every list is in force, so the faces open with filtering on. A file that cannot
 * be loaded is a configuration error naming the key; a URL that cannot be fetched (and has no
 * saved copy) is logged and retried.
 *
 * @module
 */
import type { Config } from "../../config/config.ts";
import { ConfigError } from "../../config/parse.ts";
import type { Logger } from "../../log/mod.ts";
import type { BridgeMetrics } from "../../metrics/bridge.ts";
import { DenoFilterLists, ListSourceError } from "../filter_lists.ts";
import type { Started } from "./steps.ts";

/** The loader, wired to the metrics; stopping stops its watches, timers and downloads. */
export function startFilterLists(
  config: Config,
  logger: Logger,
  metrics: BridgeMetrics,
): Started<DenoFilterLists> {
  const { resolver } = config;
  const lists = new DenoFilterLists({
    stateDir: config.certificate.stateDir,
    refreshMs: resolver.blocklistRefreshMs,
    maxBytes: resolver.blocklistMaxBytes,
    timeoutMs: resolver.blocklistTimeoutMs,
    logger,
    events: {
      loaded: (list, entries, stats, atMs) => {
        metrics.filterListEntries.set({ list }, entries);
        metrics.filterListSkipped.set({ list }, stats.skipped);
        metrics.filterListLoaded.set({ list }, atMs / 1000);
      },
      confirmed: (list, atMs) => metrics.filterListLoaded.set({ list }, atMs / 1000),
      failed: (list) => metrics.filterListFailures.inc({ list }),
    },
  });
  return { value: lists, stop: () => lists.close() };
}

/**
 * Waits until every list the resolver asked for has had its first load.
 *
 * @throws {ConfigError} naming `--blocklist`, `--allowlist` or the tenants file for a file list
 *   that cannot be loaded
 */
export async function filterListsLoaded(
  config: Config,
  lists: DenoFilterLists,
): Promise<Started<void>> {
  try {
    await lists.ready();
  } catch (e) {
    if (!(e instanceof ListSourceError)) throw e;
    const { resolver, origin } = config;
    const key = resolver.blocklists.includes(e.source)
      ? origin.blocklist
      : resolver.allowlists.includes(e.source)
      ? origin.allowlist
      : `${resolver.tenantsFile}: "blocklist" or "allowlist"`;
    throw new ConfigError(key, e.message);
  }
  return { value: undefined };
}
