/**
 * The DoH face on Deno: the bridge's own HTTP/2 server (`src/h2/server.ts`) and HTTP/1.1 server
 * (`src/h1/server.ts`) on `node:tls` (HTTPS) or `node:net` (plain HTTP behind a reverse proxy
 * that terminates TLS), one port for both:
 *
 * - **HTTPS**: ALPN picks the protocol, `h2` first; a client that offers only `http/1.1` (or no
 *   ALPN at all) gets HTTP/1.1.
 * - **Plain HTTP**: a connection that opens with the HTTP/2 preface speaks h2c (prior
 *   knowledge); anything else is HTTP/1.1.
 *
 * Why `node:tls` and not `Deno.listenTls` or `Deno.serve`: Deno's TLS server sockets have no
 * `setNoDelay`, and with Nagle's algorithm on, a small write left behind an unacknowledged one
 * waits for the client's delayed ACK: one-shot `kdig +https` took ~44 ms on both. `node:tls`
 * sets TCP_NODELAY on every accepted socket (`noDelay`), so the same query takes a few ms. It also
 * swaps the certificate in place (`setSecureContext`), as the DoT face does.
 *
 * Connection limits apply as on the DoT face, at accept, before TLS (`connection_front.ts`): a
 * PROXY protocol header from a trusted balancer names the client first; then the connection
 * rate limit, `--max-connections`, the per-client cap, the ACL, the handshake rate limit and the
 * handshake deadline. A trusted HTTP proxy (`trustedProxyFrom`) is spared the per-client rules:
 * its requests name their clients in `trustedProxyHeader`, and the resolver's ACL and query rate
 * limit judge each forwarded address. From any other peer that header is ignored.
 *
 * @module
 */
import { concatBytes } from "../bytes/concat.ts";
import type { AddressInfo, Server, Socket } from "node:net";
import net from "node:net";
import tls from "node:tls";
import { H1ServerConnection } from "../h1/server.ts";
import { PREFACE } from "../h2/frames.ts";
import { H2ServerConnection } from "../h2/server.ts";
import type { DohBindings } from "../http/app.ts";
import type { ServerReply, ServerRequest } from "../serve/exchange.ts";
import { dohFaceHandler, type DohFastPath, type FetchApp, tooLargeReply } from "../http/face.ts";
import type { Logger } from "../log/mod.ts";
import { checkCertificatePair } from "./cert_check.ts";
import type { ListenerGuards } from "./listener_guards.ts";
import { ConnectionSlots } from "./connection_slots.ts";
import { type Client, ConnectionFront } from "./connection_front.ts";
import { proxySignature } from "../net/proxy_protocol.ts";
import { endAndLinger, listenNode } from "./node_listen.ts";

export type { DohBindings, DohFastPath, FetchApp };

/**
 * Options of {@linkcode listenDoh}: the listener guards (off, per client, for the
 * `trustedProxyFrom` peers), and the HTTP face's own. `idleTimeoutMs` counts while a connection
 * has no request open.
 */
export interface DohListenerOptions extends ListenerGuards {
  hostname: string;
  port: number;
  /** PEM certificate chain and key; both set: HTTPS, both unset: plain HTTP. */
  cert?: string;
  key?: string;
  app: FetchApp;
  /** Wire-format DoH on its path, answered without the app (see `src/http/face.ts`). */
  fast: DohFastPath;
  /**
   * A request header set by a trusted reverse proxy that carries the client's address (all its
   * field lines joined, the last entry); believed only from `trustedProxyFrom`.
   */
  trustedProxyHeader?: string;
  /**
   * The trusted reverse proxies (`--trusted-proxy-from`): their `trustedProxyHeader` names each
   * request's client, and their connections have no per-client cap, connection or handshake
   * rate limit, or ACL at accept. Matched on the peer (as a PROXY header names it, if any).
   * Unset, or without `trustedProxyHeader`: nobody.
   */
  trustedProxyFrom?: (address: string) => boolean;
  /**
   * A request (headers and body) must arrive within this long of its start, or its stream is
   * reset (HTTP/2) or answered 408 and closed (HTTP/1.1); an HTTP/2 reply waiting for the
   * client's window must make progress within it too, or its stream is reset. Default 10 000 ms.
   */
  requestTimeoutMs?: number;
  logger?: Logger;
}

/** A running DoH listener. */
export interface DohListener {
  /** The bound address (the real port when 0 was asked for). */
  readonly addr: { hostname: string; port: number };
  /** True when serving HTTPS. */
  readonly tls: boolean;
  /** Connections open now (including those mid-handshake). */
  readonly connections: number;
  /**
   * New connections use this certificate; established ones keep theirs.
   *
   * @throws if the pair does not load (the old one stays in use)
   */
  setCertificate(cert: string, key: string): void;
  /** Stops accepting, lets requests in flight finish (at most `graceMs`), then closes all. */
  shutdown(graceMs?: number): Promise<void>;
}

/** One protocol connection on a socket: HTTP/2 or HTTP/1.1. */
interface Served {
  receive(data: Uint8Array): void;
  receiveEnd(error?: Error): void;
  shutdown(graceMs: number): Promise<void>;
  destroy(): void;
}

/**
 * A node socket as the servers' socket: writes resolve once node has taken the bytes; closing
 * ends our side and lingers ({@linkcode endAndLinger}), so a final GOAWAY is not lost.
 */
function socketOf(socket: Socket) {
  return {
    write(bytes: Uint8Array): Promise<void> {
      if (socket.destroyed) return Promise.reject(new Error("socket closed"));
      return new Promise<void>((resolve, reject) => {
        socket.write(bytes, (error?: Error | null) => (error ? reject(error) : resolve()));
      });
    },
    close(): void {
      endAndLinger(socket);
    },
    pause(): void {
      socket.pause();
    },
    resume(): void {
      socket.resume();
    },
  };
}

/** Whether `data` could still be the start of the HTTP/2 preface. */
function prefaceSoFar(data: Uint8Array): boolean {
  const n = Math.min(data.length, PREFACE.length);
  for (let i = 0; i < n; i++) if (data[i] !== PREFACE[i]) return false;
  return true;
}

/**
 * Starts the listener.
 *
 * @throws if the address cannot be bound, or the certificate and key do not load
 *
 * @example
 * ```ts
 * const doh = await listenDoh({ hostname: "127.0.0.1", port: 8443, cert, key, app, fast });
 * ```
 */
export async function listenDoh(options: DohListenerOptions): Promise<DohListener> {
  const { logger } = options;
  const secure = options.cert !== undefined && options.key !== undefined;
  const slots = new ConnectionSlots(options);
  const front = new ConnectionFront({
    slots,
    proxyFrom: options.proxyFrom,
    forwarderFrom: options.trustedProxyHeader ? options.trustedProxyFrom : undefined,
    headerTimeoutMs: options.handshakeTimeoutMs ?? 5_000,
    connectionRate: options.connectionRate,
    handshakeRate: options.handshakeRate,
    onEvent: options.onEvent,
    logger,
    prefix: "doh: ",
  });
  const served = new Set<Served>();
  /** Sockets a protocol connection runs on, until they close. */
  const sockets = new Set<Socket>();
  let closing = false;
  let tlsContext: tls.Server | undefined;

  const handle = dohFaceHandler({
    app: options.app,
    fast: options.fast,
    trustedProxyHeader: options.trustedProxyHeader,
    logger,
  });
  const tooLarge = tooLargeReply(options.fast);
  const maxBodyBytes = options.fast.maxQuerySize ?? 65_535;
  const limits = {
    maxBodyBytes,
    tooLargeReply: tooLarge,
    idleTimeoutMs: options.idleTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs,
  };

  /** Runs `protocol` on `socket` (already past TLS), feeding it what arrived so far. */
  function serve(socket: Socket, protocol: "h2" | "http/1.1", first?: Uint8Array): void {
    const { address, forwarder } = front.clientOf(socket);
    const handler = (request: ServerRequest): Promise<ServerReply> =>
      handle(request, address, forwarder);
    const onClose = (reason: string) => {
      served.delete(connection);
      logger?.debug("doh: connection closed", { reason });
    };
    const connection: Served = protocol === "h2"
      ? new H2ServerConnection(socketOf(socket), handler, { ...limits, onClose })
      : new H1ServerConnection(socketOf(socket), handler, { ...limits, onClose });
    served.add(connection);
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("data", (chunk: Uint8Array) => connection.receive(chunk));
    socket.on("end", () => connection.receiveEnd());
    socket.on("close", () => connection.receiveEnd(new Error("socket closed")));
    if (first) connection.receive(first);
  }

  /**
   * Plain HTTP: h2c when the client opens with the HTTP/2 preface, HTTP/1.1 otherwise. A PROXY
   * header here (the peer is not a trusted balancer, or sent a second one) closes the connection.
   */
  function sniff(socket: Socket): void {
    let seen = new Uint8Array(0);
    const onData = (chunk: Uint8Array) => {
      seen = concatBytes([seen, chunk], seen.length + chunk.length);
      const proxy = proxySignature(seen);
      if (proxy === "header") {
        logger?.debug("doh: connection refused", { reason: "proxy-header-untrusted" });
        options.onEvent?.("refused-proxy-header-untrusted");
        return void socket.destroy();
      }
      if (proxy === "maybe") return; // not decided yet
      if (prefaceSoFar(seen) && seen.length < PREFACE.length) return; // not decided yet
      socket.off("data", onData);
      socket.off("close", onGone);
      clearTimeout(timer);
      serve(socket, prefaceSoFar(seen) ? "h2" : "http/1.1", seen);
    };
    const onGone = () => clearTimeout(timer);
    // A client that connects and says nothing holds a slot until the request deadline.
    const timer = setTimeout(() => socket.destroy(), options.requestTimeoutMs ?? 10_000);
    socket.on("data", onData);
    socket.once("close", onGone);
    socket.resume(); // paused when the front read a PROXY header
  }

  let server: Server;
  if (secure) {
    // The TLS server never listens itself: the TCP front admits each connection (reading a
    // PROXY header first when the peer is a trusted balancer) and hands it over.
    const tlsServer = tls.createServer({
      cert: options.cert,
      key: options.key,
      ALPNProtocols: ["h2", "http/1.1"],
      handshakeTimeout: options.handshakeTimeoutMs ?? 5_000,
      minVersion: "TLSv1.2",
      noDelay: true,
    });
    tlsServer.on("tlsClientError", (error: Error, socket: tls.TLSSocket) => {
      logger?.debug("doh: tls handshake failed", { error: error.message });
      options.onEvent?.(front.isProbe(socket, error) ? "health-check" : "tls-handshake-failed");
      socket.destroy();
    });
    tlsServer.on("secureConnection", (socket: tls.TLSSocket) => {
      options.onHandshake?.(socket.isSessionReused());
      if (closing) return void socket.destroy();
      socket.setNoDelay(true);
      socket.on("error", (e: Error) => logger?.debug("doh: socket error", { error: e.message }));
      serve(socket, socket.alpnProtocol === "h2" ? "h2" : "http/1.1");
    });
    tlsContext = tlsServer;
    server = net.createServer({ noDelay: true }, (raw: Socket) => {
      front.admit(raw, (client: Client) => {
        if (front.handshake(raw, client)) tlsServer.emit("connection", raw);
      });
    });
  } else {
    server = net.createServer({ noDelay: true }, (socket: Socket) => {
      front.admit(socket, () => sniff(socket));
    });
  }

  await listenNode(server, options);
  server.on(
    "error",
    (error: Error) => logger?.error("doh: listener error", { error: error.message }),
  );
  const bound = server.address() as AddressInfo;

  return {
    addr: { hostname: bound.address, port: bound.port },
    tls: secure,
    get connections() {
      return slots.open;
    },
    setCertificate(cert: string, key: string) {
      if (!secure || closing) return;
      // node:tls under Deno takes a bad pair here without a word: check it first.
      checkCertificatePair(cert, key);
      tlsContext?.setSecureContext({ cert, key });
    },
    async shutdown(graceMs = 5_000) {
      closing = true;
      front.closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([...served].map((c) => c.shutdown(graceMs)));
      for (const c of served) c.destroy();
      // Closed sockets linger for the peer's FIN (so a final GOAWAY is read); give peers a
      // moment, then drop the rest, so a stopped listener holds no connection.
      const gone = [...sockets].map((s) => new Promise<void>((r) => s.once("close", () => r())));
      await Promise.race([Promise.all(gone), new Promise((r) => setTimeout(r, 250))]);
      for (const s of sockets) s.destroy();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 50))]);
    },
  };
}
