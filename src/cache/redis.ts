/**
 * The shared cache store: entries kept in Redis (or anything that speaks its GET/SET PX/DEL)
 * through a narrow {@linkcode RedisConnection} the edge supplies, so this file never touches a
 * runtime or a client library. A lookup never waits longer than a budget (a few ms): past it, or
 * while the connection is down, it is a miss, and a late reply is ignored.
 *
 * ## The value under a key
 *
 * ```
 * byte 0       layout version (1)
 * bytes 1-8    storedAt, float64 big-endian (ms, the middleware's clock: wall time)
 * bytes 9-16   expiresAt, float64 big-endian
 * bytes 17-    the answer's wire bytes (message ID 0)
 * ```
 *
 * Keys are {@linkcode cacheKey} strings as they are (`dotbridge:v1:...`); a change of this layout
 * changes the version byte and the key prefix. Entries come back without `info`, so the cache
 * middleware walks them and drops one that does not parse or does not answer its key's question
 * (the store contract's trust rule). Bridges sharing a Redis should keep their clocks in sync
 * (NTP): `storedAt` and `expiresAt` are wall-clock times.
 *
 * @module
 */
import type { CacheEntry, CacheStore } from "./store.ts";

/**
 * What the store needs of a Redis client. Each method may reject (the store counts it and
 * answers a miss); none may throw synchronously.
 */
export interface RedisConnection {
  /** False while the client is not connected: lookups are misses at once, writes are skipped. */
  readonly ready: boolean;
  /** `GET key` as bytes, `null` when absent. */
  get(key: string): Promise<Uint8Array | null>;
  /** `SET key value PX ttlMs`. */
  set(key: string, value: Uint8Array, ttlMs: number): Promise<unknown>;
  /** `DEL key`. */
  del(key: string): Promise<unknown>;
}

/** Why a Redis operation did not help: a late reply, a failure, or too many already waiting. */
export type RedisTrouble = "timeout" | "error" | "busy";

/** Options of {@linkcode RedisStore}. */
export interface RedisStoreOptions {
  connection: RedisConnection;
  /** Longest a lookup waits (ms). Default 5. */
  budgetMs?: number;
  /** Operations allowed in flight at once; more are skipped (a stalled Redis). Default 1 000. */
  maxPending?: number;
  /** Counts each trouble (metrics). Must not throw. */
  onTrouble?: (trouble: RedisTrouble) => void;
}

/** The layout version (byte 0 of a value). */
export const REDIS_VALUE_VERSION = 1;
const HEADER = 17;

/** An entry as the bytes kept under its key. */
export function encodeEntry(entry: CacheEntry): Uint8Array {
  const out = new Uint8Array(HEADER + entry.wire.length);
  const view = new DataView(out.buffer);
  out[0] = REDIS_VALUE_VERSION;
  view.setFloat64(1, entry.storedAt);
  view.setFloat64(9, entry.expiresAt);
  out.set(entry.wire, HEADER);
  return out;
}

/**
 * The entry in `value`, or `undefined` if it is not one of ours (version, length, times). The
 * answer bytes are not checked here (only their size: a DNS message is at most 65 535 bytes): the
 * middleware walks them (no `info` is returned).
 */
export function decodeEntry(value: Uint8Array): CacheEntry | undefined {
  if (value.length < HEADER + 12 || value.length > HEADER + 65_535) return undefined;
  if (value[0] !== REDIS_VALUE_VERSION) return undefined;
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const storedAt = view.getFloat64(1);
  const expiresAt = view.getFloat64(9);
  if (!Number.isFinite(storedAt) || !Number.isFinite(expiresAt) || expiresAt < storedAt) {
    return undefined;
  }
  // A copy into a plain array: a client's Buffer `slice` is a view, and hits copy from `wire`.
  return { wire: new Uint8Array(value.subarray(HEADER)), storedAt, expiresAt };
}

const ignore = () => {};

/**
 * A {@linkcode CacheStore} over Redis with a time budget per lookup. Safe for concurrent use;
 * one store may serve every policy (keys carry the tenant). It does not own the connection.
 *
 * @example
 * ```ts
 * const redis = new RedisStore({ connection, budgetMs: 5, onTrouble: (t) => count(t) });
 * const store = new TieredStore(new MemoryStore(), redis);
 * ```
 */
export class RedisStore implements CacheStore {
  readonly name = "redis";
  readonly #conn: RedisConnection;
  readonly #budgetMs: number;
  readonly #maxPending: number;
  readonly #trouble: (t: RedisTrouble) => void;
  #pending = 0;

  constructor(options: RedisStoreOptions) {
    this.#conn = options.connection;
    this.#budgetMs = options.budgetMs ?? 5;
    this.#maxPending = options.maxPending ?? 1_000;
    this.#trouble = options.onTrouble ?? ignore;
  }

  /** Operations sent and not yet answered. */
  get pending(): number {
    return this.#pending;
  }

  /** Counts an operation in flight until it settles; false if none may start now. */
  #start<T>(op: () => Promise<T>): Promise<T> | undefined {
    if (!this.#conn.ready) return undefined;
    if (this.#pending >= this.#maxPending) {
      this.#trouble("busy");
      return undefined;
    }
    let p: Promise<T>;
    try {
      p = op();
    } catch (e) {
      p = Promise.reject(e);
    }
    this.#pending++;
    const done = () => void this.#pending--;
    p.then(done, done);
    return p;
  }

  get(key: string): CacheEntry | undefined | Promise<CacheEntry | undefined> {
    const reply = this.#start(() => this.#conn.get(key));
    if (!reply) return undefined;
    return new Promise((resolve) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        this.#trouble("timeout");
        resolve(undefined);
      }, this.#budgetMs);
      reply.then((value) => {
        if (settled) return;
        clearTimeout(timer);
        const entry = value ? decodeEntry(value) : undefined;
        if (value && !entry) this.delete(key); // not one of ours: dropped
        resolve(entry);
      }, () => {
        if (settled) return;
        clearTimeout(timer);
        this.#trouble("error");
        resolve(undefined);
      });
    });
  }

  /** Sends the write and returns at once: nobody waits on it. */
  set(key: string, entry: CacheEntry, keepSeconds: number): void {
    const ttlMs = Math.ceil(keepSeconds * 1000);
    if (!(ttlMs > 0)) return;
    const value = encodeEntry(entry);
    this.#start(() => this.#conn.set(key, value, ttlMs))?.catch(() => this.#trouble("error"));
  }

  delete(key: string): void {
    this.#start(() => this.#conn.del(key))?.catch(() => this.#trouble("error"));
  }
}
