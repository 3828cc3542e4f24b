/**
 * The DoT face (RFC 7858) on Deno: a TLS listener whose connections each run a StreamSession.
 *
 * Built on `node:tls` under Deno rather than `Deno.listenTls`, deliberately: measured here,
 * `node:tls` honours `SNICallback`, exposes `socket.servername`, and `setSecureContext()` swaps
 * the certificate for new connections while established ones keep working — needed for per-SNI
 * tenants and certificate reload — at throughput comparable to `Deno.listenTls`. Everything
 * `node:tls`-specific stays in this file. Connections are accepted on TCP first
 * (`connection_front.ts`: PROXY protocol header, rate limits, caps, ACL) and then handed to TLS.
 *
 * @module
 */
import type { AddressInfo, Socket } from "node:net";
import net from "node:net";
import tls from "node:tls";
import { type CloseReason, StreamSession, type StreamTransport } from "../framing/session.ts";
import { Sweeper, tickFor } from "../framing/sweeper.ts";
import { AbortWatchers } from "../async/abort_watch.ts";
import type { AbortParent } from "../async/deadline.ts";
import type { Logger } from "../log/mod.ts";
import { checkCertificatePair } from "./cert_check.ts";
import { ConnectionSlots } from "./connection_slots.ts";
import { ConnectionFront } from "./connection_front.ts";
import type { ListenerGuards } from "./listener_guards.ts";
import { endAndLinger, listenNode } from "./node_listen.ts";
import type { Processor } from "../resolver/processor.ts";

/** Options of {@linkcode listenDot}. */
export interface DotListenerOptions extends ListenerGuards {
  hostname: string;
  port: number;
  /** PEM certificate chain and key. */
  cert: string;
  key: string;
  process: Processor;
  logger?: Logger;
  frameTimeoutMs?: number;
  maxInFlight?: number;
  maxFrameSize?: number;
  /** The tenant a connection belongs to, from the server name the client sent (SNI). */
  tenantOf?: (servername: string) => string | undefined;
}

/** Where a node socket keeps its session, for the shared listener functions. */
const SESSION = Symbol("dotbridge.session");
type SessionSocket = Socket & { [SESSION]: StreamSession };

function onData(this: SessionSocket, chunk: Uint8Array): void {
  this[SESSION].receive(chunk);
}
function onEnd(this: SessionSocket): void {
  this[SESSION].peerEnded();
}
function onDrain(this: SessionSocket): void {
  this[SESSION].writable();
}
function onClose(this: SessionSocket): void {
  this[SESSION].transportClosed();
}

/**
 * A `node:net` socket (or a `node:tls` one) as a session's transport: methods, not one closure
 * per connection. The plain DNS face's TCP listener uses it too.
 */
export class NodeTransport implements StreamTransport {
  readonly #socket: Socket;

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  write(bytes: Uint8Array): void {
    if (!this.#socket.destroyed) this.#socket.write(bytes);
  }

  get writableLength(): number {
    return this.#socket.writableLength;
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  /** Half-open sockets (allowHalfOpen) stay open until the peer's FIN is read. */
  end(): void {
    endAndLinger(this.#socket);
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

/**
 * Feeds a node socket's events to its session, with listener functions shared by every
 * connection (node:events calls them with the socket as `this`, and the socket carries its
 * session), so a connection costs no closures for them.
 */
export function attachSession(socket: Socket, session: StreamSession): void {
  (socket as SessionSocket)[SESSION] = session;
  socket.on("data", onData);
  socket.on("end", onEnd);
  socket.on("drain", onDrain);
  socket.on("close", onClose);
}

/** The sessions of one stream listener, and the one timer that checks their deadlines. */
export class DotSessions {
  readonly all = new Set<StreamSession>();
  readonly sweeper: Sweeper;

  constructor(options: Pick<DotListenerOptions, "idleTimeoutMs" | "frameTimeoutMs">) {
    this.sweeper = new Sweeper(
      tickFor(options.idleTimeoutMs ?? 10_000, options.frameTimeoutMs ?? 5_000),
    );
  }
}

/**
 * A stream connection's query context (DoT, or plain DNS over TCP). Its signal (aborted when the
 * connection closes) is made on first read, which the query path avoids: a query's deadline
 * watches the connection through {@linkcode watch} instead (see `AbortParent` in
 * `async/deadline.ts`).
 */
class DotContext implements AbortParent {
  readonly face: "dot" | "dns";
  readonly client: { address: string; port?: number };
  readonly tenant: string | undefined;
  #abort: AbortController | undefined;
  #closed: Error | undefined;
  #watchers: AbortWatchers | undefined;

  constructor(
    client: { address: string; port?: number },
    tenant: string | undefined,
    face: "dot" | "dns",
  ) {
    this.face = face;
    this.client = client;
    this.tenant = tenant;
  }

  get signal(): AbortSignal {
    if (this.#abort === undefined) {
      this.#abort = new AbortController();
      if (this.#closed) this.#abort.abort(this.#closed);
    }
    return this.#abort.signal;
  }

  watch(onAbort: (reason: unknown) => void): void {
    if (this.#closed) return onAbort(this.#closed);
    (this.#watchers ??= new AbortWatchers()).add(onAbort);
  }

  unwatch(onAbort: (reason: unknown) => void): void {
    this.#watchers?.delete(onAbort);
  }

  close(reason: CloseReason): void {
    const closed = this.#closed = new Error(`connection closed: ${reason}`);
    this.#abort?.abort(closed);
    this.#watchers?.tell(closed);
  }
}

/**
 * Starts the query loop of one accepted DoT connection, the same for both listeners (and for the
 * plain DNS face's TCP, `who.face` "dns"): the processor's context (aborted when the connection
 * closes), the limits, the close events and logs. Adds the session to `sessions` and removes it
 * when it ends.
 */
export function startDotSession(
  transport: StreamTransport,
  options: Pick<
    DotListenerOptions,
    | "process"
    | "maxInFlight"
    | "maxFrameSize"
    | "idleTimeoutMs"
    | "frameTimeoutMs"
    | "onEvent"
    | "logger"
  >,
  sessions: DotSessions,
  who: {
    client: { address: string; port?: number };
    tenant: string | undefined;
    face?: "dot" | "dns";
  },
): StreamSession {
  const ctx = new DotContext(who.client, who.tenant, who.face ?? "dot");
  const session: StreamSession = new StreamSession(transport, {
    process: (message) => options.process(message, ctx),
    maxInFlight: options.maxInFlight,
    maxFrameSize: options.maxFrameSize,
    idleTimeoutMs: options.idleTimeoutMs,
    frameTimeoutMs: options.frameTimeoutMs,
    sweeper: sessions.sweeper,
    onClose: (reason: CloseReason, error?: unknown) => {
      sessions.all.delete(session);
      ctx.close(reason);
      if (reason !== "idle" && reason !== "peer-closed" && reason !== "shutdown") {
        options.onEvent?.(`closed-${reason}`);
        options.logger?.debug("connection closed", {
          reason,
          error: error instanceof Error ? error.message : undefined,
        });
      }
    },
  });
  sessions.all.add(session);
  return session;
}

/** A running DoT listener. */
export interface DotListener {
  /** The bound address (the real port when 0 was asked for). */
  readonly addr: { hostname: string; port: number };
  /** Connections accepted and not yet closed (including those mid-handshake). */
  readonly connections: number;
  /**
   * New connections use this certificate; established ones keep theirs.
   *
   * @throws if the pair does not load (the old one stays in use)
   */
  setCertificate(cert: string, key: string): void;
  /**
   * Stops accepting, lets every session answer what it already received (at most `graceMs`),
   * then closes everything.
   */
  shutdown(graceMs: number): Promise<void>;
}

/**
 * Starts the DoT listener.
 *
 * @throws if the address cannot be bound, or the certificate and key do not load
 *
 * @example
 * ```ts
 * const dot = await listenDot({ hostname: "127.0.0.1", port: 8853, cert, key, process });
 * ```
 */
export async function listenDot(options: DotListenerOptions): Promise<DotListener> {
  const logger = options.logger;
  const sessions = new DotSessions(options);
  const slots = new ConnectionSlots({
    maxConnections: options.maxConnections,
    maxConnectionsPerIp: options.maxConnectionsPerIp,
    accept: options.accept,
  });
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 5_000;
  const front = new ConnectionFront({
    slots,
    proxyFrom: options.proxyFrom,
    headerTimeoutMs: handshakeTimeoutMs,
    connectionRate: options.connectionRate,
    handshakeRate: options.handshakeRate,
    onEvent: options.onEvent,
    logger,
  });
  let closing = false;

  // The TLS server never listens itself: the TCP front admits each connection (reading a PROXY
  // header first when the peer is a trusted balancer) and hands it over.
  const server = tls.createServer({
    cert: options.cert,
    key: options.key,
    ALPNProtocols: ["dot"],
    allowHalfOpen: true,
    handshakeTimeout: handshakeTimeoutMs,
    minVersion: "TLSv1.2",
  });
  const tcp = net.createServer({ allowHalfOpen: true }, (raw: Socket) => {
    front.admit(raw, (client) => {
      if (front.handshake(raw, client)) server.emit("connection", raw);
    });
  });

  server.on("tlsClientError", (error: Error, socket: tls.TLSSocket) => {
    logger?.debug("tls handshake failed", { error: error.message });
    options.onEvent?.(front.isProbe(socket, error) ? "health-check" : "tls-handshake-failed");
    socket.destroy();
  });

  server.on("secureConnection", (socket: tls.TLSSocket) => {
    options.onHandshake?.(socket.isSessionReused());
    if (closing) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    // Set by node:tls at run time; not in the TLSSocket type Deno ships without @types/node.
    const sni = (socket as { servername?: unknown }).servername;
    const servername = typeof sni === "string" ? sni : "";
    const session = startDotSession(new NodeTransport(socket), options, sessions, {
      client: front.clientOf(socket),
      tenant: servername && options.tenantOf ? options.tenantOf(servername) : undefined,
    });
    attachSession(socket, session);
    socket.on("error", onError);
  });
  function onError(this: tls.TLSSocket, error: Error): void {
    logger?.debug("socket error", { error: error.message });
  }

  await listenNode(tcp, options);
  tcp.on("error", (error: Error) => logger?.error("listener error", { error: error.message }));
  const bound = tcp.address() as AddressInfo;

  return {
    addr: { hostname: bound.address, port: bound.port },
    get connections() {
      return slots.open;
    },
    setCertificate(cert: string, key: string) {
      // node:tls under Deno takes a bad pair here without a word: check it first.
      checkCertificatePair(cert, key);
      server.setSecureContext({ cert, key });
    },
    async shutdown(graceMs: number) {
      closing = true;
      front.closing = true;
      const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
      await Promise.all([...sessions.all].map((s) => s.shutdown(graceMs)));
      await Promise.race([closed, new Promise((r) => setTimeout(r, 50))]);
    },
  };
}
