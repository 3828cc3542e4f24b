/**
 * The DoQ face (RFC 9250) on Deno's QUIC API (`Deno.QuicEndpoint`, behind the `net` unstable
 * flag; quinn and rustls underneath).
 *
 * One query per client-initiated bidirectional stream: a 2-byte length prefix, the message, the
 * client's FIN; the answer goes back on the same stream, length-prefixed, then our FIN. The
 * query's message ID must be 0 (§4.2.1). A malformed stream (nothing or a zero length, a
 * truncated message, a second message or any byte after the first, more than 65 537 bytes, a
 * non-zero ID, bytes that are not a DNS query) is the fatal error of §4.3.3: that connection is
 * closed with DOQ_PROTOCOL_ERROR, other connections carry on. (Resetting only the stream with
 * the code is not possible: Deno 2.9 has no RESET_STREAM with an application error code.) A
 * stream that does not deliver its query and FIN in time is ended without an answer.
 *
 * Limits: the QUIC transport caps the concurrent bidirectional streams a client may open
 * (`maxStreams`) and allows it no unidirectional stream at all (DoQ uses none); the idle timeout
 * is QUIC's own; an answer that the client does not take within `answerTimeoutMs` (it grants no
 * flow-control credit) closes its connection. Who may connect is decided before the handshake
 * completes (see `admit`): shutdown and `--max-connections` refuse the incoming connection before
 * any cryptography; the new-connection and handshake rate limits, the per-address cap and the ACL
 * need the client's address, which Deno gives only once the client's first flight has been read,
 * and close the connection in that same turn, so the client's handshake never completes. No
 * stream is read before the handshake completes, so 0-RTT queries (replayable) are never acted on
 * early.
 *
 * What Deno 2.9 cannot do: the certificate is given to `listen()` once per endpoint and the UDP
 * socket has no SO_REUSEPORT, so a new certificate would need a new endpoint on the same port,
 * closing every connection. The face therefore keeps the certificate it started with; the
 * certificate watch logs that a restart is needed for DoQ.
 *
 * @module
 */
import { TimerLane } from "../async/timer_lane.ts";
import { encodeFrames } from "../framing/codec.ts";
import {
  DoqReadTimeout,
  DoqStreamError,
  type DoqStreamFault,
  readDoqMessage,
} from "../framing/doq_stream.ts";
import type { Logger } from "../log/mod.ts";
import type { Answer } from "../dns/answer.ts";
import type { Processor } from "../resolver/processor.ts";
import { ConnectionSlots, type Refusal as SlotRefusal } from "./connection_slots.ts";
import type { ListenerGuards } from "./listener_guards.ts";
import { messageOf } from "../errors/message_of.ts";

/** RFC 9250 §8.4 error codes. */
export const DoqError = {
  NO_ERROR: 0x0,
  INTERNAL_ERROR: 0x1,
  PROTOCOL_ERROR: 0x2,
  REQUEST_CANCELLED: 0x3,
  EXCESSIVE_LOAD: 0x4,
  UNSPECIFIED_ERROR: 0x5,
} as const;

/** How long answers written before shutdown get to reach their clients (within the grace). */
const SHUTDOWN_LINGER_MS = 200;

/**
 * Options of {@linkcode listenDoq}: the listener guards but the PROXY protocol (not over UDP)
 * and `reusePort` (Deno's QUIC endpoint has no SO_REUSEPORT). `idleTimeoutMs` is QUIC's idle
 * timeout (no packet for that long); `onEvent` also hears of stream errors; `onHandshake` is
 * always told `undefined`: Deno's `QuicConn` does not say whether it resumed a session (Deno's
 * own QUIC client does resume against this server).
 */
export interface DoqListenerOptions extends Omit<ListenerGuards, "proxyFrom" | "reusePort"> {
  hostname: string;
  port: number;
  /** PEM certificate chain and key. */
  cert: string;
  key: string;
  process: Processor;
  logger?: Logger;
  /** Time a stream may take to deliver its query and FIN. Default 5 s. */
  streamTimeoutMs?: number;
  /**
   * Time an answer may take to be handed to QUIC (the client's flow-control credit) and
   * finished; past it the connection is closed with DOQ_EXCESSIVE_LOAD. Default `streamTimeoutMs`.
   */
  answerTimeoutMs?: number;
  /** Concurrent bidirectional streams (queries) one connection may have open. Default 100. */
  maxStreams?: number;
  /** Largest query accepted, in bytes. Default 65 535. */
  maxMessageSize?: number;
  /** The tenant a connection belongs to, from the server name the client sent (SNI). */
  tenantOf?: (servername: string) => string | undefined;
}

/** A running DoQ listener. */
export interface DoqListener {
  /** The bound UDP address (the real port when 0 was asked for). */
  readonly addr: { hostname: string; port: number };
  /** Connections accepted and not yet closed (including those mid-handshake). */
  readonly connections: number;
  /**
   * Stops accepting, lets queries already received be answered (at most `graceMs`), then closes
   * every connection with DOQ_NO_ERROR and the endpoint.
   */
  shutdown(graceMs: number): Promise<void>;
}

/** Why a stream was rejected, for the event counter. */
type StreamFault = DoqStreamFault | "nonzero-id" | "timeout";

/** Why a connection was refused before its handshake completed, for the event counter. */
type Refusal = "connection-rate" | "handshake-rate" | SlotRefusal;

/**
 * The query a stream carries, read to its FIN within its lane's deadline (one timer per lane,
 * not one per stream, and no AbortController per stream), or the RFC 9250 fault in it.
 */
async function queryOf(
  readable: ReadableStream<Uint8Array>,
  maxMessageSize: number,
  lane: TimerLane,
): Promise<Uint8Array | { fault: StreamFault }> {
  let query: Uint8Array;
  try {
    query = await readDoqMessage(readable, { maxMessageSize, lane });
  } catch (error) {
    if (error instanceof DoqStreamError) return { fault: error.fault };
    if (error instanceof DoqReadTimeout) return { fault: "timeout" };
    throw error;
  }
  // RFC 9250 §4.2.1: the message ID must be 0.
  if (query.byteLength >= 2 && (query[0] !== 0 || query[1] !== 0)) return { fault: "nonzero-id" };
  return query;
}

/**
 * Ends a stream we will not answer. Deno 2.9 has no RESET_STREAM or STOP_SENDING with an
 * application code (a stream's `abort()`/`cancel()` only drop it, and quinn then finishes the
 * send half), so the client sees the stream end with no message.
 */
function dropStream(stream: Deno.QuicBidirectionalStream): void {
  stream.writable.close().catch(() => {});
  stream.readable.cancel().catch(() => {});
}

/**
 * Starts the DoQ listener.
 *
 * @throws if the address cannot be bound or the certificate and key do not load
 *
 * @example
 * ```ts
 * const doq = listenDoq({ hostname: "127.0.0.1", port: 8853, cert, key, process });
 * ```
 */
export function listenDoq(options: DoqListenerOptions): DoqListener {
  const { logger, onEvent } = options;
  const slots = new ConnectionSlots({
    maxConnections: options.maxConnections,
    maxConnectionsPerIp: options.maxConnectionsPerIp,
    accept: options.accept,
  });
  const maxConnections = options.maxConnections ?? 10_000;
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 5_000;
  const streamTimeoutMs = options.streamTimeoutMs ?? 5_000;
  const streamLane = new TimerLane(streamTimeoutMs);
  const answerLane = new TimerLane(options.answerTimeoutMs ?? streamTimeoutMs);
  const maxMessageSize = Math.min(options.maxMessageSize ?? 65_535, 65_535);
  const conns = new Set<Deno.QuicConn>();
  const inFlight = new Set<Promise<void>>();
  let closing = false;

  const endpoint = new Deno.QuicEndpoint({ hostname: options.hostname, port: options.port });
  let listener: Deno.QuicListener;
  try {
    listener = endpoint.listen({
      cert: options.cert,
      key: options.key,
      alpnProtocols: ["doq"],
      maxIdleTimeout: options.idleTimeoutMs ?? 10_000,
      maxConcurrentBidirectionalStreams: options.maxStreams ?? 100,
      // DoQ has no use for them; AdGuard fixed a memory exhaustion from idle ones.
      maxConcurrentUnidirectionalStreams: 0,
    });
  } catch (error) {
    endpoint.close();
    throw error;
  }

  /**
   * RFC 9250 §4.3.3: a malformed stream is a fatal error; the connection is closed with
   * DOQ_PROTOCOL_ERROR (Deno cannot reset just the stream with a code anyway). Other
   * connections are not affected.
   */
  function protocolError(conn: Deno.QuicConn, fault: string): void {
    onEvent?.(`closed-protocol-error-${fault}`);
    try {
      conn.close({ closeCode: DoqError.PROTOCOL_ERROR, reason: fault });
    } catch {
      // already closed
    }
  }

  async function serveStream(
    conn: Deno.QuicConn,
    stream: Deno.QuicBidirectionalStream,
    ctx: Parameters<Processor>[1],
  ): Promise<void> {
    let query: Uint8Array | { fault: StreamFault };
    try {
      query = await queryOf(stream.readable, maxMessageSize, streamLane);
    } catch {
      return; // the client reset it, or the connection is gone
    }
    if ("fault" in query) {
      const { fault } = query;
      logger?.debug("doq stream rejected", { fault });
      if (fault === "timeout") {
        onEvent?.("stream-timeout");
        dropStream(stream);
      } else {
        protocolError(conn, fault);
      }
      return;
    }
    let answer: Answer | null;
    try {
      answer = await options.process(query, ctx);
    } catch (error) {
      logger?.debug("doq query failed", { error: messageOf(error) });
      dropStream(stream);
      return;
    }
    if (answer === null) {
      // The processor drops what is not a DNS query at all.
      protocolError(conn, "not-a-query");
      return;
    }
    if (answer.wire.byteLength > 65_535) {
      dropStream(stream);
      return;
    }
    await writeAnswer(conn, stream, encodeFrames([answer.wire]));
  }

  /**
   * Writes an answer and finishes the stream, within the answer deadline. A write waits while
   * the client grants no flow-control credit for it; past the deadline the whole connection is
   * closed (DOQ_EXCESSIVE_LOAD): dropping just the stream would not do, since Deno 2.9 cannot
   * reset it, and quinn would keep the answer for as long as the client keeps the connection.
   */
  async function writeAnswer(
    conn: Deno.QuicConn,
    stream: Deno.QuicBidirectionalStream,
    framed: Uint8Array,
  ): Promise<void> {
    const writer = stream.writable.getWriter();
    let expired = false;
    let expire!: () => void;
    const timeout = new Promise<void>((resolve) => (expire = resolve));
    const entry = answerLane.add(() => {
      expired = true;
      expire();
    });
    try {
      await Promise.race([writer.write(framed).then(() => writer.close()), timeout]);
    } catch {
      // The client reset the stream or the connection went away: nothing to answer to.
    } finally {
      answerLane.cancel(entry);
    }
    if (!expired) return;
    onEvent?.("closed-answer-timeout");
    logger?.debug("doq answer not taken in time; closing the connection");
    try {
      conn.close({ closeCode: DoqError.EXCESSIVE_LOAD, reason: "answer timeout" });
    } catch {
      // already closed
    }
  }

  async function serveConnection(
    conn: Deno.QuicConn,
    client: { address: string; port: number },
  ): Promise<void> {
    const servername = conn.serverName ?? "";
    const tenant = servername && options.tenantOf ? options.tenantOf(servername) : undefined;
    const abort = new AbortController();
    const ctx = { face: "doq" as const, signal: abort.signal, client, tenant };
    conn.closed.then(
      () => abort.abort(new Error("connection closed")),
      () => abort.abort(new Error("connection closed")),
    );
    // No unidirectional stream is allowed (limit 0); one arriving anyway is a protocol error.
    const uni = conn.incomingUnidirectionalStreams.getReader();
    uni.read().then(({ done }) => {
      if (done) return;
      protocolError(conn, "unidirectional-stream");
    }, () => {});
    const streams = conn.incomingBidirectionalStreams.getReader();
    try {
      while (true) {
        const { value: stream, done } = await streams.read();
        if (done) break;
        if (closing) {
          dropStream(stream);
          continue;
        }
        const served = serveStream(conn, stream, ctx).catch((error) => {
          logger?.debug("doq stream failed", { error: messageOf(error) });
        });
        inFlight.add(served);
        served.finally(() => inFlight.delete(served));
      }
    } catch {
      // The connection closed (idle timeout, peer close, shutdown).
    }
  }

  /**
   * The rules that need the client's address, in the order the TCP faces apply them: the
   * new-connection rate, the slots (shutdown, caps, ACL), then the handshake rate.
   */
  function rules(address: string): { release: () => void } | { refused: Refusal } {
    if (options.connectionRate && !options.connectionRate.take(address)) {
      return { refused: "connection-rate" };
    }
    const slot = slots.take(address, closing);
    if ("refused" in slot) return slot;
    if (options.handshakeRate && !options.handshakeRate.take(address)) {
      slot.release();
      return { refused: "handshake-rate" };
    }
    return slot;
  }

  function refuse(reason: Refusal, conn?: Deno.QuicConn): void {
    onEvent?.(`refused-${reason}`);
    logger?.debug("doq connection refused", { reason });
    if (!conn) return;
    try {
      conn.close({
        closeCode: reason === "shutdown"
          ? DoqError.NO_ERROR
          : reason === "acl"
          ? DoqError.UNSPECIFIED_ERROR
          : DoqError.EXCESSIVE_LOAD,
        reason: "",
      });
    } catch {
      // already closed
    }
  }

  /**
   * Admits an incoming connection, refusing it as early as Deno 2.9.6 allows:
   *
   * - Shutdown and `--max-connections` need no address: the incoming connection is refused
   *   (`QuicIncoming.refuse()`) before any cryptography is spent on it.
   * - The rest need the address, and `QuicIncoming` cannot give it: reading its `remoteAddr`
   *   (or `localIp`, or `remoteAddressValidated`) consumes the incoming connection, which is then
   *   refused and cannot be accepted. So the connection is accepted as 0.5-RTT
   *   (`accept({ zeroRtt: true })`, which returns at once, with the client's first flight read
   *   and the server's computed), its address checked, and a refused one closed in the same turn:
   *   the client's handshake never completes (it sees the close as an application error during
   *   the handshake, RFC 9000 §10.2.3, without the DoQ code).
   *
   * No stream is read until the handshake has completed.
   */
  function admit(incoming: Deno.QuicIncoming): void {
    if (closing) {
      incoming.refuse();
      return refuse("shutdown");
    }
    if (slots.open >= maxConnections) {
      incoming.refuse();
      return refuse("max-connections");
    }
    let conn: Deno.QuicConn;
    try {
      conn = incoming.accept({ zeroRtt: true });
    } catch (error) {
      // A ClientHello that cannot be served (no common ALPN, bad TLS): already closed by quinn.
      onEvent?.("tls-handshake-failed");
      logger?.debug("doq accept failed", { error: messageOf(error) });
      return;
    }
    const client = { address: conn.remoteAddr.hostname, port: conn.remoteAddr.port };
    const slot = rules(client.address);
    if ("refused" in slot) return refuse(slot.refused, conn);
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      conns.delete(conn);
      slot.release();
    };
    conn.closed.then(done, done);
    // `handshake` also resolves when the connection dies first; a handshake that failed shows as
    // `closed` rejecting (a transport error), where a peer's or our own close resolves it.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = Promise.race([
      conn.handshake.then(() => "done" as const),
      conn.closed.then(() => new Promise<never>(() => {}), () => "failed" as const),
      new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), handshakeTimeoutMs))),
    ]);
    outcome.then(async (result) => {
      clearTimeout(timer);
      if (result !== "done") {
        onEvent?.("tls-handshake-failed");
        logger?.debug("doq handshake failed", { reason: result });
        try {
          conn.close({ closeCode: DoqError.NO_ERROR, reason: "handshake timeout" });
        } catch {
          // already closed
        }
        return;
      }
      options.onHandshake?.(undefined);
      if (settled) return; // the client left at once
      if (closing) {
        conn.close({ closeCode: DoqError.NO_ERROR, reason: "shutdown" });
        return;
      }
      conns.add(conn);
      await serveConnection(conn, client);
    });
  }

  const accepting = (async () => {
    try {
      for await (const incoming of listener) {
        admit(incoming);
      }
    } catch (error) {
      if (!closing) logger?.error("doq listener error", { error: messageOf(error) });
    }
  })();

  const addr = endpoint.addr;
  return {
    addr: { hostname: addr.hostname, port: addr.port },
    get connections() {
      return slots.open;
    },
    async shutdown(graceMs: number) {
      if (closing) return;
      closing = true;
      listener.stop();
      const deadline = Date.now() + graceMs;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all([...inFlight]),
        new Promise((r) => timer = setTimeout(r, graceMs)),
      ]);
      clearTimeout(timer);
      // A written answer may still be in quinn's send buffer (a stream's close() does not wait
      // for the peer's ACK), and CONNECTION_CLOSE discards it: give it a moment to leave.
      const linger = Math.max(0, Math.min(SHUTDOWN_LINGER_MS, deadline - Date.now()));
      if (conns.size > 0 && linger > 0) await new Promise((r) => setTimeout(r, linger));
      for (const conn of conns) {
        conn.close({ closeCode: DoqError.NO_ERROR, reason: "shutdown" });
      }
      // Let the CONNECTION_CLOSE frames leave before the socket goes.
      await new Promise((r) => setTimeout(r, 20));
      endpoint.close({ closeCode: DoqError.NO_ERROR, reason: "shutdown" });
      await Promise.race([accepting, new Promise((r) => setTimeout(r, 50))]);
    },
  };
}
