/**
 * "Reload when these files change": a debounced watch on the files' folders (renewals and
 * editors replace files rather than write them in place, so the folder is what sees it), with
 * reloads run one at a time.
 *
 * @module
 */
import type { Logger } from "../log/mod.ts";
import { messageOf } from "../errors/message_of.ts";

/** Options of {@linkcode reloadOnChange}. */
export interface ReloadOnChangeOptions {
  /** Files whose folders are watched. */
  paths: readonly string[];
  /** Does the reload; resolves true when something new was installed. Must not throw. */
  reload: (reason: string) => Promise<boolean>;
  /** Wait this long after the last event before reloading. Default 500 ms. */
  debounceMs?: number;
  /** Watch at all. Default true. */
  watch?: boolean;
  /** What is watched, for the log line when watching fails. */
  what: string;
  logger?: Logger;
}

/** A running watch. */
export interface ReloadingWatch {
  /** Reloads now (after any reload already running). */
  reload(reason?: string): Promise<boolean>;
  close(): void;
}

/** The folder a path is in. */
export function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i > 0 ? path.slice(0, i) : i === 0 ? "/" : ".";
}

/**
 * Starts watching.
 *
 * @example
 * ```ts
 * const w = reloadOnChange({ paths: [certPath, keyPath], what: "certificate", reload: doReload });
 * ```
 */
export function reloadOnChange(options: ReloadOnChangeOptions): ReloadingWatch {
  let running: Promise<boolean> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  function reload(reason = "manual"): Promise<boolean> {
    const run = (running ?? Promise.resolve(false)).then(() => options.reload(reason));
    running = run.finally(() => {
      if (running === run) running = undefined;
    });
    return run;
  }

  let watcher: Deno.FsWatcher | undefined;
  if (options.watch ?? true) {
    try {
      watcher = Deno.watchFs([...new Set(options.paths.map(dirOf))], { recursive: false });
      (async () => {
        for await (const _event of watcher!) {
          if (closed) break;
          if (timer !== undefined) clearTimeout(timer);
          timer = setTimeout(() => {
            timer = undefined;
            if (!closed) void reload("file change");
          }, options.debounceMs ?? 500);
        }
      })().catch((e) => {
        if (!closed) {
          options.logger?.warn(`${options.what} watch stopped`, { error: messageOf(e) });
        }
      });
    } catch (e) {
      options.logger?.warn(`cannot watch the ${options.what} files; reload still works`, {
        error: messageOf(e),
      });
    }
  }

  return {
    reload,
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      try {
        watcher?.close();
      } catch { /* already closed */ }
    },
  };
}
