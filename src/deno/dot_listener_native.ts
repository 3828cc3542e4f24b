/**
 * The DoT face (RFC 7858) on `Deno.listenTls`, the alternative to the `node:tls` listener in
 * `dot_listener.ts` (`--dot-server native`). Same options, same {@linkcode DotListener}, same
 * {@linkcode StreamSession} per connection; what differs is what Deno's TLS server offers:
 *
 * - **Less memory per connection.** Each connection reads with `conn.read()` into a small buffer
 *   (grown only while reads fill it), so an idle connection pins little beyond rustls' state.
 * - **No SNI.** Deno does not tell which server name a client asked for, nor serve a certificate
 *   per name: `tenantOf` cannot work, and is refused.
 * - **No PROXY protocol, no connection or handshake rate limits.** TLS starts at accept, on the
 *   raw connection, so no header can be read before it; the config refuses
 *   `--proxy-protocol-from`, `--connection-rate-limit` and `--handshake-rate-limit` with this
 *   listener, and `proxyFrom`, `connectionRate` and `handshakeRate` are ignored here.
 * - **Certificate swap by rebinding, and handshakes that cannot be stopped**: accepting, refusals,
 *   the handshake deadline and the swap are `tls_acceptor.ts`; its module doc says what Deno
 *   allows there. Measured on Deno 2.9.6: a refused client (ACL, caps) and one past the
 *   handshake timeout are closed as soon as their handshake ends, and an idle one at the idle
 *   timeout; but `close()` cannot cut a handshake short (rustls-tokio-stream's handshake task
 *   holds the socket until the client completes the handshake or leaves), so a client that sends
 *   nothing, or stalls mid-handshake, keeps its socket open, though not its slot. No public API
 *   reaches that socket (no server-side `startTls`, no handshake timeout on `listenTls`): where
 *   that matters, use the default `node:tls` listener, which closes such sockets at once.
 * - **No TCP_NODELAY.** A TLS connection from `Deno.listenTls` has no `setNoDelay()`; it is called
 *   when present. Answers are batched into one write per drain, which keeps Nagle's delay to
 *   answers that complete while an earlier write is still unacknowledged.
 *
 * @module
 */
import type { StreamSession, StreamTransport } from "../framing/session.ts";
import { concatBytes } from "../bytes/concat.ts";
import {
  type DotListener,
  type DotListenerOptions,
  DotSessions,
  startDotSession,
} from "./dot_listener.ts";
import { acceptTls } from "./tls_acceptor.ts";
import { messageOf } from "../errors/message_of.ts";

/**
 * First read buffer of a connection: what an idle connection pins while its read is pending.
 * Room for a padded query (RFC 8467 pads to 128 bytes) with its length; a fuller read moves to
 * the large buffer.
 */
const READ_SMALL = 256;
/** Read buffer while reads keep filling the small one (a pipelining client); a TLS record. */
const READ_LARGE = 16 * 1024;
/** How long a closed-for-writing connection waits for the peer's FIN before it is dropped. */
const LINGER_MS = 2_000;

/** True for the errors a connection closed under us (or by us) raises; not worth logging. */
function isCloseError(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.UnexpectedEof;
}

/** One accepted connection: the {@linkcode StreamTransport} under its session. */
class NativeConnection implements StreamTransport {
  session: StreamSession | undefined;
  readonly #conn: Deno.TlsConn;
  readonly #onClosed: () => void;
  readonly #onError: (error: unknown) => void;
  #small: Uint8Array | undefined;
  #paused = false;
  #reading = false;
  #peerEnded = false;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #pending = 0;
  #writing = false;
  #ending = false;
  #writeClosed = false;
  #closed = false;
  #linger: ReturnType<typeof setTimeout> | undefined;
  #settle!: () => void;
  /** Resolves once queued bytes have gone out and our side is closed, or the connection is. */
  readonly settled: Promise<void> = new Promise((resolve) => (this.#settle = resolve));

  constructor(conn: Deno.TlsConn, onClosed: () => void, onError: (error: unknown) => void) {
    this.#conn = conn;
    this.#onClosed = onClosed;
    this.#onError = onError;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Starts reading into the session (after the handshake). */
  start(session: StreamSession): void {
    this.session = session;
    this.#startReading();
  }

  write(bytes: Uint8Array): void {
    if (this.#closed || this.#ending || bytes.length === 0) return;
    this.#queue.push(bytes);
    this.#queuedBytes += bytes.length;
    if (!this.#writing) void this.#drain();
  }

  get writableLength(): number {
    return this.#queuedBytes + this.#pending;
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#startReading();
  }

  end(): void {
    if (this.#closed || this.#ending) return;
    this.#ending = true;
    // Like the node listener: send what is queued, then our FIN; keep reading to see the peer's,
    // and drop a peer that ignores ours after a short linger.
    this.#linger = setTimeout(() => this.destroy(), LINGER_MS);
    if (!this.#writing) void this.#closeWrite();
    this.resume();
  }

  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#linger);
    this.#queue = [];
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    this.#settle();
    this.#onClosed();
    this.session?.transportClosed();
  }

  #startReading(): void {
    if (this.#reading || this.#paused || this.#closed || this.#peerEnded || !this.session) return;
    void this.#readLoop();
  }

  async #readLoop(): Promise<void> {
    this.#reading = true;
    this.#small ??= new Uint8Array(READ_SMALL);
    let buf = this.#small;
    try {
      while (!this.#paused && !this.#closed) {
        const n = await this.#conn.read(buf);
        if (this.#closed) return;
        if (n === null) {
          this.#peerEnded = true;
          break;
        }
        if (n === 0) continue;
        // The session keeps views of what it is given (frames in flight): hand over a copy and
        // reuse the buffer. A full read means more is waiting: take the next in a record-sized
        // buffer, and drop that one again as soon as a read does not fill it.
        const chunk = buf.slice(0, n);
        if (n === buf.length) {
          if (buf.length < READ_LARGE) buf = new Uint8Array(READ_LARGE);
        } else if (buf !== this.#small) {
          buf = this.#small;
        }
        this.session!.receive(chunk);
      }
    } catch (error) {
      this.#reading = false;
      return this.#fail(error);
    }
    this.#reading = false;
    if (this.#closed || !this.#peerEnded) return;
    if (this.#writeClosed) this.destroy();
    else if (!this.#ending) this.session!.peerEnded();
    // else: #closeWrite() closes once our FIN is out.
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const batch = this.#queue.length === 1
          ? this.#queue[0]
          : concatBytes(this.#queue, this.#queuedBytes);
        this.#queue = [];
        this.#queuedBytes = 0;
        this.#pending = batch.length;
        let pos = 0;
        while (pos < batch.length) {
          const n = await this.#conn.write(pos === 0 ? batch : batch.subarray(pos));
          if (this.#closed) return;
          pos += n;
          this.#pending -= n;
        }
      }
    } catch (error) {
      return this.#fail(error);
    } finally {
      this.#writing = false;
    }
    if (this.#closed) return;
    if (this.#ending) return void this.#closeWrite();
    this.session?.writable();
  }

  async #closeWrite(): Promise<void> {
    try {
      await this.#conn.closeWrite();
    } catch (error) {
      return this.#fail(error);
    }
    this.#writeClosed = true;
    this.#settle();
    if (this.#peerEnded) this.destroy();
  }

  #fail(error: unknown): void {
    if (this.#closed) return;
    if (!isCloseError(error)) this.#onError(error);
    this.destroy();
  }
}

/**
 * Starts the DoT listener on `Deno.listenTls`. Options and result as {@linkcode listenDot},
 * except `tenantOf`, which needs SNI and is refused.
 *
 * @throws if the address cannot be bound, the certificate and key do not load, or `tenantOf` is
 *   given
 *
 * @example
 * ```ts
 * const dot = await listenDotNative({ hostname: "127.0.0.1", port: 8853, cert, key, process });
 * ```
 */
export function listenDotNative(options: DotListenerOptions): Promise<DotListener> {
  try {
    return Promise.resolve(serve(options));
  } catch (error) {
    return Promise.reject(error);
  }
}

function serve(options: DotListenerOptions): DotListener {
  if (options.tenantOf) {
    throw new Error("the Deno.listenTls DoT listener has no SNI: tenantOf needs the node:tls one");
  }
  const logger = options.logger;
  const sessions = new DotSessions(options);
  const established = new Set<NativeConnection>();
  let closing = false;

  const acceptor = acceptTls({
    hostname: options.hostname,
    port: options.port,
    cert: options.cert,
    key: options.key,
    alpnProtocols: ["dot"],
    reusePort: options.reusePort,
    maxConnections: options.maxConnections,
    maxConnectionsPerIp: options.maxConnectionsPerIp,
    handshakeTimeoutMs: options.handshakeTimeoutMs,
    accept: options.accept,
    logger,
    onRefused: (reason) => options.onEvent?.(`refused-${reason}`),
    onHandshakeFailed: () => options.onEvent?.("tls-handshake-failed"),
    onConnection: (conn, peer, release) => {
      // Deno.TlsConn does not say whether the handshake resumed a session (it may have).
      options.onHandshake?.(undefined);
      const connection = new NativeConnection(conn, () => {
        release();
        established.delete(connection);
      }, (error) => logger?.debug("socket error", { error: messageOf(error) }));
      if (closing) return connection.destroy();
      (conn as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      const session = startDotSession(connection, options, sessions, {
        client: { address: peer.hostname, port: peer.port },
        tenant: undefined,
      });
      established.add(connection);
      connection.start(session);
    },
  });

  return {
    addr: { hostname: acceptor.addr.hostname, port: acceptor.addr.port },
    get connections() {
      return acceptor.connections;
    },
    setCertificate(cert: string, key: string) {
      // Throws for a bad pair (or where SO_REUSEPORT is not honoured): the old listener stays.
      if (!closing) acceptor.setCertificate(cert, key);
    },
    async shutdown(graceMs: number) {
      closing = true;
      const deadline = performance.now() + graceMs;
      acceptor.stop();
      await Promise.all([...sessions.all].map((s) => s.shutdown(graceMs)));
      // The last answers are queued on their connections: let them reach the kernel (the
      // process may exit right after this resolves), within what is left of the grace.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all([...established].map((c) => c.settled)),
        new Promise((r) => (timer = setTimeout(r, Math.max(0, deadline - performance.now())))),
      ]);
      clearTimeout(timer);
    },
  };
}
