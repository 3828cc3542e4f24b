/**
 * The shared cache store: entries kept in Redis (or anything that speaks its GETRANGE/SET PX/DEL)
 * through a narrow {@linkcode RedisConnection} the edge supplies, so this file never touches a
 * runtime or a client library. A lookup never waits longer than a budget (a few ms): past it, or
 * while the connection is down, it is a miss, and a late reply is ignored.
 *
 * ## The value under a key
 *
 * ```
 * byte 0       layout version (2)
 * byte 1       flags: 1 = signed (the value ends in a signature)
 * bytes 2-9    storedAt, float64 big-endian (ms, the middleware's clock: wall time)
 * bytes 10-17  expiresAt, float64 big-endian
 * bytes 18-19  K, the length of the key in bytes (big-endian)
 * bytes 20-    the key the value was written under (UTF-8, K bytes)
 * then         the answer's wire bytes (message ID 0)
 * then         signed only: HMAC-SHA-256 (32 bytes) of every byte before it
 * ```
 *
 * Keys are {@linkcode cacheKey} strings as they are (`dotbridge:v2:...`); a change of this layout
 * changes the version byte and the key prefix.
 *
 * ## Trust
 *
 * Anyone who can write to the Redis can put anything under a key. So a value is served only if
 * it names the very key it was read from (a value copied to another tenant's key, or to the key
 * of the other DO/CD bits or client subnet, is refused), its answer is at most
 * `maxAnswerBytes` (a lookup reads no more than that: `GETRANGE`), and, given a `signer`
 * (`--cache-redis-secret`), its signature over all of that checks out: an unsigned or badly
 * signed value is refused. A refused value is deleted and counted (`rejected`). Entries come back
 * without `info`, so the middleware, or the two-level store, then walks them and clamps their
 * times and TTLs (`trust.ts`): even a signed entry never outlives the cache's longest TTL.
 *
 * Bridges sharing a Redis should keep their clocks in sync (NTP): `storedAt` and `expiresAt` are
 * wall-clock times.
 *
 * @module
 */
import { SIGNATURE_LENGTH } from "./signer.ts";
import type { EntrySigner } from "./signer.ts";
import type { CacheEntry, CacheStore } from "./store.ts";

/**
 * What the store needs of a Redis client. Each method may reject (the store counts it and
 * answers a miss); none may throw synchronously.
 */
export interface RedisConnection {
  /** False while the client is not connected: lookups are misses at once, writes are skipped. */
  readonly ready: boolean;
  /**
   * The first `maxBytes` bytes of the value under `key` (`GETRANGE key 0 maxBytes-1`), `null`
   * (or empty) when absent: a value planted larger costs no more than that to read.
   */
  get(key: string, maxBytes: number): Promise<Uint8Array | null>;
  /** `SET key value PX ttlMs`. */
  set(key: string, value: Uint8Array, ttlMs: number): Promise<unknown>;
  /** `DEL key`. */
  del(key: string): Promise<unknown>;
}

/**
 * Why a Redis operation did not help: a late reply, a failure, too many already waiting, or a
 * value that was not served (not one of ours, not for its key, too large, unsigned or badly
 * signed).
 */
export type RedisTrouble = "timeout" | "error" | "busy" | "rejected";

/** Options of {@linkcode RedisStore}. */
export interface RedisStoreOptions {
  connection: RedisConnection;
  /** Longest a lookup waits (ms). Default 5. */
  budgetMs?: number;
  /** Operations allowed in flight at once; more are skipped (a stalled Redis). Default 1 000. */
  maxPending?: number;
  /** Counts each trouble (metrics). Must not throw. */
  onTrouble?: (trouble: RedisTrouble) => void;
  /** Signs every value written, and serves only values it signed (`--cache-redis-secret`). */
  signer?: EntrySigner;
  /** Largest answer (wire bytes) written, or read back. Default 65 535 (any DNS message). */
  maxAnswerBytes?: number;
}

/** The layout version (byte 0 of a value). */
export const REDIS_VALUE_VERSION = 2;
/** Byte 1: the value ends in a signature. */
const SIGNED = 1;
/** Version, flags, two times and the key's length. */
const HEADER = 20;
/** The smallest DNS message: a header. */
const MIN_ANSWER = 12;
const MAX_DNS_MESSAGE = 65_535;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * An entry as the bytes kept under `key`. With `signed`, the value ends in
 * {@linkcode SIGNATURE_LENGTH} zero bytes for the signature of the rest (see
 * {@linkcode sealEntry}).
 */
export function encodeEntry(entry: CacheEntry, key: string, signed = false): Uint8Array {
  const keyBytes = utf8.encode(key);
  if (keyBytes.length > 0xffff) throw new RangeError("cache key longer than 65 535 bytes");
  const tail = signed ? SIGNATURE_LENGTH : 0;
  const out = new Uint8Array(HEADER + keyBytes.length + entry.wire.length + tail);
  const view = new DataView(out.buffer);
  out[0] = REDIS_VALUE_VERSION;
  out[1] = signed ? SIGNED : 0;
  view.setFloat64(2, entry.storedAt);
  view.setFloat64(10, entry.expiresAt);
  view.setUint16(18, keyBytes.length);
  out.set(keyBytes, HEADER);
  out.set(entry.wire, HEADER + keyBytes.length);
  return out;
}

/** The value for `entry` under `key`, signed by `signer` when there is one. */
export async function sealEntry(
  entry: CacheEntry,
  key: string,
  signer?: EntrySigner,
): Promise<Uint8Array> {
  const value = encodeEntry(entry, key, signer !== undefined);
  if (!signer) return value;
  const end = value.length - SIGNATURE_LENGTH;
  value.set(await signer.sign(value.subarray(0, end)), end);
  return value;
}

/** A value taken apart by {@linkcode decodeEntry}. */
export interface DecodedValue {
  /** The entry, its answer copied out of the value; no `info` (it is walked later). */
  readonly entry: CacheEntry;
  /** For a signed value: the bytes signed and the signature. */
  readonly signed?: { readonly data: Uint8Array; readonly signature: Uint8Array };
}

/**
 * The entry in `value`, or `undefined` if it is not one of ours (version, flags, length, times),
 * was written under another key than `key`, or holds an answer larger than `maxAnswerBytes`. The
 * answer bytes are not walked here, and a signature is not checked here: that is the store's.
 */
export function decodeEntry(
  value: Uint8Array,
  key: string,
  maxAnswerBytes = MAX_DNS_MESSAGE,
): DecodedValue | undefined {
  if (value.length < HEADER + MIN_ANSWER || value[0] !== REDIS_VALUE_VERSION) return undefined;
  const flags = value[1];
  if ((flags & ~SIGNED) !== 0) return undefined;
  const tail = flags & SIGNED ? SIGNATURE_LENGTH : 0;
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const keyLength = view.getUint16(18);
  const answerStart = HEADER + keyLength;
  const answerLength = value.length - answerStart - tail;
  if (answerLength < MIN_ANSWER || answerLength > maxAnswerBytes) return undefined;
  let writtenUnder: string;
  try {
    writtenUnder = fromUtf8.decode(value.subarray(HEADER, answerStart));
  } catch {
    return undefined;
  }
  if (writtenUnder !== key) return undefined;
  const storedAt = view.getFloat64(2);
  const expiresAt = view.getFloat64(10);
  if (!Number.isFinite(storedAt) || !Number.isFinite(expiresAt) || expiresAt < storedAt) {
    return undefined;
  }
  // A copy into a plain array of its own (a client's Buffer `slice` is a view, and a view would pin
  // the whole reply, or a pool of them, for as long as the entry is kept).
  const wire = new Uint8Array(value.subarray(answerStart, answerStart + answerLength));
  const entry = { wire, storedAt, expiresAt };
  if (!tail) return { entry };
  const end = value.length - SIGNATURE_LENGTH;
  return { entry, signed: { data: value.subarray(0, end), signature: value.subarray(end) } };
}

const ignore = () => {};

/**
 * A {@linkcode CacheStore} over Redis with a time budget per lookup. Safe for concurrent use;
 * one store may serve every policy (keys carry the tenant). It does not own the connection.
 *
 * @example
 * ```ts
 * const redis = new RedisStore({ connection, budgetMs: 5, signer, onTrouble: (t) => count(t) });
 * const store = new TieredStore(new MemoryStore({ budget }), redis, { maxTtlMs });
 * ```
 */
export class RedisStore implements CacheStore {
  readonly name = "redis";
  readonly #conn: RedisConnection;
  readonly #budgetMs: number;
  readonly #maxPending: number;
  readonly #trouble: (t: RedisTrouble) => void;
  readonly #signer: EntrySigner | undefined;
  readonly #maxAnswer: number;
  #pending = 0;

  constructor(options: RedisStoreOptions) {
    this.#conn = options.connection;
    this.#budgetMs = options.budgetMs ?? 5;
    this.#maxPending = options.maxPending ?? 1_000;
    this.#trouble = options.onTrouble ?? ignore;
    this.#signer = options.signer;
    this.#maxAnswer = Math.min(options.maxAnswerBytes ?? MAX_DNS_MESSAGE, MAX_DNS_MESSAGE);
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
    // One byte more than the largest value of ours: a larger one shows itself by its length.
    const most = HEADER + utf8.encode(key).length + this.#maxAnswer + SIGNATURE_LENGTH + 1;
    const reply = this.#start(() => this.#conn.get(key, most));
    if (!reply) return undefined;
    return new Promise((resolve) => {
      let settled = false;
      const finish = (entry: CacheEntry | undefined) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(entry);
      };
      const refuse = () => {
        if (settled) return;
        this.#trouble("rejected");
        this.delete(key); // not one we may serve: dropped (our next write replaces it anyway)
        finish(undefined);
      };
      const timer = setTimeout(() => {
        if (settled) return;
        this.#trouble("timeout");
        finish(undefined);
      }, this.#budgetMs);
      reply.then((value) => {
        if (settled) return;
        if (!value || value.length === 0) return finish(undefined);
        const decoded = decodeEntry(value, key, this.#maxAnswer);
        const signer = this.#signer;
        if (!decoded || (signer && !decoded.signed)) return refuse();
        if (!signer) return finish(decoded.entry);
        const { data, signature } = decoded.signed!;
        signer.verify(data, signature).then(
          (ok) => ok ? finish(decoded.entry) : refuse(),
          refuse,
        );
      }, () => {
        if (settled) return;
        this.#trouble("error");
        finish(undefined);
      });
    });
  }

  /**
   * Sends the write and returns at once: nobody waits on it. An answer larger than
   * `maxAnswerBytes` is not written.
   */
  set(key: string, entry: CacheEntry, keepSeconds: number): void {
    const ttlMs = Math.ceil(keepSeconds * 1000);
    if (!(ttlMs > 0) || entry.wire.length > this.#maxAnswer || !this.#conn.ready) return;
    const write = (value: Uint8Array) =>
      this.#start(() => this.#conn.set(key, value, ttlMs))?.catch(() => this.#trouble("error"));
    if (!this.#signer) {
      write(encodeEntry(entry, key));
      return;
    }
    sealEntry(entry, key, this.#signer).then(write, () => this.#trouble("error"));
  }

  delete(key: string): void {
    this.#start(() => this.#conn.del(key))?.catch(() => this.#trouble("error"));
  }
}
