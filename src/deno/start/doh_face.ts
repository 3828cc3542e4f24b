/**
 * Step: the DoH face (RFC 8484) on `--http-listen`, with `Deno.serve` or, for
 * `--doh-server native`, the bridge's own HTTP/2 server. Absent when `--http-listen off`.
 *
 * @module
 */
import { createDohApp } from "../../http/app.ts";
import { DOH_PATH } from "../../http/doh_request.ts";
import { createProcessor } from "../../resolver/processor.ts";
import { type DohListener, type DohListenerOptions, listenDoh } from "../doh_listener.ts";
import { listenDohNative, type NativeDohListenerOptions } from "../doh_listener_native.ts";
import type { DotListener } from "../dot_listener.ts";
import { acceptOf, type FaceContext } from "./context.ts";
import { listenError } from "./listen_error.ts";
import type { Started } from "./steps.ts";

/** The native DoH listener takes the DoT certificate (config refuses it without TLS). */
function listenNative(
  options: DohListenerOptions & Partial<NativeDohListenerOptions>,
): DohListener {
  if (options.cert === undefined || options.key === undefined) {
    throw new Error("--doh-server native needs TLS (--http-tls)");
  }
  return listenDohNative({ ...options, cert: options.cert, key: options.key });
}

/**
 * Starts the DoH face, if configured; stopping drains it. Its landing page and `/health` tell
 * about the DoT face `dot`.
 *
 * @throws {ConfigError} naming `--http-listen` when the address cannot be bound
 */
export function startDohFace(
  face: FaceContext,
  dot: DotListener,
): Started<DohListener | undefined> {
  const { config, deps, logger, certificate, metrics, resolver } = face;
  const { doh: options, origin } = config;
  const address = options.httpListen;
  if (!address) return { value: undefined };
  const process = createProcessor({
    handler: resolver.handler,
    logger,
    logQueries: config.log.logQueries,
    observer: face.observer,
  });
  const app = createDohApp({
    process,
    jsonApi: options.jsonApi,
    logger,
    landing: () => ({ dotPort: dot.addr.port, spkiPin: certificate.spkiPin }),
    health: () => ({ dotConnections: dot.connections }),
    metrics: config.metrics.dohMetrics ? () => metrics.registry.render() : undefined,
  });
  const listen = options.dohServer === "native" ? listenNative : listenDoh;
  let doh: DohListener;
  try {
    doh = listen({
      hostname: address.hostname,
      port: address.port,
      cert: options.httpTls ? certificate.cert : undefined,
      key: options.httpTls ? certificate.key : undefined,
      app,
      trustedProxyHeader: options.trustedProxyHeader,
      // Behind a proxy every peer is the proxy: the resolver's ACL (REFUSED) judges the
      // forwarded address instead.
      accept: options.trustedProxyHeader ? undefined : acceptOf(resolver),
      // Shared ports: for threads, and so a certificate reload can start the new server
      // before the old one drains.
      reusePort: deps.reusePort || options.httpTls,
      onEvent: (event) => metrics.connectionEvents.inc({ face: "doh", event }),
      fast: { process, path: DOH_PATH },
      logger,
      maxConnections: config.dot.maxConnections,
      maxConnectionsPerIp: config.dot.maxConnectionsPerIp,
      handshakeTimeoutMs: config.dot.handshakeTimeoutMs,
    });
  } catch (e) {
    throw listenError(e, origin["http-listen"], address);
  }
  return { value: doh, face: true, stop: (graceMs) => doh.shutdown(graceMs) };
}
