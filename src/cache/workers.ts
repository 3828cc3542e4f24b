/**
 * A cache store on the Workers Cache API (`caches.default` in workerd): shared by the isolates
 * of one Cloudflare data centre, not across data centres. Each entry is a `Response` holding the
 * answer's wire bytes, with `cache-control: max-age` set to how long the entry can be of use and
 * headers holding the stored and expiry times; the key is a synthetic URL that never goes to
 * the network. The Cache API may drop anything at any time, which the store contract allows.
 *
 * Cloudflare documents that Cache API operations have no effect on `*.workers.dev` deployments
 * (and in dashboard previews): there, every lookup misses and the Worker answers uncached. Serve
 * the Worker on a custom domain for the cache to work.
 *
 * @module
 */
import { DNS_MESSAGE } from "../dns/media_type.ts";
import type { CacheEntry, CacheStore } from "./store.ts";

/** The part of the Workers `Cache` this store uses (`caches.default` has it). */
export interface WorkersCacheLike {
  match(request: Request | string): Promise<Response | undefined>;
  put(request: Request | string, response: Response): Promise<void>;
  delete(request: Request | string): Promise<boolean>;
}

/** Options of {@linkcode WorkersCacheStore}. */
export interface WorkersCacheStoreOptions {
  /** The cache: the Worker edge passes `caches.default`. */
  cache: WorkersCacheLike;
  /** The origin of the synthetic key URLs. Default `https://dotbridge.cache.invalid`. */
  origin?: string;
}

const STORED_AT = "x-dotbridge-stored-at";
const EXPIRES_AT = "x-dotbridge-expires-at";
/** A time (ms) from a header this store wrote, or undefined. */
function timeHeader(response: Response, name: string): number | undefined {
  const text = response.headers.get(name);
  const value = text === null ? NaN : Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/**
 * The Workers Cache API as a {@linkcode CacheStore}. Lookups and writes are asynchronous; a
 * failing lookup is a miss. Entries come back as bytes only, so the middleware walks and checks
 * each one it serves.
 *
 * @example
 * ```ts
 * const cache = cacheMiddleware({ store: new WorkersCacheStore({ cache: caches.default }) });
 * ```
 */
export class WorkersCacheStore implements CacheStore {
  readonly name = "workers-cache";
  readonly #cache: WorkersCacheLike;
  readonly #origin: string;

  constructor(options: WorkersCacheStoreOptions) {
    this.#cache = options.cache;
    this.#origin = options.origin ?? "https://dotbridge.cache.invalid";
  }

  /** The synthetic URL an entry is kept under: the key, URL-encoded, one-to-one. */
  urlFor(key: string): string {
    return `${this.#origin}/${encodeURIComponent(key)}`;
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    try {
      const response = await this.#cache.match(this.urlFor(key));
      if (!response) return undefined;
      const storedAt = timeHeader(response, STORED_AT);
      const expiresAt = timeHeader(response, EXPIRES_AT);
      if (storedAt === undefined || expiresAt === undefined) {
        await response.body?.cancel();
        return undefined; // not an entry of this store
      }
      return { wire: new Uint8Array(await response.arrayBuffer()), storedAt, expiresAt };
    } catch {
      return undefined;
    }
  }

  async set(key: string, entry: CacheEntry, keepSeconds: number): Promise<void> {
    const maxAge = Math.max(1, Math.ceil(keepSeconds));
    await this.#cache.put(
      this.urlFor(key),
      new Response(entry.wire.slice(), {
        headers: {
          "content-type": DNS_MESSAGE,
          "cache-control": `max-age=${maxAge}`,
          [STORED_AT]: String(entry.storedAt),
          [EXPIRES_AT]: String(entry.expiresAt),
        },
      }),
    );
  }

  async delete(key: string): Promise<void> {
    await this.#cache.delete(this.urlFor(key));
  }
}
