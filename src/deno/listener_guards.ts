/**
 * The guards every face's listener puts in front of its connections, named once: who may
 * connect, how many and how often, how long a handshake and an idle connection may take, and
 * what is told about refusals. The faces' option types extend {@linkcode ListenerGuards} (DoQ
 * and the TLS acceptor without what cannot apply to them), and the start-up steps fill it from
 * the configuration in one place.
 *
 * @module
 */
import type { RateLimiter } from "../resolver/ratelimit.ts";
import type { SlotLimits } from "./connection_slots.ts";

/**
 * A listener's guards. With {@linkcode SlotLimits}: `maxConnections` (default 10 000),
 * `maxConnectionsPerIp` (per client: IPv4 address or IPv6 /64; 0 or unset: no cap) and `accept`
 * (the ACL: connections from addresses it rejects are closed at accept).
 */
export interface ListenerGuards extends SlotLimits {
  /**
   * Peers (load balancers) that must open with a PROXY protocol header (v1 or v2) within the
   * handshake timeout; its address is then the client's for every rule. Unset: nobody.
   */
  proxyFrom?: (address: string) => boolean;
  /** New connections per client (IPv4 address, IPv6 /64); past it closed at once. */
  connectionRate?: RateLimiter;
  /** TLS handshakes per client; past it closed before the handshake. */
  handshakeRate?: RateLimiter;
  /** Time a client has for its TLS handshake (and PROXY header). Default 5 000 ms. */
  handshakeTimeoutMs?: number;
  /**
   * A connection with nothing to do is closed after this long. Default: the face's own
   * (DoT and DoQ 10 000 ms, DoH 30 000 ms).
   */
  idleTimeoutMs?: number;
  /**
   * Told about refused connections (`refused-<reason>`), failed handshakes and abnormal closes
   * (`closed-<reason>`), for metrics.
   */
  onEvent?: (event: string) => void;
  /**
   * Told about each completed TLS handshake: whether it resumed a session (TLS 1.2 session ID or
   * TLS 1.3 ticket), `undefined` where the server cannot tell (`Deno.listenTls`, Deno's QUIC).
   */
  onHandshake?: (resumed: boolean | undefined) => void;
  /** Share the port with other listeners (SO_REUSEPORT): one per thread, the kernel balances. */
  reusePort?: boolean;
}
