/**
 * A local DoT upstream (RFC 7858) on an ephemeral loopback port, over `node:tls` with a test
 * certificate, answering the test zone. Faults can be switched on per test: stalls, wrong IDs,
 * wrong questions, answers in reverse order, and connections dropped mid-stream.
 *
 * Names `delay-<ms>.example.test` are answered after `<ms>` milliseconds, concurrently with
 * everything else on the connection, so answers leave out of order.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { AddressInfo, Socket } from "node:net";
import tls from "node:tls";
import dnsPacket from "dns-packet";
import { encodeFrames, FrameDecoder } from "../../src/framing/codec.ts";
import { answerFromZone, delayFor } from "./zone.ts";

/** What the server does with the queries it receives. */
export type DotServerMode =
  /** Answer from the zone. */
  | "ok"
  /** Read queries, never answer. */
  | "stall"
  /** Answer with the ID XOR 0x5555 (an ID the client did not use). */
  | "wrong-id"
  /** Send an answer with a wrong ID first, then the right answer. */
  | "unknown-id-first"
  /** Answer with the right ID for another name. */
  | "wrong-question";

/** Options of {@linkcode startDotUpstream}. */
export interface DotUpstreamServerOptions {
  /** The certificate chain and key to serve (e.g. `testPki().server`). */
  cert: { chainPem: string; keyPem: string };
  /** Default `127.0.0.1`. */
  hostname?: string;
}

/** A running local DoT upstream. */
export interface LocalDotUpstream {
  readonly hostname: string;
  readonly port: number;
  mode: DotServerMode;
  /** Answers ready together (from one read) are written in reverse order. */
  reverseBatches: boolean;
  /**
   * The next `times` connections that receive their `n`-th query are destroyed at once, without
   * answering what they received in that read or what is still delayed.
   */
  dropAfter(n: number, times?: number): void;
  /** TLS connections accepted so far. */
  readonly connections: number;
  /** Connections open now. */
  readonly open: number;
  /** Queries received so far, across connections. */
  readonly queries: number;
  /** Connections destroyed by {@linkcode dropAfter}. */
  readonly dropped: number;
  /** The SNI of each connection (`false` when none was sent) and the negotiated ALPN. */
  readonly handshakes: { servername: string | false; alpn: string | false }[];
  close(): Promise<void>;
}

function misdirect(answer: Uint8Array): Uint8Array {
  const decoded = dnsPacket.decode(Buffer.from(answer));
  const q = decoded.questions![0];
  const other = answerFromZone(
    new Uint8Array(
      dnsPacket.encode({
        type: "query",
        id: decoded.id,
        flags: dnsPacket.RECURSION_DESIRED,
        questions: [{ ...q, name: `other-${q.name}` }],
      }),
    ),
  );
  return other;
}

/** Starts a local DoT upstream. */
export async function startDotUpstream(
  options: DotUpstreamServerOptions,
): Promise<LocalDotUpstream> {
  const hostname = options.hostname ?? "127.0.0.1";
  const sockets = new Set<tls.TLSSocket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const handshakes: LocalDotUpstream["handshakes"] = [];
  const state = {
    mode: "ok" as DotServerMode,
    reverseBatches: false,
    drop: { n: 0, times: 0 },
    connections: 0,
    queries: 0,
    dropped: 0,
  };

  const respond = (query: Uint8Array): Uint8Array[] => {
    const answer = answerFromZone(query);
    switch (state.mode) {
      case "ok":
        return [answer];
      case "stall":
        return [];
      case "wrong-id": {
        answer[0] ^= 0x55;
        answer[1] ^= 0x55;
        return [answer];
      }
      case "unknown-id-first": {
        const bogus = answer.slice();
        bogus[0] ^= 0x55;
        bogus[1] ^= 0x55;
        return [bogus, answer];
      }
      case "wrong-question":
        return [misdirect(answer)];
    }
  };

  const server = tls.createServer({
    cert: options.cert.chainPem,
    key: options.cert.keyPem,
    ALPNProtocols: ["dot"],
  });
  const raw = new Set<Socket>(); // every TCP connection, including those mid-handshake
  server.on("connection", (socket: Socket) => {
    raw.add(socket);
    socket.once("close", () => raw.delete(socket));
  });
  server.on("tlsClientError", () => {});
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    state.connections++;
    sockets.add(socket);
    handshakes.push({ servername: socket.servername ?? false, alpn: socket.alpnProtocol ?? false });
    socket.setNoDelay(true);
    const decoder = new FrameDecoder();
    let received = 0;
    let dropAt = 0;
    const write = (messages: Uint8Array[]) => {
      if (messages.length > 0 && !socket.destroyed) socket.write(encodeFrames(messages));
    };
    socket.on("data", (chunk: Uint8Array) => {
      let messages: Uint8Array[];
      try {
        messages = decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      const now: Uint8Array[] = [];
      for (const query of messages) {
        received++;
        state.queries++;
        if (dropAt === 0 && state.drop.times > 0 && received >= state.drop.n) {
          state.drop.times--;
          dropAt = received;
        }
        if (dropAt > 0) {
          state.dropped++;
          socket.destroy();
          return;
        }
        const name = dnsPacket.decode(Buffer.from(query)).questions?.[0]?.name ?? "";
        const delay = delayFor(name);
        if (delay > 0) {
          const timer = setTimeout(() => {
            timers.delete(timer);
            write(respond(query));
          }, delay);
          timers.add(timer);
        } else {
          now.push(...respond(query));
        }
      }
      if (state.reverseBatches) now.reverse();
      write(now);
    });
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    hostname,
    port,
    get mode() {
      return state.mode;
    },
    set mode(m: DotServerMode) {
      state.mode = m;
    },
    get reverseBatches() {
      return state.reverseBatches;
    },
    set reverseBatches(on: boolean) {
      state.reverseBatches = on;
    },
    dropAfter(n: number, times = 1) {
      state.drop = { n, times };
    },
    get connections() {
      return state.connections;
    },
    get open() {
      return sockets.size;
    },
    get queries() {
      return state.queries;
    },
    get dropped() {
      return state.dropped;
    },
    handshakes,
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      for (const socket of raw) socket.destroy();
      await closed;
    },
  };
}
