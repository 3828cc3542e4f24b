/**
 * Step: the DoQ face (RFC 9250) on `--doq-listen` (UDP), serving the DoT certificate with ALPN
 * `doq`. Absent when `--doq-listen off`. It shares the DoT face's limits: `--max-connections`,
 * `--max-connections-per-ip`, the ACL, `--connection-rate-limit` and `--handshake-rate-limit`
 * (its own limiters, as each face has), `--idle-timeout` (as QUIC's idle timeout),
 * `--handshake-timeout`, `--frame-timeout` (per stream, for the query and again for the answer),
 * `--max-inflight` (concurrent streams per connection) and `--max-frame-size`; tenants come from
 * the SNI as on DoT. `--proxy-protocol-from` does not apply (no PROXY protocol over UDP).
 *
 * @module
 */
import { type DoqListener, listenDoq } from "../doq_listener.ts";
import { type FaceContext, faceProcessor, listenerGuards, tenantOfServerName } from "./context.ts";
import { listenError } from "./listen_error.ts";
import type { Started } from "./steps.ts";

/**
 * Starts the DoQ face, if configured; stopping drains it.
 *
 * @throws {ConfigError} naming `--doq-listen` when the address cannot be bound
 */
export function startDoqFace(face: FaceContext): Started<DoqListener | undefined> {
  const { config, logger, certificate } = face;
  const { dot: options, origin } = config;
  const address = options.doqListen;
  if (!address) return { value: undefined };
  // Padding as on DoT (RFC 9250 §5.4 points to RFC 8467); no edns-tcp-keepalive (§5.5.2).
  const process = faceProcessor(face);
  // No PROXY protocol over UDP, and a QUIC endpoint cannot share its port.
  const { proxyFrom: _proxyFrom, reusePort: _reusePort, ...guards } = listenerGuards(
    face,
    "doq",
    options.idleTimeoutMs,
  );
  let doq: DoqListener;
  try {
    doq = listenDoq({
      hostname: address.hostname,
      port: address.port,
      cert: certificate.cert,
      key: certificate.key,
      process,
      logger,
      ...guards,
      streamTimeoutMs: options.frameTimeoutMs,
      maxStreams: options.maxInFlight,
      maxMessageSize: options.maxFrameSize,
      tenantOf: tenantOfServerName(config),
    });
  } catch (e) {
    throw listenError(e, origin["doq-listen"], address);
  }
  return { value: doq, face: true, stop: (graceMs) => doq.shutdown(graceMs) };
}
