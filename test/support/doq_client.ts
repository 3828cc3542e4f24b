/**
 * A small DNS-over-QUIC test client written from RFC 9250 (not sharing the server's code):
 * ALPN `doq`; each query on its own client-initiated bidirectional stream as a 2-byte length
 * and the message with ID 0 (§4.2.1), then the FIN; the answer is read to the server's FIN.
 * `Deno.connectQuic` underneath (the `net` unstable flag).
 *
 * @module
 */

/** Default wait for an answer before a helper gives up. */
export const DOQ_WAIT_MS = 5_000;

/** Options of {@linkcode connectDoq}. */
export interface DoqConnectOptions {
  port: number;
  /** PEM CA certificate(s) to trust. */
  caCerts: string[];
  /** Name to send as SNI and verify. Default `localhost`. */
  serverName?: string;
  /** ALPN to offer. Default `["doq"]`. */
  alpn?: string[];
  /** The client's own idle timeout; default none (the server's applies). */
  maxIdleTimeout?: number;
}

/** What a stream ended with. */
export type StreamOutcome =
  | { kind: "answer"; wire: Uint8Array }
  /** The server closed the whole connection, with this application error code. */
  | { kind: "closed"; code: number; reason: string }
  /** The stream failed (reset, or the connection was lost without a close code seen). */
  | { kind: "reset"; message: string }
  /** The server's FIN came with bytes that are not one length-prefixed message. */
  | { kind: "malformed"; bytes: Uint8Array };

/** One open DoQ connection. */
export interface DoqClient {
  readonly conn: Deno.QuicConn;
  /** Sends one query (its ID is set to 0 first) and resolves with the answer. */
  query(wire: Uint8Array, waitMs?: number): Promise<Uint8Array>;
  /**
   * Opens a stream, writes `bytes` exactly as given (in `chunks`, if several), ends it with a
   * FIN unless `fin` is false, and reports how the server ended the stream.
   */
  raw(chunks: Uint8Array[], options?: { fin?: boolean; waitMs?: number }): Promise<StreamOutcome>;
  close(): void;
}

/** `wire` with a 2-byte length in front (RFC 9250 §4.2). */
export function lengthPrefixed(wire: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + wire.byteLength);
  new DataView(out.buffer).setUint16(0, wire.byteLength);
  out.set(wire, 2);
  return out;
}

/** A copy of `wire` with message ID 0. */
export function withIdZero(wire: Uint8Array): Uint8Array {
  const out = wire.slice();
  out[0] = 0;
  out[1] = 0;
  return out;
}

async function readAll(readable: ReadableStream<Uint8Array>, waitMs: number): Promise<Uint8Array> {
  const reader = readable.getReader();
  const chunks: Uint8Array[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${waitMs} ms`)), waitMs);
  });
  try {
    while (true) {
      const { value, done } = await Promise.race([reader.read(), timeout]);
      if (done) break;
      chunks.push(value);
    }
  } finally {
    clearTimeout(timer);
  }
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return all;
}

/** Opens a stream, waiting for stream credit when the server's limit is reached. */
async function openStream(conn: Deno.QuicConn): Promise<Deno.QuicBidirectionalStream> {
  return await conn.createBidirectionalStream({ waitUntilAvailable: true });
}

/** Connects to a DoQ server on 127.0.0.1. */
export async function connectDoq(options: DoqConnectOptions): Promise<DoqClient> {
  const conn = await Deno.connectQuic({
    hostname: "127.0.0.1",
    port: options.port,
    serverName: options.serverName ?? "localhost",
    caCerts: options.caCerts,
    alpnProtocols: options.alpn ?? ["doq"],
    maxIdleTimeout: options.maxIdleTimeout,
  });
  let closeInfo: Deno.QuicCloseInfo | undefined;
  conn.closed.then((info) => closeInfo = info, () => {});
  /** How a failed stream ended: the connection's close, if it comes within a moment. */
  async function failure(error: unknown): Promise<StreamOutcome> {
    await Promise.race([conn.closed.catch(() => {}), new Promise((r) => setTimeout(r, 200))]);
    if (closeInfo) return { kind: "closed", code: closeInfo.closeCode, reason: closeInfo.reason };
    return { kind: "reset", message: (error as Error)?.message ?? String(error) };
  }
  async function raw(
    chunks: Uint8Array[],
    opts: { fin?: boolean; waitMs?: number } = {},
  ): Promise<StreamOutcome> {
    let stream: Deno.QuicBidirectionalStream;
    try {
      stream = await openStream(conn);
    } catch (error) {
      return await failure(error);
    }
    const writer = stream.writable.getWriter();
    try {
      for (const c of chunks) await writer.write(c);
      if (opts.fin ?? true) await writer.close();
    } catch (error) {
      return await failure(error);
    }
    let bytes: Uint8Array;
    try {
      bytes = await readAll(stream.readable, opts.waitMs ?? DOQ_WAIT_MS);
    } catch (error) {
      if ((error as Error).message?.startsWith("no answer within")) throw error;
      return await failure(error);
    }
    if (bytes.byteLength === 0) {
      // An empty end: the stream was dropped, or the connection closed under it.
      const closed = await failure(new Error("stream ended without a message"));
      if (closed.kind === "closed") return closed;
      return { kind: "malformed", bytes };
    }
    if (bytes.byteLength < 2) return { kind: "malformed", bytes };
    const length = (bytes[0] << 8) | bytes[1];
    if (bytes.byteLength !== 2 + length) return { kind: "malformed", bytes };
    return { kind: "answer", wire: bytes.slice(2) };
  }
  return {
    conn,
    raw,
    async query(wire, waitMs) {
      const outcome = await raw([lengthPrefixed(withIdZero(wire))], { waitMs });
      if (outcome.kind !== "answer") {
        throw new Error(`DoQ query failed: ${JSON.stringify(outcome)}`);
      }
      return outcome.wire;
    },
    close() {
      try {
        conn.close({ closeCode: 0, reason: "" });
      } catch {
        // already closed
      }
    },
  };
}
