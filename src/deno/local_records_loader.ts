/**
 * Loads a local-records file (hosts or zone format) and reloads it when it changes. The first
 * load must succeed (a bad file is a configuration error); a later bad edit is logged and the
 * old set stays in use until the file is fixed.
 *
 * @module
 */
import type { Logger } from "../log/mod.ts";
import { reloadOnChange } from "./file_watch.ts";
import {
  type LocalRecordFormat,
  type LocalRecords,
  type LocalRecordsOptions,
  parseLocalRecords,
} from "../records/mod.ts";
import { messageOf } from "../errors/message_of.ts";

/** Options of {@linkcode watchLocalRecords}. */
export interface LocalRecordsWatchOptions extends LocalRecordsOptions {
  /** The file. `*.hosts` or a file named `hosts` is a hosts file, `*.zone` a zone file. */
  path: string;
  /** Default: by the file's name, else by its content (see `detectFormat`). */
  format?: LocalRecordFormat;
  logger?: Logger;
  /** Wait this long after the last file event before reloading. Default 500 ms. */
  debounceMs?: number;
  /** Told about every new set after a successful reload (not the first load). Must not throw. */
  onChange?: (records: LocalRecords) => void;
  /** Watch the file's directory and reload on changes. Default true. */
  watch?: boolean;
}

/** A loaded file, kept current. */
export interface LocalRecordsWatch {
  /** The set in use: the last one that loaded. */
  current(): LocalRecords;
  /** Reads the file now; resolves true when a new set replaced the old one. Never rejects. */
  reload(): Promise<boolean>;
  /** Stops watching. `current()` keeps answering with the last set. */
  close(): void;
}

function parse(text: string, options: LocalRecordsWatchOptions): LocalRecords {
  return parseLocalRecords(text, {
    format: options.format,
    fileName: options.path,
    defaultTtl: options.defaultTtl,
    authoritativeZones: options.authoritativeZones,
  });
}

/**
 * Loads `path` and watches its directory (so editors that replace the file, and symlink swaps,
 * are seen). Reloads are serialized; one whose text is unchanged does nothing.
 *
 * @throws {Error} `local records <path>: line 12: bad AAAA address "..."` (or the read error)
 *   when the first load fails
 * @example
 * ```ts
 * const local = watchLocalRecords({ path: "/etc/dotbridge/home.zone", logger });
 * const mw = localRecordsMiddleware(() => local.current());
 * // on shutdown:
 * local.close();
 * ```
 */
export function watchLocalRecords(options: LocalRecordsWatchOptions): LocalRecordsWatch {
  const { path, logger } = options;
  let text: string;
  let records: LocalRecords;
  try {
    text = Deno.readTextFileSync(path);
    records = parse(text, options);
  } catch (cause) {
    throw new Error(`local records ${path}: ${messageOf(cause)}`, { cause });
  }
  logger?.info("local records loaded", { path, records: records.size });

  let closed = false;

  async function doReload(reason: string): Promise<boolean> {
    let next: string;
    let parsed: LocalRecords;
    try {
      next = await Deno.readTextFile(path);
      if (next === text) return false;
      parsed = parse(next, options);
    } catch (e) {
      logger?.error("local records reload refused, keeping the old set", {
        path,
        reason,
        error: messageOf(e),
      });
      return false;
    }
    text = next;
    records = parsed;
    logger?.info("local records reloaded", { path, reason, records: parsed.size });
    if (!closed) {
      try {
        options.onChange?.(parsed);
      } catch (e) {
        logger?.warn("local records onChange failed", { path, error: messageOf(e) });
      }
    }
    return true;
  }

  const files = reloadOnChange({
    paths: [path],
    reload: doReload,
    debounceMs: options.debounceMs,
    watch: options.watch,
    what: "local records",
    logger,
  });

  return {
    current: () => records,
    reload: () => files.reload(),
    close() {
      closed = true;
      files.close();
    },
  };
}
