/**
 * Step: the cache's shared level, when `--cache-redis` is set: a Redis connection (in the
 * background: a Redis that is down at start-up is not fatal, the bridge serves from its memory
 * cache and connects when it can) and the store factory the resolver uses, one memory LRU per
 * policy in front of the one shared Redis store.
 *
 * @module
 */
import { MemoryStore } from "../../cache/memory.ts";
import { RedisStore } from "../../cache/redis.ts";
import type { CacheStore } from "../../cache/store.ts";
import { TieredStore } from "../../cache/tiered.ts";
import type { Config } from "../../config/config.ts";
import type { Logger } from "../../log/mod.ts";
import type { BridgeMetrics } from "../../metrics/bridge.ts";
import type { Started } from "./steps.ts";

/** Each policy's cache store, or `undefined` (memory alone) when Redis is not configured. */
export type CacheStoreFor = ((tenant: string | undefined) => CacheStore) | undefined;

/**
 * Connects to `--cache-redis` if set; stopping closes the connection. The Redis client is
 * imported only then: loading it costs ~20 MB of RSS that a bridge without Redis never uses.
 */
export async function startCacheStore(
  config: Config,
  logger: Logger,
  metrics: BridgeMetrics,
): Promise<Started<CacheStoreFor>> {
  const { cacheRedis, cacheRedisBudgetMs, cacheSize, cache } = config.resolver;
  if (!cacheRedis || !cache) return { value: undefined };
  metrics.cacheRedisUp.set({}, 0);
  const { connectRedis } = await import("../redis_client.ts");
  const client = connectRedis({
    url: cacheRedis,
    logger,
    onState: (up) => metrics.cacheRedisUp.set({}, up ? 1 : 0),
  });
  const shared = new RedisStore({
    connection: client,
    budgetMs: cacheRedisBudgetMs,
    onTrouble: (kind) => metrics.cacheRedisTrouble.inc({ kind }),
  });
  return {
    value: () => new TieredStore(new MemoryStore({ maxEntries: cacheSize }), shared),
    stop: () => client.close(),
  };
}
