/**
 * Loads the blocklists and allowlists on Deno and keeps them current: one list per source, however
 * many policies name it.
 *
 * - A **file** is read at start (unreadable or over the size cap: a configuration error) and
 *   again when it changes (its folder is watched, as for local records); a failed reload keeps
 *   the list in force.
 * - A **URL** (`https://`, or `http://` on loopback) is fetched at start and every
 *   `refreshMs`, with `If-None-Match` and `If-Modified-Since` from the last answer, a size cap
 *   and a timeout. The last good copy is kept under the state directory, so a restart without
 *   network loads that copy at once (and refreshes in the background); a failed refresh keeps the
 *   list in force and logs one line.
 *
 * Lists are parsed as they stream in and built in time slices (`buildList`), so loading a
 * million names does not stall the queries being answered; the new set replaces the old one only
 * when complete. Log lines name a list by its path, or by a URL's host and path (never its query,
 * which may hold a token); names in the lists are never logged.
 *
 * @module
 */
import {
  buildList,
  DomainSet,
  type FilterList,
  type FilterLists,
  type ListStats,
  NameHasher,
} from "../filter/mod.ts";
import type { Logger } from "../log/mod.ts";
import { messageOf } from "../errors/message_of.ts";
import { type ReloadingWatch, reloadOnChange } from "./file_watch.ts";
import { fetchList, listName } from "../filter/fetch_list.ts";

/** What a list's loads tell the metrics. */
export interface FilterListEvents {
  /** A new set is in force. */
  loaded?(list: string, entries: number, stats: ListStats, atMs: number): void;
  /** A refresh found the list unchanged (HTTP 304). */
  confirmed?(list: string, atMs: number): void;
  /** A load or refresh failed; the previous set (if any) stays in force. */
  failed?(list: string): void;
}

/** Options of {@linkcode DenoFilterLists}. */
export interface DenoFilterListsOptions {
  /** Where the last good copy of each URL list is kept (`<stateDir>/lists/`). */
  stateDir: string;
  /** Fetch URL lists again this often. */
  refreshMs: number;
  /** Largest list accepted, in bytes (a file's size, a download's length). */
  maxBytes: number;
  /** Longest a download may take. */
  timeoutMs: number;
  logger?: Logger;
  events?: FilterListEvents;
  /** The HTTP client. Default `fetch`. */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /** Watch files for changes. Default true. */
  watch?: boolean;
  /** Wait this long after a file event before reloading. Default 500 ms. */
  debounceMs?: number;
  /** The seeds of every set. Default: random. */
  hasher?: NameHasher;
  /** Wall clock in milliseconds (refresh times, metrics). Default `Date.now`. */
  now?: () => number;
}

/** A list's source could not be loaded at start. */
export class ListSourceError extends Error {
  constructor(readonly source: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ListSourceError";
  }
}

/** What the state directory keeps beside a URL list's copy. */
interface CopyMeta {
  etag?: string;
  lastModified?: string;
  /** When the copy was last fetched or confirmed (ms since the epoch). */
  fetchedAt: number;
}

/** After a failed fetch with nothing in force, try again this soon (at most). */
const RETRY_MS = 5 * 60_000;

/**
 * A pause that lets queued I/O and timers run between slices of a build: one turn of the event
 * loop through a message port. Nested `setTimeout(0)`s are clamped to ~4 ms each (a million
 * names took ~0.3 s longer that way, idle); a port message is not. Close it after the build.
 */
function macrotaskPause(): { pause: () => Promise<void>; close(): void } {
  const channel = new MessageChannel();
  return {
    pause: () =>
      new Promise<void>((resolve) => {
        channel.port1.onmessage = () => resolve();
        channel.port2.postMessage(null);
      }),
    close: () => channel.port1.close(),
  };
}

export { listName };

/** One loaded list: what policies read, and how it is kept current. */
class LoadedList implements FilterList {
  readonly name: string;
  readonly source: string;
  readonly url: boolean;
  set: DomainSet | undefined;
  /** The first load's outcome. */
  initial!: Promise<void>;
  timer?: ReturnType<typeof setTimeout>;
  watch?: ReloadingWatch;
  meta?: CopyMeta;
  /** A file's modification time and size at its last load: a reload skips an unchanged file. */
  stamp?: string;
  /** The running load or refresh, so they never overlap. */
  running: Promise<boolean> = Promise.resolve(false);

  constructor(source: string, name: string) {
    this.source = source;
    this.name = name;
    this.url = /^https?:\/\//i.test(source);
  }
}

/**
 * The lists of one bridge, by source. `list()` starts a source's first load; `ready()` waits for
 * every first load; `close()` stops watches, timers and downloads.
 *
 * @example
 * ```ts
 * const lists = new DenoFilterLists({ stateDir, refreshMs: 86_400_000, maxBytes, timeoutMs });
 * const resolver = buildResolver(config, { ...deps, filterLists: lists });
 * await lists.ready(); // every list in force, or a ListSourceError
 * ```
 */
export class DenoFilterLists implements FilterLists {
  readonly hasher: NameHasher;
  readonly #options: DenoFilterListsOptions;
  readonly #lists = new Map<string, LoadedList>();
  readonly #names = new Set<string>();
  readonly #closing = new AbortController();
  readonly #now: () => number;

  constructor(options: DenoFilterListsOptions) {
    this.#options = options;
    this.hasher = options.hasher ?? new NameHasher();
    this.#now = options.now ?? Date.now;
  }

  /** The list of `source`, loading it on first ask. */
  list(source: string): FilterList {
    let list = this.#lists.get(source);
    if (list) return list;
    let name = listName(source);
    for (let n = 2; this.#names.has(name); n++) name = `${listName(source)}#${n}`;
    this.#names.add(name);
    list = new LoadedList(source, name);
    this.#lists.set(source, list);
    list.initial = list.url ? this.#startUrl(list) : this.#startFile(list);
    return list;
  }

  /** Every list asked for so far. */
  get lists(): readonly FilterList[] {
    return [...this.#lists.values()];
  }

  /**
   * Resolves when every list asked for has had its first load: files read, URL lists read from
   * their copy or fetched (a URL that fails with no copy is logged and retried, not fatal).
   *
   * @throws {ListSourceError} for a file that cannot be loaded
   */
  async ready(): Promise<void> {
    await Promise.all([...this.#lists.values()].map((l) => l.initial));
  }

  /**
   * Loads a source again now (a file re-read, a URL fetched); resolves true when a new set
   * replaced the old one. Never rejects.
   */
  refresh(source: string): Promise<boolean> {
    const list = this.#lists.get(source);
    if (!list) return Promise.resolve(false);
    return list.url ? this.#fetchSerialized(list) : this.#reloadFile(list, "manual");
  }

  /** Stops watching, refreshing and downloading; the lists keep their sets. */
  close(): void {
    this.#closing.abort(new Error("filter lists closed"));
    for (const list of this.#lists.values()) {
      if (list.timer !== undefined) clearTimeout(list.timer);
      list.timer = undefined;
      list.watch?.close();
    }
  }

  get #closed(): boolean {
    return this.#closing.signal.aborted;
  }

  /** Parses a stream of bytes into a set, in slices; the set is not installed here. */
  async #build(bytes: ReadableStream<Uint8Array>) {
    const turns = macrotaskPause();
    try {
      return await buildList(bytes.pipeThrough(new TextDecoderStream()), this.hasher, {
        pause: turns.pause,
        signal: this.#closing.signal,
      });
    } finally {
      turns.close();
    }
  }

  #install(list: LoadedList, set: DomainSet, stats: ListStats, started: number, how: string) {
    list.set = set;
    const at = this.#now();
    this.#options.logger?.info(`filter list ${how}`, {
      list: list.name,
      entries: set.size,
      skipped: stats.skipped,
      modifiers: stats.modifiers,
      ms: Math.round(performance.now() - started),
    });
    this.#options.events?.loaded?.(list.name, set.size, stats, at);
  }

  #failed(list: LoadedList, what: string, error: unknown): void {
    // A URL in an error (Deno's fetch quotes it) may carry a token: the list's name instead.
    const message = messageOf(error).replace(/\bhttps?:\/\/[^\s)"']+/gi, list.name);
    this.#options.logger?.warn(`filter list ${what} failed, keeping the previous copy`, {
      list: list.name,
      error: message,
    });
    this.#options.events?.failed?.(list.name);
  }

  // --- files -------------------------------------------------------------------------------

  async #startFile(list: LoadedList): Promise<void> {
    try {
      await this.#loadFile(list, "loaded");
    } catch (e) {
      this.#options.events?.failed?.(list.name);
      throw new ListSourceError(list.source, `cannot load "${list.source}": ${messageOf(e)}`, {
        cause: e,
      });
    }
    if (this.#closed) return;
    list.watch = reloadOnChange({
      paths: [list.source],
      reload: (reason) => this.#reloadFile(list, reason),
      debounceMs: this.#options.debounceMs,
      watch: this.#options.watch,
      what: "filter list",
      logger: this.#options.logger,
    });
  }

  /** Loads the file; resolves false, doing nothing, when `ifChanged` and it has not changed. */
  async #loadFile(list: LoadedList, how: string, ifChanged = false): Promise<boolean> {
    const started = performance.now();
    const file = await Deno.open(list.source);
    try {
      const { size, mtime } = await file.stat();
      const stamp = `${mtime?.getTime()}:${size}`;
      if (ifChanged && stamp === list.stamp) return false;
      if (size > this.#options.maxBytes) {
        throw new RangeError(`${size} bytes, over --blocklist-max-bytes ${this.#options.maxBytes}`);
      }
      const { set, stats } = await this.#build(file.readable);
      list.stamp = stamp;
      this.#install(list, set, stats, started, how);
      return true;
    } finally {
      try {
        file.close();
      } catch { /* closed by its readable */ }
    }
  }

  #reloadFile(list: LoadedList, reason: string): Promise<boolean> {
    const run = list.running.then(async () => {
      if (this.#closed) return false;
      try {
        return await this.#loadFile(list, `reloaded (${reason})`, reason !== "manual");
      } catch (e) {
        if (!this.#closed) this.#failed(list, "reload", e);
        return false;
      }
    });
    list.running = run;
    return run;
  }

  // --- URLs --------------------------------------------------------------------------------

  #copyPath(list: LoadedList): Promise<string> {
    return crypto.subtle.digest("SHA-256", new TextEncoder().encode(list.source)).then((d) =>
      `${this.#options.stateDir}/lists/${new Uint8Array(d).toHex().slice(0, 32)}`
    );
  }

  async #startUrl(list: LoadedList): Promise<void> {
    const path = await this.#copyPath(list);
    let meta: CopyMeta | undefined;
    try {
      meta = JSON.parse(await Deno.readTextFile(`${path}.json`)) as CopyMeta;
      const started = performance.now();
      const file = await Deno.open(`${path}.list`);
      const { set, stats } = await this.#build(file.readable);
      list.meta = meta;
      this.#install(list, set, stats, started, "loaded from its saved copy");
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        this.#options.logger?.warn("filter list copy unusable, fetching it", {
          list: list.name,
          error: messageOf(e),
        });
      }
      list.meta = undefined;
    }
    if (this.#closed) return;
    const age = list.meta ? this.#now() - list.meta.fetchedAt : Infinity;
    if (list.set !== undefined && age < this.#options.refreshMs) {
      this.#schedule(list, this.#options.refreshMs - age);
      return;
    }
    // No copy: the first fetch is awaited (bounded by the timeout). A stale copy: in force now,
    // fetched again in the background.
    const fetched = this.#fetchSerialized(list);
    if (list.set === undefined) await fetched;
  }

  #schedule(list: LoadedList, inMs: number): void {
    if (this.#closed) return;
    if (list.timer !== undefined) clearTimeout(list.timer);
    list.timer = setTimeout(() => {
      list.timer = undefined;
      void this.#fetchSerialized(list);
    }, Math.max(0, Math.min(inMs, 2 ** 31 - 1)));
    Deno.unrefTimer(list.timer);
  }

  #fetchSerialized(list: LoadedList): Promise<boolean> {
    const run = list.running.then(async () => {
      if (this.#closed) return false;
      let changed = false;
      let ok = false;
      try {
        changed = await this.#fetch(list);
        ok = true;
      } catch (e) {
        if (!this.#closed) this.#failed(list, list.set ? "refresh" : "download", e);
      }
      const refresh = this.#options.refreshMs;
      this.#schedule(list, ok || list.set ? refresh : Math.min(refresh, RETRY_MS));
      return changed;
    });
    list.running = run;
    return run;
  }

  /** One conditional download; resolves true when a new set is in force. */
  async #fetch(list: LoadedList): Promise<boolean> {
    const { maxBytes, timeoutMs } = this.#options;
    const started = performance.now();
    const signal = AbortSignal.any([this.#closing.signal, AbortSignal.timeout(timeoutMs)]);
    const got = await fetchList(list.source, {
      fetch: this.#options.fetch ?? fetch,
      validators: list.set ? list.meta : undefined,
      maxBytes,
      signal,
      redirect: "follow",
      declaredTooLarge: (length) => `${length} bytes, over --blocklist-max-bytes ${maxBytes}`,
      countedTooLarge: () => `more than ${maxBytes} bytes (--blocklist-max-bytes)`,
    });
    const path = await this.#copyPath(list);
    if (got.unchanged) {
      const at = this.#now();
      list.meta = { ...list.meta, fetchedAt: at };
      await this.#writeMeta(path, list.meta);
      this.#options.logger?.info("filter list unchanged", { list: list.name });
      this.#options.events?.confirmed?.(list.name, at);
      return false;
    }
    await Deno.mkdir(`${this.#options.stateDir}/lists`, { recursive: true });
    const temp = `${path}.${crypto.randomUUID()}.part`;
    const file = await Deno.open(temp, { write: true, create: true, truncate: true });
    let closed = false;
    try {
      const { set, stats } = await this.#build(got.body.pipeThrough(copyTo(file)));
      file.close();
      closed = true;
      await Deno.rename(temp, `${path}.list`);
      const meta: CopyMeta = { ...got.validators, fetchedAt: this.#now() };
      await this.#writeMeta(path, meta);
      list.meta = meta;
      this.#install(list, set, stats, started, list.set ? "refreshed" : "downloaded");
      return true;
    } finally {
      if (!closed) {
        try {
          file.close();
        } catch { /* already closed */ }
        await Deno.remove(temp).catch(() => {});
      }
    }
  }

  async #writeMeta(path: string, meta: CopyMeta): Promise<void> {
    const temp = `${path}.${crypto.randomUUID()}.json.part`;
    await Deno.writeTextFile(temp, JSON.stringify(meta));
    await Deno.rename(temp, `${path}.json`);
  }
}

/** Passes the bytes on, writing each chunk to `file` first. */
function copyTo(file: Deno.FsFile): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    async transform(chunk, controller) {
      for (let at = 0; at < chunk.length;) at += await file.write(chunk.subarray(at));
      controller.enqueue(chunk);
    },
  });
}
