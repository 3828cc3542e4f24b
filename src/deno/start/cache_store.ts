/**
 * Step: the cache's shared level, when `--cache-redis` is set: a Redis connection (in the
 * background: a Redis that is down at start-up is not fatal, the bridge serves from its memory
 * cache and connects when it can) and the store factory the resolver uses, one memory LRU per
 * policy (all on one byte budget, `--cache-max-bytes`) in front of the one shared Redis store,
 * which signs and checks entries with `--cache-redis-secret` when it is set.
 *
 * @module
 */
import { ByteBudget } from "../../cache/budget.ts";
import { MemoryStore } from "../../cache/memory.ts";
import { RedisStore } from "../../cache/redis.ts";
import { entrySigner } from "../../cache/signer.ts";
import type { CacheStore } from "../../cache/store.ts";
import { TieredStore } from "../../cache/tiered.ts";
import type { Config } from "../../config/config.ts";
import { ConfigError } from "../../config/parse.ts";
import type { Logger } from "../../log/mod.ts";
import type { BridgeMetrics } from "../../metrics/bridge.ts";
import type { Started } from "./steps.ts";
import { messageOf } from "../../errors/message_of.ts";

/** Each policy's cache store, or `undefined` (memory alone) when Redis is not configured. */
export type CacheStoreFor = ((tenant: string | undefined) => CacheStore) | undefined;

/**
 * Connects to `--cache-redis` if set; stopping closes the connection. The Redis client is
 * imported only then: loading it costs ~20 MB of RSS that a bridge without Redis never uses.
 *
 * @throws {ConfigError} naming `--cache-redis-secret` if the secret cannot be used (the parser
 *   checks its length first; this is WebCrypto refusing it)
 */
export async function startCacheStore(
  config: Config,
  logger: Logger,
  metrics: BridgeMetrics,
): Promise<Started<CacheStoreFor>> {
  const {
    cacheRedis,
    cacheRedisBudgetMs,
    cacheRedisSecret,
    cacheSize,
    cacheMaxBytes,
    cacheMaxEntryBytes,
    cacheMaxTtlMs,
    cache,
  } = config.resolver;
  if (!cacheRedis || !cache) return { value: undefined };
  let signer;
  try {
    signer = cacheRedisSecret === undefined ? undefined : await entrySigner(cacheRedisSecret);
  } catch (e) {
    // The message names the length, never the secret.
    throw new ConfigError(config.origin["cache-redis-secret"], messageOf(e));
  }
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
    signer,
    maxAnswerBytes: cacheMaxEntryBytes,
    onTrouble: (kind) => metrics.cacheRedisTrouble.inc({ kind }),
  });
  const budget = new ByteBudget(cacheMaxBytes);
  return {
    value: () =>
      new TieredStore(new MemoryStore({ maxEntries: cacheSize, budget }), shared, {
        maxTtlMs: cacheMaxTtlMs,
      }),
    stop: () => client.close(),
  };
}
