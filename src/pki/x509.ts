/**
 * `@peculiar/x509`, loaded on first use: it is several MB that a bridge serving its own
 * certificate never needs, and it needs a `reflect-metadata` API before it is imported.
 *
 * @module
 */
import type * as X509 from "@peculiar/x509";
import { installReflectMetadata } from "./reflect_metadata.ts";

let x509Module: Promise<typeof X509> | undefined;

/**
 * The `@peculiar/x509` module, imported once, after {@linkcode installReflectMetadata}.
 *
 * @example
 * ```ts
 * const x509 = await loadX509();
 * const cert = new x509.X509Certificate(pem);
 * ```
 */
export function loadX509(): Promise<typeof X509> {
  if (!x509Module) {
    installReflectMetadata();
    x509Module = import("@peculiar/x509");
  }
  return x509Module;
}
