/**
 * Step: reloading `--cert`/`--key` when the files change (and on SIGHUP) into the faces that
 * serve them. Absent for the development certificate.
 *
 * @module
 */
import { type CertificateWatch, watchCertificate } from "../cert_reload.ts";
import type { DohListener } from "../doh_listener.ts";
import type { DoqListener } from "../doq_listener.ts";
import type { DotListener } from "../dot_listener.ts";
import type { FaceContext } from "./context.ts";
import type { Started } from "./steps.ts";

/**
 * Watches the certificate files; stopping ends the watch. The DoQ face cannot take a new
 * certificate (Deno's QUIC endpoint is given one at listen): a reload logs that it needs a restart.
 */
export function startCertificateWatch(
  face: Pick<FaceContext, "config" | "deps" | "logger" | "certificate">,
  dot: DotListener,
  doh: DohListener | undefined,
  doq?: DoqListener,
): Started<CertificateWatch | undefined> {
  const { certFile, keyFile } = face.config.certificate;
  if (certFile === undefined || keyFile === undefined) return { value: undefined };
  const { certificate } = face;
  const watch = watchCertificate({
    certPath: certFile,
    keyPath: keyFile,
    logger: face.logger,
    sighup: face.deps.sighup ?? true,
    apply: (cert, key, spkiPin) => {
      dot.setCertificate(cert, key);
      if (doh?.tls) doh.setCertificate(cert, key);
      // Deno 2.9's QUIC endpoint takes its certificate once (see doq_listener.ts).
      if (doq) {
        face.logger.warn(
          "doq: the DoQ face keeps serving the certificate it started with; restart to renew it",
        );
      }
      certificate.cert = cert;
      certificate.key = key;
      certificate.spkiPin = spkiPin;
    },
  });
  return { value: watch, stop: () => watch.close() };
}
