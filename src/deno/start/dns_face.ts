/**
 * Step: the plain DNS face (RFC 1035, RFC 7766) on `--dns-listen`, UDP and TCP on one port.
 * Absent when `--dns-listen off` (the default).
 *
 * Who may use it: with no `--allow`, the clients in `--dns-default-allow` (the resolver's plain
 * DNS policy answers others REFUSED; over TCP they are closed at accept, as the ACL closes them
 * on the other faces). UDP answers are cut to the client's size (`--dns-max-udp-size` at most)
 * and rate limited per network (`--dns-rrl`, `--dns-rrl-slip`). TCP shares the DoT face's limits:
 * `--max-connections`, `--max-connections-per-ip`, `--connection-rate-limit`, `--idle-timeout`
 * (announced by edns-tcp-keepalive), `--frame-timeout`, `--max-inflight`, `--max-frame-size`.
 * Under `--threads`, UDP is served by the first thread only (Deno's UDP sockets cannot share a
 * port), TCP by every thread (SO_REUSEPORT).
 *
 * @module
 */
import { ResponseRateLimiter } from "../../net/rrl.ts";
import { type DnsListener, listenDns } from "../dns_listener.ts";
import { type FaceContext, faceProcessor, listenerGuards } from "./context.ts";
import { listenError } from "./listen_error.ts";
import type { Started } from "./steps.ts";

/**
 * Starts the plain DNS face, if configured; stopping drains it.
 *
 * @throws {ConfigError} naming `--dns-listen` when the address cannot be bound
 */
export async function startDnsFace(face: FaceContext): Promise<Started<DnsListener | undefined>> {
  const { config, logger, metrics, resolver, deps } = face;
  const { dns, dot, origin } = config;
  const address = dns.listen;
  if (!address) return { value: undefined };
  const answers = new Map<string, { inc(): void }>();
  const count = (event: string) => {
    let series = answers.get(event);
    if (!series) answers.set(event, series = metrics.dnsUdpAnswers.labels({ event }));
    series.inc();
  };
  const processUdp = faceProcessor(face, undefined, {
    transport: "udp",
    udpMaxSize: dns.maxUdpSize,
    onTruncated: () => count("truncated"),
  });
  const processTcp = faceProcessor(face, dot.idleTimeoutMs, { transport: "tcp" });
  // No TLS, and no PROXY protocol on this face.
  const {
    proxyFrom: _proxyFrom,
    handshakeRate: _handshakeRate,
    onHandshake: _onHandshake,
    accept,
    ...guards
  } = listenerGuards(face, "dns", dot.idleTimeoutMs);
  let dnsListener: DnsListener;
  try {
    dnsListener = await listenDns({
      hostname: address.hostname,
      port: address.port,
      processUdp,
      processTcp,
      udp: deps.dnsUdp ?? true,
      rrl: dns.rrlRate > 0
        ? new ResponseRateLimiter({ rate: dns.rrlRate, slip: dns.rrlSlip })
        : undefined,
      onUdpEvent: count,
      logger,
      ...guards,
      accept: (client) => (accept?.(client) ?? true) && resolver.plainDnsAllows(client),
      frameTimeoutMs: dot.frameTimeoutMs,
      maxInFlight: dot.maxInFlight,
      maxFrameSize: dot.maxFrameSize,
    });
  } catch (e) {
    throw listenError(e, origin["dns-listen"], address);
  }
  return { value: dnsListener, face: true, stop: (graceMs) => dnsListener.shutdown(graceMs) };
}
