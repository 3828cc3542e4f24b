/**
 * Certificate reload without dropping connections: on SIGHUP, or when the certificate or key
 * file changes (Let's Encrypt renewal swaps the `live/` symlinks), read both files, check them,
 * and hand them to the listeners. A bad new pair is refused with a log line; the old one stays.
 *
 * @module
 */
import type { Logger } from "../log/mod.ts";
import { spkiPinFromPem } from "../pki/spki.ts";
import { checkCertificatePair } from "./cert_check.ts";
import { reloadOnChange } from "./file_watch.ts";
import { messageOf } from "../errors/message_of.ts";

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

  async function doReload(reason: string): Promise<boolean> {
    let cert: string, key: string;
    try {
      [cert, key] = [Deno.readTextFileSync(certPath), Deno.readTextFileSync(keyPath)];
    } catch (e) {
      logger?.error("certificate reload refused, keeping the old one", {
        reason,
        error: messageOf(e),
      });
      return false;
    }
    if (cert + key === last) {
      // A file event with the same bytes is nothing to say; a SIGHUP asked, so it gets an answer.
      if (reason === "SIGHUP") logger?.info("certificate unchanged", { reason });
      return false;
    }
    let pin: string;
    try {
      checkCertificatePair(cert, key);
      pin = await spkiPinFromPem(cert);
    } catch (e) {
      logger?.error("certificate reload refused, keeping the old one", {
        reason,
        error: messageOf(e),
      });
      return false;
    }
    try {
      await options.apply(cert, key, pin);
    } catch (e) {
      logger?.error("certificate reload failed, keeping the old one", {
        reason,
        error: messageOf(e),
      });
      return false;
    }
    last = cert + key;
    logger?.info("certificate reloaded", { reason, spki_pin: pin });
    return true;
  }

  const files = reloadOnChange({
    paths: [certPath, keyPath],
    reload: doReload,
    debounceMs: options.debounceMs,
    what: "certificate",
    logger,
  });
  const reload = files.reload;
  const onHup = () => void reload("SIGHUP");
  const sighup = options.sighup ?? true;
  if (sighup) Deno.addSignalListener("SIGHUP", onHup);

  return {
    reload,
    close() {
      files.close();
      if (sighup) Deno.removeSignalListener("SIGHUP", onHup);
    },
  };
}
