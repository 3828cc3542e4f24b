/**
 * A local plain DNS server (UDP and TCP on one ephemeral loopback port) answering the test zone
 * (`zone.ts`), with faults to switch on per test: silence, truncated UDP answers, forged
 * datagrams before the real answer (another sender, another ID, another question).
 *
 * @module
 */
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { encodeFrames, FrameDecoder } from "../../src/framing/codec.ts";
import { answerFromZone } from "./zone.ts";

/** What the UDP side does with a query. */
export type PlainUdpMode =
  /** Answer from the zone. */
  | "ok"
  /** Read, never answer. */
  | "silent"
  /** Answer with TC set and no records (the client must ask over TCP). */
  | "truncate"
  /**
   * Before the real answer: a datagram with another ID, one for another question (same ID),
   * a malformed one (same ID), each from the server's port, and one from another port.
   */
  | "forge-first"
  /** Answer only the second time the same query arrives (a lost first answer). */
  | "answer-second";

/** A running local plain DNS server. */
export interface LocalPlainServer {
  readonly port: number;
  udpMode: PlainUdpMode;
  /** Questions seen over UDP and TCP (names, lower case), in order. */
  readonly udpQueries: string[];
  /** For each UDP query: its message ID and the client's source port. */
  readonly udpSeen: { id: number; port: number }[];
  readonly tcpQueries: string[];
  /** TCP connections accepted. */
  readonly tcpConnections: number;
  close(): Promise<void>;
}

function nameOf(query: Uint8Array): string {
  try {
    return (dnsPacket.decode(Buffer.from(query)).questions?.[0]?.name ?? "").toLowerCase();
  } catch {
    return "";
  }
}

/** A response with TC set and no records, for `query`. */
function truncated(query: Uint8Array): Uint8Array {
  const q = dnsPacket.decode(Buffer.from(query));
  return new Uint8Array(dnsPacket.encode({
    type: "response",
    id: q.id,
    flags: dnsPacket.TRUNCATED_RESPONSE | dnsPacket.RECURSION_DESIRED |
      dnsPacket.RECURSION_AVAILABLE,
    questions: q.questions,
  }));
}

/** Starts the server on 127.0.0.1, UDP and TCP on one port. */
export function startPlainServer(): Promise<LocalPlainServer> {
  for (let attempt = 0;; attempt++) {
    const udp = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    const port = (udp.addr as Deno.NetAddr).port;
    let tcp: Deno.TcpListener;
    try {
      tcp = Deno.listen({ hostname: "127.0.0.1", port });
    } catch (error) {
      udp.close();
      if (attempt < 10) continue;
      throw error;
    }
    return Promise.resolve(serve(udp, tcp, port));
  }
}

function serve(udp: Deno.DatagramConn, tcp: Deno.TcpListener, port: number): LocalPlainServer {
  const seen = new Map<string, number>();
  const conns = new Set<Deno.Conn>();
  let tcpConnections = 0;
  const server: LocalPlainServer = {
    port,
    udpMode: "ok",
    udpQueries: [],
    udpSeen: [],
    tcpQueries: [],
    get tcpConnections() {
      return tcpConnections;
    },
    async close() {
      udp.close();
      tcp.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await Promise.allSettled([udpLoop, tcpLoop]);
    },
  };

  const udpLoop = (async () => {
    const other = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      for (;;) {
        const [query, from] = await udp.receive();
        const name = nameOf(query);
        server.udpQueries.push(name);
        server.udpSeen.push({ id: (query[0] << 8) | query[1], port: (from as Deno.NetAddr).port });
        const key = Array.from(query).join(",");
        const times = (seen.get(key) ?? 0) + 1;
        seen.set(key, times);
        switch (server.udpMode) {
          case "silent":
            continue;
          case "truncate":
            await udp.send(truncated(query), from);
            continue;
          case "answer-second":
            if (times < 2) continue;
            break;
          case "forge-first": {
            const answer = answerFromZone(query);
            const wrongId = answer.slice();
            wrongId[0] ^= 0x55;
            await udp.send(wrongId, from);
            const q = dnsPacket.decode(Buffer.from(query));
            const otherQuestion = new Uint8Array(dnsPacket.encode({
              type: "response",
              id: q.id,
              flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
              questions: [{ type: "A", name: "forged.example.test", class: "IN" }],
              answers: [{ type: "A", name: "forged.example.test", ttl: 60, data: "6.6.6.6" }],
            }));
            await udp.send(otherQuestion, from);
            await udp.send(answer.slice(0, 14), from); // the right ID, cut short
            await other.send(answer, from); // the right answer, from another port
            break;
          }
        }
        await udp.send(answerFromZone(query), from);
      }
    } catch {
      // closed
    } finally {
      other.close();
    }
  })();

  const tcpLoop = (async () => {
    try {
      for await (const conn of tcp) {
        tcpConnections++;
        conns.add(conn);
        (async () => {
          const decoder = new FrameDecoder(65_535);
          const buf = new Uint8Array(4096);
          try {
            for (;;) {
              const n = await conn.read(buf);
              if (n === null) break;
              const messages = decoder.push(buf.slice(0, n), () => 0);
              for (const m of messages) server.tcpQueries.push(nameOf(m));
              if (messages.length > 0) {
                await conn.write(encodeFrames(messages.map((m) => answerFromZone(m))));
              }
            }
          } catch {
            // reset or closed
          } finally {
            conns.delete(conn);
            try {
              conn.close();
            } catch { /* closed */ }
          }
        })();
      }
    } catch {
      // closed
    }
  })();
  return server;
}
