/**
 * The accept step both node listeners (DoT, DoH) run on every raw TCP connection, before TLS or
 * HTTP: who the client is (the PROXY protocol header, when the peer is a trusted balancer), then
 * the new-connection rate limit, the connection slots (shutdown, caps, ACL) and, for TLS, the
 * handshake rate limit, all on that client's address.
 *
 * A trusted HTTP proxy (the DoH face's `--trusted-proxy-from`, with `--trusted-proxy-header`) is
 * not a client: its connections carry many clients' requests, each naming its client in a header
 * that arrives only after the connection was admitted. So the per-client rules (connection and
 * handshake rates, the per-client cap, the ACL) are off for its connections, and the DoH face
 * applies the ACL and the query rate limit to each request's forwarded address instead;
 * `--max-connections` still counts them.
 *
 * The TLS listeners accept on a `node:net` server and hand each admitted socket to their
 * `node:tls` server with `emit("connection", socket)`, any bytes read past the header pushed
 * back with `unshift`: measured on Deno 2.9.6, the handshake, ALPN, SNI, the server's
 * `handshakeTimeout` and `setSecureContext` all work that way, whether the header arrives alone
 * or in one segment with the ClientHello.
 *
 * @module
 */
import { concatBytes } from "../bytes/concat.ts";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { Logger } from "../log/mod.ts";
import { parseProxyHeader, ProxyProtocolError } from "../net/proxy_protocol.ts";
import type { RateLimiter } from "../resolver/ratelimit.ts";
import type { ConnectionSlots } from "./connection_slots.ts";

/** A connection's client, as the rules and the resolver see it. */
export interface Client {
  address: string;
  port?: number;
  /**
   * The peer is a trusted HTTP proxy (see {@linkcode FrontOptions.forwarderFrom}): each request
   * names its own client.
   */
  forwarder?: boolean;
}

/** What {@linkcode ConnectionFront} needs. */
export interface FrontOptions {
  slots: ConnectionSlots;
  /** Peers that must open with a PROXY header (`--proxy-protocol-from`); unset: nobody. */
  proxyFrom?: (address: string) => boolean;
  /**
   * Trusted HTTP proxies (`--trusted-proxy-from`, when `--trusted-proxy-header` is set): their
   * connections are admitted without the per-client rules, and marked `forwarder`. Matched on
   * the peer as the PROXY header names it, if there is one. Unset: nobody.
   */
  forwarderFrom?: (address: string) => boolean;
  /** The header must be complete within this long of the accept. */
  headerTimeoutMs: number;
  /** New connections per client (`--connection-rate-limit`). */
  connectionRate?: RateLimiter;
  /** TLS handshakes per client (`--handshake-rate-limit`); checked by {@linkcode handshake}. */
  handshakeRate?: RateLimiter;
  /** Told `refused-<reason>` for metrics. */
  onEvent?: (event: string) => void;
  logger?: Logger;
  /** Log prefix, e.g. `"doh: "`. */
  prefix?: string;
}

/** The TCP socket under a TLS socket (or the socket itself). */
function rawOf(socket: Socket | TLSSocket): Socket {
  // node:tls keeps the socket it wraps as `_parent` (Deno 2.9.6 too); not in the public type.
  return (socket as { _parent?: Socket })._parent ?? socket;
}

/** The most bytes read while waiting for a header: a v2 header's cap, with room for a segment. */
const HEADER_BUFFER_MAX = 4096;

/** Admits raw connections and remembers each one's client. */
export class ConnectionFront {
  readonly #o: FrontOptions;
  readonly #clients = new WeakMap<Socket, Client>();
  /** Bytes of each admitted socket's PROXY header (none: no entry). */
  readonly #headerBytes = new WeakMap<Socket, number>();
  closing = false;

  constructor(options: FrontOptions) {
    this.#o = options;
  }

  /**
   * Runs the accept step on `raw`; calls `admitted` with the client once it passes, or closes
   * the connection (and counts why).
   */
  admit(raw: Socket, admitted: (client: Client) => void): void {
    const o = this.#o;
    raw.setNoDelay(true);
    raw.on(
      "error",
      (e: Error) => o.logger?.debug(`${o.prefix ?? ""}socket error`, { error: e.message }),
    );
    if (raw.remoteAddress === undefined) {
      // Gone before it was admitted (its address is no longer known): a balancer's check that
      // connects, says its piece and leaves at once. Nothing to judge, and not a failure.
      o.onEvent?.("health-check");
      raw.destroy();
      return;
    }
    const peer = { address: raw.remoteAddress, port: raw.remotePort };
    if (!o.proxyFrom?.(peer.address)) return this.#rules(raw, peer, admitted);
    let seen = new Uint8Array(0);
    const timer = setTimeout(() => fail("timeout"), o.headerTimeoutMs);
    const done = () => {
      clearTimeout(timer);
      raw.off("data", onData);
      raw.off("close", onClose);
      raw.off("end", onEnd);
    };
    const fail = (why: string) => {
      done();
      o.logger?.debug(`${o.prefix ?? ""}proxy header refused`, { reason: why });
      o.onEvent?.("refused-proxy-header");
      raw.destroy();
    };
    // A balancer's TCP check connects and leaves without a byte: a probe, not a bad header.
    const probe = () => {
      done();
      o.onEvent?.("health-check");
      raw.destroy();
    };
    const onClose = () => (seen.length === 0 ? probe() : done());
    const onEnd = () => (seen.length === 0 ? probe() : fail("ended before the header did"));
    const onData = (chunk: Uint8Array) => {
      if (seen.length + chunk.length > HEADER_BUFFER_MAX) return fail("too long");
      seen = concatBytes([seen, chunk], seen.length + chunk.length);
      let header;
      try {
        header = parseProxyHeader(seen);
      } catch (e) {
        return fail(e instanceof ProxyProtocolError ? e.message : String(e));
      }
      if (!header) return;
      done();
      raw.pause();
      if (header.length < seen.length) raw.unshift(seen.subarray(header.length));
      this.#headerBytes.set(raw, header.length);
      this.#rules(raw, header.client ?? peer, admitted);
    };
    raw.on("data", onData);
    raw.once("end", onEnd);
    raw.once("close", onClose);
  }

  #rules(raw: Socket, peer: Client, admitted: (client: Client) => void): void {
    const o = this.#o;
    const forwarder = o.forwarderFrom?.(peer.address) === true;
    const client = forwarder ? { ...peer, forwarder } : peer;
    if (!forwarder && o.connectionRate && !o.connectionRate.take(client.address)) {
      return this.#refuse(raw, "connection-rate");
    }
    const slot = o.slots.take(client.address, this.closing, forwarder);
    if ("refused" in slot) return this.#refuse(raw, slot.refused);
    raw.once("close", slot.release);
    this.#clients.set(raw, client);
    admitted(client);
  }

  #refuse(raw: Socket, reason: string): void {
    this.#o.logger?.debug(`${this.#o.prefix ?? ""}connection refused`, { reason });
    this.#o.onEvent?.(`refused-${reason}`);
    raw.destroy();
  }

  /**
   * The TLS step for an admitted socket: false (and the socket closed) when the client is past
   * its handshake rate, before any cryptography is spent on it. A trusted HTTP proxy has none.
   */
  handshake(raw: Socket, client: Client): boolean {
    const limiter = this.#o.handshakeRate;
    if (limiter && !client.forwarder && !limiter.take(client.address)) {
      this.#refuse(raw, "handshake-rate");
      return false;
    }
    return true;
  }

  /**
   * Whether a connection that ended without a TLS handshake (`error`: why, as node:tls says it)
   * was a health check rather than a failed client: the client left (ECONNRESET, not our
   * handshake timeout) having sent nothing after its PROXY header, if any (a balancer's TCP
   * check, a PROXY v2 LOCAL check). Counted as `health-check`, not `tls-handshake-failed`.
   */
  isProbe(socket: Socket | TLSSocket, error: Error): boolean {
    if ((error as { code?: string }).code !== "ECONNRESET") return false;
    const raw = rawOf(socket);
    return (raw.bytesRead ?? 0) <= (this.#headerBytes.get(raw) ?? 0);
  }

  /** The client of a socket this front admitted, or of the TLS socket over one. */
  clientOf(socket: Socket | TLSSocket): Client {
    const raw = rawOf(socket);
    return this.#clients.get(raw) ??
      { address: socket.remoteAddress ?? "", port: socket.remotePort };
  }
}
