/**
 * Step: the DoH face (RFC 8484) on `--http-listen`: the bridge's own HTTP/2 and HTTP/1.1
 * servers, over TLS or (`--http-tls=false`) plain HTTP. Absent when `--http-listen off`.
 *
 * @module
 */
import { createDohApp } from "../../http/app.ts";
import { STATUS_PAGE } from "../../http/status_page.ts";
import { DOH_PATH } from "../../http/doh_request.ts";
import { type DohListener, listenDoh } from "../doh_listener.ts";
import type { DotListener } from "../dot_listener.ts";
import { type FaceContext, faceProcessor, listenerGuards, memberOf } from "./context.ts";
import { listenError } from "./listen_error.ts";
import type { Started } from "./steps.ts";

/**
 * Starts the DoH face, if configured; stopping drains it. Its landing page and `/health` tell
 * about the DoT face `dot`.
 *
 * @throws {ConfigError} naming `--http-listen` when the address cannot be bound
 */
export async function startDohFace(
  face: FaceContext,
  dot: DotListener,
): Promise<Started<DohListener | undefined>> {
  const { config, logger, certificate, metrics } = face;
  const { doh: options, origin } = config;
  const address = options.httpListen;
  if (!address) return { value: undefined };
  const process = faceProcessor(face);
  const app = createDohApp({
    process,
    jsonApi: options.jsonApi,
    logger,
    landing: () => ({ dotPort: dot.addr.port, spkiPin: certificate.spkiPin }),
    health: () => ({ dotConnections: dot.connections }),
    metrics: config.metrics.dohMetrics ? () => metrics.registry.render() : undefined,
    // --- observe: readiness always, the status page with the metrics ---
    ready: () => face.resolver.ready(),
    status: config.metrics.dohMetrics ? STATUS_PAGE : undefined,
  });
  let doh: DohListener;
  try {
    doh = await listenDoh({
      hostname: address.hostname,
      port: address.port,
      cert: options.httpTls ? certificate.cert : undefined,
      key: options.httpTls ? certificate.key : undefined,
      app,
      trustedProxyHeader: options.trustedProxyHeader,
      // The ACL at accept spares these proxies; the resolver's (REFUSED) judges each request's
      // forwarded address instead. A PROXY protocol header, by contrast, is read before the
      // ACL: it judges the real client there.
      trustedProxyFrom: memberOf(options.trustedProxyFrom, "trusted-proxy-from"),
      ...listenerGuards(face, "doh", options.idleTimeoutMs),
      fast: { process, path: DOH_PATH },
      logger,
      requestTimeoutMs: options.requestTimeoutMs,
    });
  } catch (e) {
    throw listenError(e, origin["http-listen"], address);
  }
  return { value: doh, face: true, stop: (graceMs) => doh.shutdown(graceMs) };
}
