/**
 * Step: the DoT face (RFC 7858) on `--listen`, with `node:tls` or, for `--dot-server native`,
 * `Deno.listenTls`.
 *
 * @module
 */
import { type DotListener, listenDot } from "../dot_listener.ts";
import { listenDotNative } from "../dot_listener_native.ts";
import { type FaceContext, faceProcessor, listenerGuards, tenantOfServerName } from "./context.ts";
import { listenError } from "./listen_error.ts";
import type { Started } from "./steps.ts";

/**
 * Starts the DoT face; stopping drains it.
 *
 * @throws {ConfigError} naming `--listen` when the address cannot be bound
 */
export async function startDotFace(face: FaceContext): Promise<Started<DotListener>> {
  const { config, logger, certificate } = face;
  const { dot: options, origin } = config;
  const process = faceProcessor(face, options.idleTimeoutMs);
  // The config refuses --tenant-domain with the native listener (it has no SNI).
  const listen = options.dotServer === "native" ? listenDotNative : listenDot;
  if (options.dotServer === "native") {
    logger.warn(
      "dot: --dot-server native: Deno's TLS server sockets have no TCP_NODELAY, so a client " +
        "that sends one query per connection may wait ~40 ms for its own delayed ACK " +
        "(the default listener does not)",
    );
  }
  let dot: DotListener;
  try {
    dot = await listen({
      hostname: options.listen.hostname,
      port: options.listen.port,
      cert: certificate.cert,
      key: certificate.key,
      process,
      logger,
      ...listenerGuards(face, "dot", options.idleTimeoutMs),
      frameTimeoutMs: options.frameTimeoutMs,
      maxInFlight: options.maxInFlight,
      maxFrameSize: options.maxFrameSize,
      tenantOf: tenantOfServerName(config),
    });
  } catch (e) {
    throw listenError(e, origin.listen, options.listen);
  }
  return { value: dot, face: true, stop: (graceMs) => dot.shutdown(graceMs) };
}
