/**
 * The Redis connection behind `--cache-redis`: `@redis/client` (node-redis 5, no dependencies
 * of its own; runs on Deno's `node:net`/`node:tls`) adapted to the cache's narrow
 * {@linkcode RedisConnection}. It connects in the background and reconnects on its own with
 * backoff; a command while disconnected fails at once (no offline queue), so the store treats
 * it as a miss. One log line per change of state (down, up), never per query; the
 * `dotbridge_cache_redis_up` gauge follows the same state.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createClient, RESP_TYPES } from "@redis/client";
import type { RedisConnection } from "../cache/redis.ts";
import type { Logger } from "../log/mod.ts";

/** Options of {@linkcode connectRedis}. */
export interface RedisClientOptions {
  /** `redis://[user:pass@]host:port/db` or `rediss://...` (checked by the config parser). */
  url: string;
  logger?: Logger;
  /** Told every change of state: true when connected, false when lost. */
  onState?: (up: boolean) => void;
  /** Longest wait for a connection to open (ms). Default 2 000. */
  connectTimeoutMs?: number;
}

/** A connection the edge owns: close it on shutdown. */
export interface RedisClient extends RedisConnection {
  close(): Promise<void>;
}

/** The URL without credentials, for logs. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return "redis";
  }
}

/**
 * Starts connecting to Redis and returns at once; lookups are misses until it is ready.
 *
 * @example
 * ```ts
 * const client = connectRedis({ url: "redis://127.0.0.1:6379/0", logger });
 * const store = new RedisStore({ connection: client, budgetMs: 5 });
 * ```
 */
export function connectRedis(options: RedisClientOptions): RedisClient {
  const { logger } = options;
  const where = redactRedisUrl(options.url);
  const client = createClient({
    url: options.url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: options.connectTimeoutMs ?? 2_000,
      noDelay: true,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), 2_000),
    },
  }).withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });

  let up: boolean | undefined; // undefined: no state yet (the first one is logged too)
  let closing = false;
  const state = (now: boolean, error?: string) => {
    if (up === now || closing) return;
    up = now;
    options.onState?.(now);
    if (now) logger?.info("cache redis up", { redis: where });
    else logger?.warn("cache redis down: using the local cache alone", { redis: where, error });
  };
  client.on("ready", () => state(true));
  client.on("error", (e: Error) => state(false, e?.message));
  client.on("end", () => state(false));
  client.connect().catch(() => {
    // Failures surface as "error" events, and the client keeps retrying.
  });

  return {
    get ready() {
      return client.isReady;
    },
    // GETRANGE, not GET: a value planted larger than any of ours is read only that far.
    get: async (key, maxBytes) => await client.getRange(key, 0, maxBytes - 1) ?? null,
    set: (key, value, ttlMs) =>
      client.set(key, Buffer.from(value.buffer, value.byteOffset, value.byteLength), {
        expiration: { type: "PX", value: ttlMs },
      }),
    del: (key) => client.del(key),
    close: async () => {
      closing = true;
      try {
        if (client.isOpen) await client.close();
        else client.destroy();
      } catch {
        client.destroy();
      }
    },
  };
}
