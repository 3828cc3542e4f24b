/**
 * The `Deno.listenTls` acceptor under `--dot-server native`: binding, the accept loop, the
 * accept-time refusals (`connection_slots.ts`), the handshake deadline, and the certificate swap
 * by rebinding.
 *
 * - The listener always binds with `reusePort: true` (Linux SO_REUSEPORT), so
 *   {@linkcode TlsAcceptor.setCertificate} can bind a second listener with the new pair on the
 *   same address and then close the old one; established connections belong to no listener and
 *   keep going. When the caller did not ask for `reusePort`, a plain bind on the port is tried
 *   first, so a port another process holds still fails as "address in use". A connection the
 *   kernel queued on the old listener in the instant it closes is reset (none with
 *   `net.ipv4.tcp_migrate_req=1`).
 * - Deno starts the TLS handshake on accept and lets it run to its end when the connection is
 *   closed (Deno 2.9.6): a refused client completes its handshake before it is closed, and a
 *   silent one keeps its socket until it leaves. Its slot is released at once either way.
 *
 * @module
 */
import type { Logger } from "../log/mod.ts";
import { ConnectionSlots } from "./connection_slots.ts";
import type { ListenerGuards } from "./listener_guards.ts";
import { messageOf } from "../errors/message_of.ts";

/**
 * Options of {@linkcode acceptTls}: the listener guards it applies itself (slots and handshake
 * deadline; the rest is its caller's), reported through its own hooks rather than `onEvent`.
 */
export interface TlsAcceptorOptions extends
  Pick<
    ListenerGuards,
    "maxConnections" | "maxConnectionsPerIp" | "accept" | "handshakeTimeoutMs" | "reusePort"
  > {
  hostname: string;
  port: number;
  cert: string;
  key: string;
  alpnProtocols: string[];
  /** The negotiated ALPN protocol must be this one, or the connection is dropped. */
  requireAlpn?: string;
  logger?: Logger;
  /** A connection refused at accept, and why. */
  onRefused?: (reason: string) => void;
  /** A handshake that failed or timed out (not counted while stopping). */
  onHandshakeFailed?: (error: Error) => void;
  /**
   * A connection whose handshake completed. `release` frees its slot (call it once, when the
   * connection is gone).
   */
  onConnection: (conn: Deno.TlsConn, peer: Deno.NetAddr, release: () => void) => void;
}

/** A running acceptor. */
export interface TlsAcceptor {
  readonly addr: Deno.NetAddr;
  /** Connections holding a slot (handshaking or established). */
  readonly connections: number;
  /** Binds the new pair next to the current listener, then closes that one. Throws for a bad pair. */
  setCertificate(cert: string, key: string): void;
  /** Stops accepting and closes connections still handshaking. */
  stop(): void;
}

/**
 * Starts accepting.
 *
 * @throws if the address cannot be bound or the certificate and key do not load
 */
export function acceptTls(options: TlsAcceptorOptions): TlsAcceptor {
  const { logger } = options;
  const handshakeMs = options.handshakeTimeoutMs ?? 5_000;
  const slots = new ConnectionSlots(options);
  const handshaking = new Set<Deno.TlsConn>();
  const live = new Set<Deno.TlsListener>();
  let stopped = false;

  const close = (conn: Deno.TlsConn) => {
    try {
      conn.close();
    } catch { /* already closed */ }
  };

  async function admit(conn: Deno.TlsConn): Promise<void> {
    const peer = conn.remoteAddr as Deno.NetAddr;
    const slot = slots.take(peer.hostname, stopped);
    if ("refused" in slot) {
      logger?.debug("connection refused", { reason: slot.refused });
      options.onRefused?.(slot.refused);
      return close(conn);
    }
    const release = slot.release;
    handshaking.add(conn);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const handshake = conn.handshake();
      handshake.catch(() => {}); // the timeout may win; its rejection then has no reader
      const info = await Promise.race([
        handshake,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("TLS handshake timeout")), handshakeMs);
        }),
      ]);
      if (options.requireAlpn && info.alpnProtocol !== options.requireAlpn) {
        throw new Error(`the client did not agree to ${options.requireAlpn}`);
      }
    } catch (error) {
      if (!stopped) {
        logger?.debug("tls handshake failed", { error: messageOf(error) });
        options.onHandshakeFailed?.(error as Error);
      }
      close(conn);
      return release();
    } finally {
      clearTimeout(timer);
      handshaking.delete(conn);
    }
    if (stopped) {
      close(conn);
      return release();
    }
    options.onConnection(conn, peer, release);
  }

  async function acceptLoop(listener: Deno.TlsListener): Promise<void> {
    for (;;) {
      let conn: Deno.TlsConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (!live.has(listener)) return; // closed by setCertificate() or stop()
        if (error instanceof Deno.errors.BadResource) return;
        // EMFILE and the like: say so, and give the process a moment before trying again.
        logger?.warn("accept failed", { error: messageOf(error) });
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      admit(conn).catch((error) =>
        logger?.error("connection setup failed", { error: messageOf(error) })
      );
    }
  }

  const bind = (cert: string, key: string, port: number) =>
    Deno.listenTls({
      hostname: options.hostname,
      port,
      cert,
      key,
      alpnProtocols: options.alpnProtocols,
      reusePort: true, // always: setCertificate() binds the new pair next to the old listener
    });
  const start = (listener: Deno.TlsListener) => {
    live.add(listener);
    void acceptLoop(listener);
  };
  const stopListener = (listener: Deno.TlsListener) => {
    live.delete(listener);
    try {
      listener.close();
    } catch { /* already closed */ }
  };

  if (!options.reusePort && options.port !== 0) {
    // Keep "address in use" an error: SO_REUSEPORT alone would share the port silently.
    Deno.listen({ hostname: options.hostname, port: options.port }).close();
  }
  let current = bind(options.cert, options.key, options.port);
  const addr = current.addr as Deno.NetAddr;
  start(current);

  return {
    addr,
    get connections() {
      return slots.open;
    },
    setCertificate(cert: string, key: string) {
      if (stopped) return;
      const next = bind(cert, key, addr.port); // throws for a bad pair: the old one stays
      const old = current;
      current = next;
      start(next);
      stopListener(old);
    },
    stop() {
      stopped = true;
      for (const listener of [...live]) stopListener(listener);
      for (const conn of handshaking) close(conn);
    },
  };
}
