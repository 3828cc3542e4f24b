/**
 * A local DoQ upstream (RFC 9250) on an ephemeral loopback UDP port, over `Deno.QuicEndpoint`
 * with a test certificate and ALPN `doq`, answering the test zone. Written from the RFC, not
 * from the bridge's code: each client-initiated bidirectional stream carries one query (2-byte
 * length, message with ID 0, then FIN); the answer goes back on the same stream, then FIN.
 *
 * Names `delay-<ms>.example.test` are answered after `<ms>` milliseconds. Faults can be switched
 * on per test.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import dnsPacket from "dns-packet";
import { answerFromZone, delayFor } from "./zone.ts";

/** What the server does with the queries it receives. */
export type DoqServerMode =
  /** Answer from the zone. */
  | "ok"
  /** Read queries, never answer. */
  | "stall"
  /** Answer with ID 0x1234 instead of 0. */
  | "wrong-id"
  /** Answer for another name. */
  | "wrong-question";

/** Options of {@linkcode startDoqUpstream}. */
export interface DoqUpstreamServerOptions {
  /** The certificate chain and key to serve (e.g. `testPki().server`). */
  cert: { chainPem: string; keyPem: string };
  /** Default `127.0.0.1`. */
  hostname?: string;
  /** Concurrent bidirectional streams a client may open. Default 100 (quinn's default). */
  maxStreams?: number;
}

/** A running local DoQ upstream. */
export interface LocalDoqUpstream {
  readonly hostname: string;
  readonly port: number;
  mode: DoqServerMode;
  /** The next `times` connections that receive their `n`-th query are closed at once. */
  killAfter(n: number, times?: number): void;
  /** QUIC connections accepted so far. */
  readonly connections: number;
  /** Queries received so far. */
  readonly queries: number;
  /** Message IDs seen on the wire (every one should be 0). */
  readonly ids: Set<number>;
  /** Queries being answered at the same time, at most. */
  readonly peakConcurrent: number;
  /** Connections closed by {@linkcode killAfter}. */
  readonly killed: number;
  /**
   * Closes every open connection and keeps listening: what a client sees when the server
   * restarts. (A real restart on the same port is not possible here: Deno keeps the UDP socket
   * of a closed `QuicEndpoint` bound while connections it had are referenced.)
   */
  restart(): void;
  close(): Promise<void>;
}

async function readAll(readable: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of readable) {
    parts.push(chunk);
    size += chunk.length;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function rewrite(answer: Uint8Array, mode: DoqServerMode): Uint8Array {
  if (mode === "wrong-id") {
    const copy = answer.slice();
    copy[0] = 0x12;
    copy[1] = 0x34;
    return copy;
  }
  if (mode === "wrong-question") {
    const decoded = dnsPacket.decode(Buffer.from(answer));
    const q = decoded.questions![0];
    return new Uint8Array(dnsPacket.encode({
      ...decoded,
      questions: [{ ...q, name: `other-${q.name}` }],
      answers: [],
    }));
  }
  return answer;
}

/** Starts a local DoQ upstream. */
export function startDoqUpstream(options: DoqUpstreamServerOptions): LocalDoqUpstream {
  const hostname = options.hostname ?? "127.0.0.1";
  const endpoint = new Deno.QuicEndpoint({ hostname, port: 0 });
  const listener = endpoint.listen({
    cert: options.cert.chainPem,
    key: options.cert.keyPem,
    alpnProtocols: ["doq"],
    maxConcurrentBidirectionalStreams: options.maxStreams ?? 100,
  });
  const conns = new Set<Deno.QuicConn>();
  const kills: { n: number; times: number } = { n: 0, times: 0 };
  let connections = 0;
  let queries = 0;
  let active = 0;
  let peak = 0;
  let killed = 0;
  const ids = new Set<number>();

  const server: LocalDoqUpstream = {
    hostname,
    port: endpoint.addr.port,
    mode: "ok",
    killAfter(n, times = 1) {
      kills.n = n;
      kills.times = times;
    },
    get connections() {
      return connections;
    },
    get queries() {
      return queries;
    },
    ids,
    get peakConcurrent() {
      return peak;
    },
    get killed() {
      return killed;
    },
    restart() {
      for (const c of conns) {
        try {
          c.close({ closeCode: 0, reason: "restart" });
        } catch { /* closed */ }
      }
    },
    close() {
      for (const c of conns) {
        try {
          c.close({ closeCode: 0, reason: "" });
        } catch { /* closed */ }
      }
      try {
        listener.stop();
        endpoint.close();
      } catch { /* closed */ }
      return Promise.resolve();
    },
  };

  async function serveStream(
    conn: Deno.QuicConn,
    stream: Deno.QuicBidirectionalStream,
    state: { received: number; kill: boolean },
  ) {
    const data = await readAll(stream.readable);
    if (data.length < 2 || data.length !== 2 + ((data[0] << 8) | data[1])) {
      stream.writable.abort().catch(() => {}); // DOQ_PROTOCOL_ERROR territory: not a query
      return;
    }
    const query = data.subarray(2);
    queries++;
    ids.add((query[0] << 8) | query[1]);
    state.received++;
    if (state.kill && state.received === kills.n) {
      killed++;
      conn.close({ closeCode: 0x2, reason: "test kill" }); // DOQ_INTERNAL_ERROR
      return;
    }
    if (server.mode === "stall") return;
    active++;
    peak = Math.max(peak, active);
    try {
      const name = dnsPacket.decode(Buffer.from(query)).questions?.[0]?.name ?? "";
      const delay = delayFor(name);
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      else await new Promise((r) => setTimeout(r, 0)); // let concurrent streams overlap
      const answer = rewrite(answerFromZone(query), server.mode);
      const framed = new Uint8Array(2 + answer.length);
      framed[0] = answer.length >> 8;
      framed[1] = answer.length & 0xff;
      framed.set(answer, 2);
      const writer = stream.writable.getWriter();
      await writer.write(framed);
      await writer.close();
    } finally {
      active--;
    }
  }

  async function serveConn(incoming: Deno.QuicIncoming) {
    const conn = await incoming.accept();
    connections++;
    conns.add(conn);
    const state = { received: 0, kill: kills.times > 0 };
    if (state.kill) kills.times--;
    conn.closed.finally(() => conns.delete(conn)).catch(() => {});
    try {
      for await (const stream of conn.incomingBidirectionalStreams) {
        serveStream(conn, stream, state).catch(() => {});
      }
    } catch {
      // the connection went away
    }
  }

  (async () => {
    try {
      for await (const incoming of listener) serveConn(incoming).catch(() => {});
    } catch {
      // endpoint closed
    }
  })();
  return server;
}
