/**
 * Certificate reload without dropping connections: on SIGHUP, or when the certificate or key
 * file changes (Let's Encrypt renewal swaps the `live/` symlinks), read both files, check them,
 * and hand them to the listeners. A bad new pair is refused with a log line; the old one stays.
 *
 * @module
 */
import type { Logger } from "../log/mod.ts";
import { checkCertificatePair } from "./cert_check.ts";

/** Options of {@linkcode watchCertificate}. */
export interface CertificateWatchOptions {
  certPath: string;
  keyPath: string;
  /** Installs a checked pair (e.g. `server.setSecureContext`). */
  apply: (cert: string, key: string, spkiPin: string) => void | Promise<void>;
  logger?: Logger;
  /** Wait this long after the last file event before reloading. Default 500 ms. */
  debounceMs?: number;
  /** Reload on SIGHUP. Default true. */
  sighup?: boolean;
}

/** A running watch. */
export interface CertificateWatch {
  /** Reloads now; resolves true when a new pair was installed. */
  reload(reason?: string): Promise<boolean>;
  close(): void;
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i > 0 ? path.slice(0, i) : i === 0 ? "/" : ".";
}

/**
 * Starts watching the certificate and key files.
 *
 * @example
 * ```ts
 * const watch = watchCertificate({ certPath, keyPath, apply: (c, k) => dot.setCertificate(c, k) });
 * ```
 */
export function watchCertificate(options: CertificateWatchOptions): CertificateWatch {
  const { certPath, keyPath, logger } = options;
  let last = "";
  try {
    last = Deno.readTextFileSync(certPath) + Deno.readTextFileSync(keyPath);
  } catch { /* the first reload reports it */ }
  let running: Promise<boolean> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  async function doReload(reason: string): Promise<boolean> {
    let cert: string, key: string;
    try {
      [cert, key] = [Deno.readTextFileSync(certPath), Deno.readTextFileSync(keyPath)];
    } catch (e) {
      logger?.error("certificate reload refused, keeping the old one", {
        reason,
        error: (e as Error).message,
      });
      return false;
    }
    if (cert + key === last) return false;
    let pin: string;
    try {
      pin = checkCertificatePair(cert, key).spkiPin;
    } catch (e) {
      logger?.error("certificate reload refused, keeping the old one", {
        reason,
        error: (e as Error).message,
      });
      return false;
    }
    try {
      await options.apply(cert, key, pin);
    } catch (e) {
      logger?.error("certificate reload failed, keeping the old one", {
        reason,
        error: (e as Error).message,
      });
      return false;
    }
    last = cert + key;
    logger?.info("certificate reloaded", { reason, spki_pin: pin });
    return true;
  }

  function reload(reason = "manual"): Promise<boolean> {
    const run = (running ?? Promise.resolve(false)).then(() => doReload(reason));
    running = run.finally(() => {
      if (running === run) running = undefined;
    });
    return run;
  }

  const watchedDirs = [...new Set([dirOf(certPath), dirOf(keyPath)])];
  let watcher: Deno.FsWatcher | undefined;
  try {
    watcher = Deno.watchFs(watchedDirs, { recursive: false });
    (async () => {
      for await (const _event of watcher!) {
        if (closed) break;
        if (timer !== undefined) clearTimeout(timer);
        timer = setTimeout(() => {
          timer = undefined;
          void reload("file change");
        }, options.debounceMs ?? 500);
      }
    })().catch((e) => logger?.warn("certificate watch stopped", { error: (e as Error).message }));
  } catch (e) {
    logger?.warn("cannot watch certificate files; SIGHUP still reloads", {
      error: (e as Error).message,
    });
  }
  const onHup = () => void reload("SIGHUP");
  const sighup = options.sighup ?? true;
  if (sighup) Deno.addSignalListener("SIGHUP", onHup);

  return {
    reload,
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      watcher?.close();
      if (sighup) Deno.removeSignalListener("SIGHUP", onHup);
    },
  };
}
