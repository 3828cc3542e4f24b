/**
 * The plain DNS face (RFC 1035, RFC 7766) on Deno: UDP and TCP on one port.
 *
 * - **UDP** on `Deno.listenDatagram` (the `net` unstable API): {@linkcode UDP_RECEIVERS} receives
 *   waiting at once, each into a reused buffer of its own, each datagram copied out and handed to
 *   the processor at once (answers go out as they complete, in any order). Measured here under
 *   dnsperf, 32 waiting receives rather than one cut the bridge's CPU per cached query by about
 *   a fifth (several datagrams complete in one turn of Deno's event loop and are processed
 *   together); a bare loop gained ~5%. The UDP processor truncates answers to the client's size.
 *   Every answer then passes the response rate limiter (`src/net/rrl.ts`): past the limit for its
 *   network it is dropped, or slips as an empty truncated answer. Not even a DNS header: no
 *   answer. Measured here, `Deno.listenDatagram` with a reused receive buffer ran a bare
 *   header-flipping loop at ~2.5× its async iterator's rate and ~6× `node:dgram`'s, and its
 *   `reuseAddress` is SO_REUSEADDR only (a second socket on the port takes every datagram, it
 *   does not share them): so UDP is served by one thread (see `threads.ts`).
 * - **TCP** on `node:net`: the DoT face's stream session (`src/framing/session.ts`, started by
 *   `startDotSession`) over the plain socket, so framing, out-of-order pipelining, `--max-inflight`,
 *   the idle and frame timeouts and the connection guards are the DoT face's own. TCP_NODELAY is
 *   set. With `reusePort` the TCP port is shared between threads (SO_REUSEPORT).
 *
 * @module
 */
import type { AddressInfo, Socket } from "node:net";
import net from "node:net";
import type { Answer } from "../dns/answer.ts";
import { truncatedAnswer } from "../dns/truncate.ts";
import type { Logger } from "../log/mod.ts";
import type { ResponseRateLimiter } from "../net/rrl.ts";
import type { QueryContext } from "../pipeline/types.ts";
import type { Processor } from "../resolver/processor.ts";
import { messageOf } from "../errors/message_of.ts";
import { ConnectionFront } from "./connection_front.ts";
import { ConnectionSlots } from "./connection_slots.ts";
import { attachSession, DotSessions, NodeTransport, startDotSession } from "./dot_listener.ts";
import type { ListenerGuards } from "./listener_guards.ts";
import { listenNode } from "./node_listen.ts";

/** What happened to a UDP query or answer, for metrics. */
export type UdpEvent =
  /** The query was dropped unread: {@linkcode DnsListenerOptions.maxUdpInFlight} were pending. */
  | "busy-dropped"
  /** Past the rate limit: sent as an empty truncated answer. */
  | "rrl-slipped"
  /** Past the rate limit: not sent. */
  | "rrl-dropped";

/**
 * Options of {@linkcode listenDns}: the listener guards (TCP) but the TLS ones and the PROXY
 * protocol, the two processors, and the UDP limits.
 */
export interface DnsListenerOptions
  extends Omit<ListenerGuards, "handshakeRate" | "onHandshake" | "proxyFrom"> {
  hostname: string;
  port: number;
  /**
   * The UDP processor: truncates to the client's size (`ProcessorOptions.udpMaxSize`; its
   * `onTruncated` is where the `truncated` event is counted).
   */
  processUdp: Processor;
  /** The TCP processor (edns-tcp-keepalive announced, no size limit). */
  processTcp: Processor;
  /** Serve UDP. Default true; false: TCP only (the threads after the first). */
  udp?: boolean;
  /** Response rate limiting of UDP answers; unset: none. */
  rrl?: ResponseRateLimiter;
  /**
   * UDP queries being answered at once (waiting on upstreams, say); past it new datagrams are
   * dropped (the client retries), so a flood of distinct names is bounded in memory. Default
   * {@linkcode UDP_MAX_IN_FLIGHT}.
   */
  maxUdpInFlight?: number;
  /** Told what happened to UDP answers that did not go out as they were. */
  onUdpEvent?: (event: UdpEvent) => void;
  logger?: Logger;
  frameTimeoutMs?: number;
  maxInFlight?: number;
  maxFrameSize?: number;
}

/** A running plain DNS listener. */
export interface DnsListener {
  /** The bound address (the real port when 0 was asked for); UDP and TCP share it. */
  readonly addr: { hostname: string; port: number };
  /** Whether this listener serves UDP. */
  readonly udp: boolean;
  /** TCP connections open. */
  readonly connections: number;
  /**
   * Stops taking queries, lets those received be answered (at most `graceMs`), then closes the
   * UDP socket and every TCP connection.
   */
  shutdown(graceMs: number): Promise<void>;
}

/**
 * Receives waiting on the UDP socket at once (see the module notes). Each has a buffer of
 * {@linkcode UDP_QUERY_BUFFER} bytes.
 */
export const UDP_RECEIVERS = 32;

/**
 * The largest UDP query read. Queries are small (a name and an OPT record); a datagram that
 * fills the buffer may have been cut short by it (Deno does not say), so it is dropped.
 */
export const UDP_QUERY_BUFFER = 4096;

/** The default {@linkcode DnsListenerOptions.maxUdpInFlight}: a few MB of pending queries. */
export const UDP_MAX_IN_FLIGHT = 10_000;

/** How often a random port (0) is tried again when UDP got one TCP cannot have. */
const PORT_TRIES = 8;

/**
 * A UDP query's context: the face, the client, the listener's signal (shutdown). It is its own
 * `client` (it has the address and port), so a query costs one object here, not two.
 */
class UdpContext implements QueryContext {
  // Fields assigned in the constructor, not initialised in the class body (a class field is
  // defined property by property, measurably slower for an object made per datagram).
  readonly face: "dns";
  readonly address: string;
  readonly port: number;
  readonly client: UdpContext;
  readonly signal: AbortSignal;

  constructor(addr: Deno.NetAddr, signal: AbortSignal) {
    this.face = "dns";
    this.address = addr.hostname;
    this.port = addr.port;
    this.client = this;
    this.signal = signal;
  }
}

function ignore(): void {}

/**
 * Starts the plain DNS listener: the UDP socket (unless `udp: false`) and the TCP server on the
 * same port.
 *
 * @throws if the address cannot be bound (for UDP or TCP)
 *
 * @example
 * ```ts
 * const dns = await listenDns({ hostname: "0.0.0.0", port: 53, processUdp, processTcp });
 * ```
 */
export async function listenDns(options: DnsListenerOptions): Promise<DnsListener> {
  const { logger, rrl, onUdpEvent } = options;
  const serveUdp = options.udp ?? true;
  const maxUdpInFlight = options.maxUdpInFlight ?? UDP_MAX_IN_FLIGHT;
  const slots = new ConnectionSlots({
    maxConnections: options.maxConnections,
    maxConnectionsPerIp: options.maxConnectionsPerIp,
    accept: options.accept,
  });
  const front = new ConnectionFront({
    slots,
    headerTimeoutMs: options.handshakeTimeoutMs ?? 5_000,
    connectionRate: options.connectionRate,
    onEvent: options.onEvent,
    logger,
    prefix: "dns: ",
  });
  const sessions = new DotSessions(options);
  const shutdown = new AbortController();
  let closing = false;

  const tcp = net.createServer({ allowHalfOpen: true }, (raw: Socket) => {
    front.admit(raw, (client) => {
      if (closing) {
        raw.destroy();
        return;
      }
      const session = startDotSession(
        new NodeTransport(raw),
        {
          ...options,
          process: options.processTcp,
        },
        sessions,
        { client, tenant: undefined, face: "dns" },
      );
      attachSession(raw, session);
    });
  });

  // Bind UDP and TCP to one port; for port 0 the port UDP got may be taken for TCP: try again.
  let udp: Deno.DatagramConn | undefined;
  for (let attempt = 1;; attempt++) {
    if (serveUdp) {
      udp = Deno.listenDatagram({
        transport: "udp",
        hostname: options.hostname,
        port: options.port,
      });
    }
    const port = udp ? (udp.addr as Deno.NetAddr).port : options.port;
    try {
      await listenNode(tcp, { hostname: options.hostname, port, reusePort: options.reusePort });
      break;
    } catch (error) {
      udp?.close();
      if (options.port !== 0 || attempt >= PORT_TRIES) throw error;
    }
  }
  tcp.on("error", (error: Error) => logger?.error("dns listener error", { error: error.message }));
  const bound = tcp.address() as AddressInfo;

  // ---- UDP ----
  let inFlight = 0;
  let drained: (() => void) | undefined;
  const receiving = udp
    ? Promise.all(Array.from({ length: UDP_RECEIVERS }, () => receiveLoop(udp!)))
    : Promise.resolve();

  async function receiveLoop(socket: Deno.DatagramConn): Promise<void> {
    const buf = new Uint8Array(UDP_QUERY_BUFFER);
    for (;;) {
      let got: [Uint8Array, Deno.Addr];
      try {
        got = await socket.receive(buf);
      } catch (error) {
        if (closing) return;
        // A receive error on an unconnected socket concerns one datagram (an ICMP error for an
        // earlier send, say): carry on.
        logger?.debug("dns udp receive failed", { error: messageOf(error) });
        continue;
      }
      if (closing) continue;
      const [data, addr] = got;
      if (data.length >= UDP_QUERY_BUFFER) continue; // maybe cut short: no query of ours
      if (inFlight >= maxUdpInFlight) {
        onUdpEvent?.("busy-dropped");
        continue;
      }
      handle(socket, data.slice(), addr as Deno.NetAddr);
    }
  }

  /** One datagram's query to its answer; never rejects. */
  async function handle(
    socket: Deno.DatagramConn,
    query: Uint8Array,
    addr: Deno.NetAddr,
  ): Promise<void> {
    inFlight++;
    try {
      const answer = await options.processUdp(query, new UdpContext(addr, shutdown.signal));
      if (answer !== null) reply(socket, answer, addr);
    } catch (error) {
      logger?.debug("dns udp query failed", { error: messageOf(error) });
    } finally {
      done();
    }
  }

  function done(): void {
    if (--inFlight === 0 && drained) drained();
  }

  function reply(socket: Deno.DatagramConn, answer: Answer, addr: Deno.NetAddr): void {
    let wire = answer.wire;
    if (rrl) {
      const verdict = rrl.check(addr.hostname);
      if (verdict === "drop") {
        onUdpEvent?.("rrl-dropped");
        return;
      }
      if (verdict === "slip") {
        onUdpEvent?.("rrl-slipped");
        wire = truncatedAnswer(answer).wire;
      }
    }
    socket.send(wire, addr).catch(ignore);
  }

  return {
    addr: { hostname: bound.address, port: bound.port },
    udp: udp !== undefined,
    get connections() {
      return slots.open;
    },
    async shutdown(graceMs: number) {
      if (closing) return;
      closing = true;
      front.closing = true;
      const tcpClosed = new Promise<void>((resolve) => tcp.close(() => resolve()));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const udpDrained = inFlight === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => (drained = resolve));
      await Promise.race([
        Promise.all([udpDrained, ...[...sessions.all].map((s) => s.shutdown(graceMs))]),
        new Promise((r) => (timer = setTimeout(r, graceMs))),
      ]);
      clearTimeout(timer);
      shutdown.abort(new Error("shutting down"));
      try {
        udp?.close();
      } catch {
        // already closed
      }
      await Promise.race([receiving, new Promise((r) => setTimeout(r, 50))]);
      await Promise.race([tcpClosed, new Promise((r) => setTimeout(r, 50))]);
    },
  };
}
