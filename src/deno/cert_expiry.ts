/**
 * When a PEM certificate expires (`dotbridge_certificate_not_after_seconds`), read with
 * `node:crypto`'s X509Certificate.
 *
 * @module
 */
import { X509Certificate } from "node:crypto";

/**
 * A reader of the first certificate's notAfter in a PEM, in Unix seconds (NaN when it cannot be
 * read), remembering the last answer: a scrape asks every time, the certificate rarely changes.
 */
export function notAfterReader(): (pem: string) => number {
  let lastPem = "";
  let lastSeconds = Number.NaN;
  return (pem) => {
    if (pem === lastPem) return lastSeconds;
    let seconds = Number.NaN;
    try {
      seconds = Date.parse(new X509Certificate(pem).validTo) / 1000;
    } catch {
      // Not a certificate: NaN, which Prometheus shows as such.
    }
    lastPem = pem;
    lastSeconds = seconds;
    return seconds;
  };
}
