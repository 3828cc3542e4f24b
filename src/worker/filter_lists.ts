/**
 * Blocklists and allowlists in the Worker, which has no files: a source is either an `https://`
 * URL (`http://` on loopback, for `wrangler dev`), fetched on the isolate's first request and kept in the Cache API (`caches.default`, per
 * data centre) so that other isolates start from that copy, or the name of a Worker variable
 * holding the list's text (`DOTBRIDGE_BLOCKLIST = "MY_LIST"` with `MY_LIST = "||ads.example^"`).
 *
 * A URL list is fetched again once `refreshMs` have passed, on a request (a Worker's timers do
 * not run between requests), in the background of that request (`waitUntil`), with
 * `If-None-Match`/`If-Modified-Since`, a size cap and a timeout; a failed fetch keeps what is in
 * force. Requests that arrive before an isolate's first load of a list wait for it, so
 * filtering is on from the first answer. A Worker has 128 MB: a million names take ~10 MB in
 * force, and a download's text passes through in chunks, once for the set and once for the
 * Cache API copy.
 *
 * @module
 */
import { ConfigError } from "../config/parse.ts";
import {
  buildList,
  DomainSet,
  type FilterList,
  type FilterLists,
  NameHasher,
  parseList,
} from "../filter/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { WorkersCacheLike } from "../cache/workers.ts";
import { messageOf } from "../errors/message_of.ts";
import { fetchList, listName } from "../filter/fetch_list.ts";

/** Options of {@linkcode WorkerFilterLists}. */
export interface WorkerFilterListsOptions {
  /** The Worker's env: variables named as sources hold list text. */
  env: Readonly<Record<string, unknown>>;
  /** Where downloaded lists are kept between isolates; unset: nowhere (each isolate fetches). */
  cache?: WorkersCacheLike;
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  refreshMs: number;
  maxBytes: number;
  timeoutMs: number;
  logger?: Logger;
  /** Told of each list put in force, with its entry count. */
  onLoaded?: (list: string, entries: number, skipped: number) => void;
  /** Told of each failed download. */
  onFailed?: (list: string) => void;
  /** Milliseconds clock. Default `Date.now`. */
  now?: () => number;
}

/** Lets other requests of the isolate run between slices of a build. */
const pause = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** The synthetic origin of the Cache API keys of list copies; never fetched. */
const COPY_ORIGIN = "https://dotbridge-lists.cache.invalid";
const FETCHED_AT = "x-dotbridge-fetched-at";
/** How long the Cache API may keep a copy: long past a refresh, so a failing origin is bridged. */
const COPY_MAX_AGE_S = 30 * 86_400;

class WorkerList implements FilterList {
  set: DomainSet | undefined;
  fetchedAt = 0;
  etag?: string;
  lastModified?: string;
  /** The first load, while it runs. */
  first?: Promise<void>;
  refreshing?: Promise<void>;

  constructor(readonly name: string, readonly source: string, readonly url: boolean) {}
}

/**
 * The lists of one Worker configuration, by source.
 *
 * @example
 * ```ts
 * const lists = new WorkerFilterLists({ env, cache: caches.default, refreshMs, maxBytes,
 *   timeoutMs });
 * const resolver = buildResolver(config, { ...deps, filterLists: lists });
 * // per request:
 * await lists.ready(ctx);
 * ```
 */
export class WorkerFilterLists implements FilterLists {
  readonly hasher = new NameHasher();
  readonly #options: WorkerFilterListsOptions;
  readonly #lists = new Map<string, WorkerList>();
  readonly #now: () => number;

  constructor(options: WorkerFilterListsOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The list of `source`: a variable's text is parsed now; a URL is fetched on the first
   * {@linkcode ready}.
   *
   * @throws {ConfigError} for a variable that is not set, or a URL that is not `http(s)://`
   */
  list(source: string): FilterList {
    let list = this.#lists.get(source);
    if (list) return list;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) {
      // The configuration checked it: https://, or http:// on loopback (wrangler dev).
      if (!/^https?:\/\//i.test(source)) {
        throw new ConfigError(source.replace(/[?#].*$/, ""), "a Worker fetches lists by https://");
      }
      list = new WorkerList(listName(source), source, true);
    } else {
      const text = this.#options.env[source];
      if (typeof text !== "string") {
        throw new ConfigError(
          source,
          "names no Worker variable holding a list (a source is an https:// URL or a variable)",
        );
      }
      list = new WorkerList(source, source, false);
      const { set, stats } = parseList(text, this.hasher);
      list.set = set;
      this.#loaded(list, set, stats.skipped);
    }
    this.#lists.set(source, list);
    return list;
  }

  /**
   * Resolves once every URL list has had its first load in this isolate (at once when they
   * have); starts a background refresh of any list due for one, handed to `waitUntil`.
   */
  ready(ctx?: { waitUntil(promise: Promise<unknown>): void }): Promise<void> | undefined {
    let waiting: Promise<void>[] | undefined;
    for (const list of this.#lists.values()) {
      if (!list.url) continue; // a variable's text: loaded at once
      if (list.set === undefined) {
        list.first ??= this.#firstLoad(list).finally(() => list.first = undefined);
        (waiting ??= []).push(list.first);
      } else if (
        !list.refreshing && this.#now() - list.fetchedAt >= this.#options.refreshMs
      ) {
        list.refreshing = this.#download(list).catch((e) => this.#failed(list, e))
          .finally(() => list.refreshing = undefined);
        ctx?.waitUntil(list.refreshing);
      }
    }
    return waiting && Promise.all(waiting).then(() => {});
  }

  #loaded(list: WorkerList, set: DomainSet, skipped: number): void {
    this.#options.logger?.info("filter list loaded", {
      list: list.name,
      entries: set.size,
      skipped,
    });
    this.#options.onLoaded?.(list.name, set.size, skipped);
  }

  #failed(list: WorkerList, error: unknown): void {
    this.#options.logger?.warn("filter list download failed, keeping the previous copy", {
      list: list.name,
      error: messageOf(error).replace(/\bhttps?:\/\/[^\s)"']+/gi, list.name),
    });
    this.#options.onFailed?.(list.name);
  }

  #copyKey(list: WorkerList): string {
    return `${COPY_ORIGIN}/${encodeURIComponent(list.source)}`;
  }

  /** From the Cache API's copy when there is one (fetched anew when stale), else downloaded. */
  async #firstLoad(list: WorkerList): Promise<void> {
    const cache = this.#options.cache;
    try {
      const copy = await cache?.match(this.#copyKey(list));
      if (copy?.body) {
        const { set, stats } = await buildList(
          copy.body.pipeThrough(new TextDecoderStream()),
          this.hasher,
          { pause },
        );
        list.set = set;
        list.fetchedAt = Number(copy.headers.get(FETCHED_AT)) || 0;
        list.etag = copy.headers.get("etag") ?? undefined;
        list.lastModified = copy.headers.get("last-modified") ?? undefined;
        this.#loaded(list, set, stats.skipped);
        return; // a stale copy is refreshed by the next ready()
      }
    } catch (e) {
      this.#options.logger?.warn("filter list copy unusable, downloading it", {
        list: list.name,
        error: messageOf(e),
      });
    }
    try {
      await this.#download(list);
    } catch (e) {
      this.#failed(list, e);
      list.set ??= DomainSet.empty(); // in force as empty; retried at the next refresh time
      list.fetchedAt = this.#now() - this.#options.refreshMs + 60_000;
    }
  }

  /** One conditional download; the new set and the Cache API copy replace the old ones. */
  async #download(list: WorkerList): Promise<void> {
    const { maxBytes, timeoutMs, cache } = this.#options;
    const got = await fetchList(list.source, {
      fetch: this.#options.fetch ?? fetch,
      validators: list.set ? list : undefined,
      maxBytes,
      signal: AbortSignal.timeout(timeoutMs),
      declaredTooLarge: (length) => `${length} bytes, over the ${maxBytes}-byte cap`,
      countedTooLarge: () => `over the ${maxBytes}-byte cap`,
    });
    if (got.unchanged) {
      list.fetchedAt = this.#now();
      return;
    }
    const body = got.body;
    const { etag, lastModified } = got.validators;
    const [toParse, toCache] = cache ? body.tee() : [body, undefined];
    const fetchedAt = this.#now();
    const copyHeaders: Record<string, string> = {
      "cache-control": `max-age=${COPY_MAX_AGE_S}`,
      [FETCHED_AT]: String(fetchedAt),
    };
    if (etag) copyHeaders.etag = etag;
    if (lastModified) copyHeaders["last-modified"] = lastModified;
    const put = toCache &&
      cache!.put(this.#copyKey(list), new Response(toCache, { headers: copyHeaders }));
    const { set, stats } = await buildList(
      toParse.pipeThrough(new TextDecoderStream()),
      this.hasher,
      { pause },
    );
    await put?.catch((e) =>
      this.#options.logger?.warn("filter list not kept in the Cache API", {
        list: list.name,
        error: messageOf(e),
      })
    );
    list.set = set;
    list.fetchedAt = fetchedAt;
    list.etag = etag;
    list.lastModified = lastModified;
    this.#loaded(list, set, stats.skipped);
  }
}
